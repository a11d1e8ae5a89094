package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"paystatus/payment"
	"strings"
	"sync"
	"testing"
	"time"
)

// serviceTestDB names the database for this file's tests: TEST_DATABASE_URL
// when set (a postgres:// URL), otherwise a fresh SQLite file.
func serviceTestDB(t *testing.T) string {
	t.Helper()
	if url := os.Getenv("TEST_DATABASE_URL"); url != "" {
		return url
	}
	return filepath.Join(t.TempDir(), "service.db")
}

func openServiceTestStore(t *testing.T, url string) *Store {
	t.Helper()
	st, err := Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// visibilityNotifier checks, at the moment it is told about a change, that
// the change is already committed: it reads through its own Store (its own
// connections), which cannot see an open transaction's writes.
type visibilityNotifier struct {
	other *Store

	mu       sync.Mutex
	statuses []payment.StatusChange
	orders   []payment.OrderChange
	problems []string
}

func (n *visibilityNotifier) PaymentStatusChanged(c payment.StatusChange) {
	problem := n.check(c.OrderID, c.Seq, func(o payment.Order) string {
		if o.Status != c.Status {
			return fmt.Sprintf("notified of %s but the database says %s", c.Status, o.Status)
		}
		return ""
	})
	n.mu.Lock()
	defer n.mu.Unlock()
	n.statuses = append(n.statuses, c)
	if problem != "" {
		n.problems = append(n.problems, problem)
	}
}

func (n *visibilityNotifier) OrderChanged(c payment.OrderChange) {
	problem := n.check(c.OrderID, c.Seq, func(payment.Order) string { return "" })
	n.mu.Lock()
	defer n.mu.Unlock()
	n.orders = append(n.orders, c)
	if problem != "" {
		n.problems = append(n.problems, problem)
	}
}

func (n *visibilityNotifier) check(orderID string, seq int64, extra func(payment.Order) string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o, err := n.other.Order(ctx, orderID)
	if err != nil {
		return "reading the order from a second connection: " + err.Error()
	}
	// A later change may already have committed too; only older is wrong.
	if o.Seq < seq {
		return fmt.Sprintf("notified of seq %d but the database has seq %d", seq, o.Seq)
	}
	events, err := n.other.Events(ctx, orderID)
	if err != nil {
		return "reading events from a second connection: " + err.Error()
	}
	found := false
	for _, ev := range events {
		found = found || ev.Seq == seq
	}
	if !found {
		return fmt.Sprintf("notified of seq %d but its event is not in payment_events", seq)
	}
	if o.Seq > seq {
		return ""
	}
	return extra(o)
}

func (n *visibilityNotifier) counts() (statuses, orders int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.statuses), len(n.orders)
}

func (n *visibilityNotifier) assertClean(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.problems {
		t.Error(p)
	}
}

type serviceFixture struct {
	svc      *payment.Service
	store    *Store
	notifier *visibilityNotifier
	tokens   *payment.Tokens
}

func newServiceFixture(t *testing.T) *serviceFixture {
	t.Helper()
	url := serviceTestDB(t)
	st := openServiceTestStore(t, url)
	n := &visibilityNotifier{other: openServiceTestStore(t, url)}
	tk := mustTokens(t, "service-test-secret")
	svc, err := payment.NewService(payment.ServiceDeps{Store: st, Tokens: tk, Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.assertClean(t) })
	return &serviceFixture{svc: svc, store: st, notifier: n, tokens: tk}
}

func (f *serviceFixture) order(t *testing.T) payment.Order {
	t.Helper()
	o, err := f.svc.CreateOrder(context.Background(), payment.NewOrder{Amount: 1000, Currency: "inr"})
	if err != nil {
		t.Fatalf("create order: %v", err)
	}
	return o.Order
}

// state reads an order and its event count straight from the store.
func (f *serviceFixture) state(t *testing.T, id string) (payment.Order, int) {
	t.Helper()
	o, err := f.store.Order(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	events, err := f.store.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o, len(events)
}

func TestNewServiceNeedsStoreAndTokens(t *testing.T) {
	if _, err := payment.NewService(payment.ServiceDeps{}); err == nil {
		t.Fatal("payment.NewService without store and tokens succeeded")
	}
	if _, err := payment.NewService(payment.ServiceDeps{Tokens: mustTokens(t, "x")}); err == nil {
		t.Fatal("payment.NewService without a store succeeded")
	}
}

func TestServiceCreateOrder(t *testing.T) {
	f := newServiceFixture(t)
	tests := []struct {
		name     string
		in       payment.NewOrder
		currency string
		err      error
	}{
		{"default currency", payment.NewOrder{Amount: 100}, "INR", nil},
		{"lowercase normalised", payment.NewOrder{Amount: 100, Currency: " usd "}, "USD", nil},
		{"largest amount", payment.NewOrder{Amount: payment.MaxAmount, Currency: "EUR"}, "EUR", nil},
		{"zero amount", payment.NewOrder{Amount: 0}, "", payment.ErrInvalidOrder},
		{"negative amount", payment.NewOrder{Amount: -5}, "", payment.ErrInvalidOrder},
		{"amount too large", payment.NewOrder{Amount: payment.MaxAmount + 1}, "", payment.ErrInvalidOrder},
		{"two-letter currency", payment.NewOrder{Amount: 100, Currency: "IN"}, "", payment.ErrInvalidOrder},
		{"currency with digits", payment.NewOrder{Amount: 100, Currency: "IN1"}, "", payment.ErrInvalidOrder},
		{"description too long", payment.NewOrder{Amount: 100, Description: strings.Repeat("x", payment.MaxDescriptionLength+1)}, "", payment.ErrInvalidOrder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := f.svc.CreateOrder(context.Background(), tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != payment.StatusPending || o.Seq != 0 || o.Currency != tt.currency || !payment.ValidOrderID(o.ID) {
				t.Fatalf("unexpected order %+v", o.Order)
			}
			if err := f.svc.Authorize(o.ID, o.Token); err != nil {
				t.Fatalf("issued token refused: %v", err)
			}
			if _, n := f.state(t, o.ID); n != 0 {
				t.Fatalf("a new order has %d events", n)
			}
		})
	}
}

// pathTo lists the accepted moves that bring a new order to a status.
var pathTo = map[payment.Status][]payment.Status{
	payment.StatusPending:    nil,
	payment.StatusProcessing: {payment.StatusProcessing},
	payment.StatusCompleted:  {payment.StatusCompleted},
	payment.StatusFailed:     {payment.StatusFailed},
	payment.StatusExpired:    {payment.StatusExpired},
	payment.StatusRefunded:   {payment.StatusCompleted, payment.StatusRefunded},
}

// TestServiceTransitionsAllPairs drives a real order into each status and
// tries every target: accepted moves bump seq, append one event and notify
// after the commit; refused ones change nothing and notify nobody.
func TestServiceTransitionsAllPairs(t *testing.T) {
	f := newServiceFixture(t)
	ctx := context.Background()
	for _, from := range allStatuses {
		for _, to := range allStatuses {
			t.Run(fmt.Sprintf("%s_to_%s", from, to), func(t *testing.T) {
				o := f.order(t)
				for _, step := range pathTo[from] {
					if _, err := f.svc.Transition(ctx, payment.Transition{OrderID: o.ID, To: step, Source: "test"}); err != nil {
						t.Fatalf("setting up %s: %v", from, err)
					}
				}
				before, eventsBefore := f.state(t, o.ID)
				notifiedBefore, _ := f.notifier.counts()
				change, err := f.svc.Transition(ctx, payment.Transition{OrderID: o.ID, To: to, Source: "test", PaymentID: "pay_1"})
				after, eventsAfter := f.state(t, o.ID)
				notifiedAfter, _ := f.notifier.counts()
				if !payment.CanTransition(from, to) {
					if !errors.Is(err, payment.ErrInvalidTransition) {
						t.Fatalf("error = %v, want payment.ErrInvalidTransition", err)
					}
					if after.Status != before.Status || after.Seq != before.Seq || after.PaymentID != before.PaymentID || eventsAfter != eventsBefore {
						t.Fatalf("refused transition changed the order: %+v -> %+v, events %d -> %d", before, after, eventsBefore, eventsAfter)
					}
					if notifiedAfter != notifiedBefore {
						t.Fatal("refused transition was announced")
					}
					return
				}
				if err != nil {
					t.Fatalf("allowed transition refused: %v", err)
				}
				if change.Status != to || change.PreviousStatus != from || change.Seq != before.Seq+1 || change.Source != "test" || change.PaymentID != "pay_1" {
					t.Fatalf("unexpected change %+v", change)
				}
				if after.Status != to || after.Seq != before.Seq+1 || eventsAfter != eventsBefore+1 {
					t.Fatalf("order after move: %+v with %d events (was %d)", after, eventsAfter, eventsBefore)
				}
				if notifiedAfter != notifiedBefore+1 {
					t.Fatalf("notified %d times, want once", notifiedAfter-notifiedBefore)
				}
				events, _ := f.store.Events(ctx, o.ID)
				last := events[len(events)-1]
				if last.Seq != after.Seq || last.Type != "status" || last.Status != to || last.PreviousStatus != from || last.Source != "test" {
					t.Fatalf("unexpected event %+v", last)
				}
			})
		}
	}
}

func TestServiceSeqCountsEveryChange(t *testing.T) {
	f := newServiceFixture(t)
	ctx := context.Background()
	o := f.order(t)
	desc := "updated"
	steps := []func() (int64, error){
		func() (int64, error) {
			c, err := f.svc.Transition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusProcessing, Source: "test"})
			return c.Seq, err
		},
		func() (int64, error) {
			c, err := f.svc.UpdateOrder(ctx, o.ID, payment.OrderPatch{Description: &desc, Metadata: []byte(`{"cart":3}`)})
			return c.Seq, err
		},
		func() (int64, error) {
			c, err := f.svc.Transition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "test"})
			return c.Seq, err
		},
		func() (int64, error) {
			c, err := f.svc.Transition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusRefunded, Source: "test"})
			return c.Seq, err
		},
	}
	for i, step := range steps {
		seq, err := step()
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if seq != int64(i+1) {
			t.Fatalf("step %d got seq %d, want %d", i, seq, i+1)
		}
	}
	events, err := f.store.Events(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for i, ev := range events {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: the log has a gap or duplicate", i, ev.Seq)
		}
		types = append(types, ev.Type)
	}
	if got := strings.Join(types, ","); got != "status,order-update,status,status" {
		t.Fatalf("event types %s", got)
	}
	if events[1].Data != `{"description":"updated","metadata":{"cart":3}}` {
		t.Fatalf("order-update event data %s", events[1].Data)
	}
	st, ord := f.notifier.counts()
	if st != 3 || ord != 1 {
		t.Fatalf("notified %d status and %d order changes, want 3 and 1", st, ord)
	}
}

func TestServiceUpdateOrderRefusals(t *testing.T) {
	f := newServiceFixture(t)
	ctx := context.Background()
	o := f.order(t)
	long := strings.Repeat("d", payment.MaxDescriptionLength+1)
	tests := []struct {
		name  string
		id    string
		patch payment.OrderPatch
		err   error
	}{
		{"nothing to change", o.ID, payment.OrderPatch{}, payment.ErrInvalidOrder},
		{"description too long", o.ID, payment.OrderPatch{Description: &long}, payment.ErrInvalidOrder},
		{"metadata too large", o.ID, payment.OrderPatch{Metadata: []byte(`{"k":"` + strings.Repeat("m", payment.MaxMetadataBytes) + `"}`)}, payment.ErrInvalidOrder},
		{"unknown order", "ord_doesnotexist", payment.OrderPatch{Description: new(string)}, payment.ErrOrderNotFound},
		{"malformed order id", "../../etc", payment.OrderPatch{Description: new(string)}, payment.ErrOrderNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.svc.UpdateOrder(ctx, tt.id, tt.patch); !errors.Is(err, tt.err) {
				t.Fatalf("error = %v, want %v", err, tt.err)
			}
		})
	}
	after, n := f.state(t, o.ID)
	if after.Seq != 0 || n != 0 || after.Description != "" {
		t.Fatalf("refused updates changed the order: %+v, %d events", after, n)
	}
	if _, ord := f.notifier.counts(); ord != 0 {
		t.Fatalf("refused updates were announced %d times", ord)
	}
}

// TestServiceTransitionIsOneTransaction makes the event insert fail (its
// seq is already taken) and checks that the order's new status was rolled
// back with it and nothing was announced.
func TestServiceTransitionIsOneTransaction(t *testing.T) {
	f := newServiceFixture(t)
	ctx := context.Background()
	o := f.order(t)
	squatter := eventRow{OrderID: o.ID, Seq: 1, Type: "squatter", Source: "test", CreatedAt: time.Now().UTC()}
	if err := f.store.db.WithContext(ctx).Create(&squatter).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Transition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "test"}); err == nil {
		t.Fatal("transition succeeded although its event could not be stored")
	}
	after, n := f.state(t, o.ID)
	if after.Status != payment.StatusPending || after.Seq != 0 || n != 1 {
		t.Fatalf("order changed without its event: %+v, %d events", after, n)
	}
	if st, _ := f.notifier.counts(); st != 0 {
		t.Fatal("a rolled-back change was announced")
	}

	if _, err := f.svc.UpdateOrder(ctx, o.ID, payment.OrderPatch{Description: new(string)}); err == nil {
		t.Fatal("update succeeded although its event could not be stored")
	}
	if after, _ := f.state(t, o.ID); after.Seq != 0 {
		t.Fatalf("order update kept without its event: %+v", after)
	}
}

func TestServiceLenientAndDuplicateDeliveriesAnnounceNothing(t *testing.T) {
	f := newServiceFixture(t)
	ctx := context.Background()
	o := f.order(t)
	amount := o.Amount
	// Delivery ids are unique across all orders, and a Postgres test
	// database outlives the run, so they are derived from the order id.
	first := payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "gw", DeliveryID: o.ID + "-d1", Amount: &amount, Currency: "inr"}
	if _, err := f.svc.Transition(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Transition(ctx, first); !errors.Is(err, payment.ErrDuplicateEvent) {
		t.Fatalf("repeat delivery error = %v, want payment.ErrDuplicateEvent", err)
	}
	late := payment.Transition{OrderID: o.ID, To: payment.StatusProcessing, Source: "gw", DeliveryID: o.ID + "-d0", Lenient: true}
	if _, err := f.svc.Transition(ctx, late); !errors.Is(err, payment.ErrStaleEvent) {
		t.Fatalf("late delivery error = %v, want payment.ErrStaleEvent", err)
	}
	late.Lenient = false
	if _, err := f.svc.Transition(ctx, late); !errors.Is(err, payment.ErrInvalidTransition) {
		t.Fatalf("strict late delivery error = %v, want payment.ErrInvalidTransition", err)
	}
	wrong := int64(1)
	mismatch := payment.Transition{OrderID: o.ID, To: payment.StatusRefunded, Source: "gw", Amount: &wrong}
	if _, err := f.svc.Transition(ctx, mismatch); !errors.Is(err, payment.ErrAmountMismatch) {
		t.Fatalf("amount mismatch error = %v, want payment.ErrAmountMismatch", err)
	}
	mismatch.Amount, mismatch.Currency = nil, "USD"
	if _, err := f.svc.Transition(ctx, mismatch); !errors.Is(err, payment.ErrAmountMismatch) {
		t.Fatalf("currency mismatch error = %v, want payment.ErrAmountMismatch", err)
	}
	if _, err := f.svc.Transition(ctx, payment.Transition{OrderID: "ord_missing", To: payment.StatusCompleted}); !errors.Is(err, payment.ErrOrderNotFound) {
		t.Fatalf("unknown order error = %v, want payment.ErrOrderNotFound", err)
	}
	after, n := f.state(t, o.ID)
	if after.Status != payment.StatusCompleted || after.Seq != 1 || n != 1 {
		t.Fatalf("refused deliveries changed the order: %+v, %d events", after, n)
	}
	if st, _ := f.notifier.counts(); st != 1 {
		t.Fatalf("announced %d changes, want 1", st)
	}
}

// TestServiceConcurrentTransitionsSerialise races completions against
// failures on one order: exactly one may win.
func TestServiceConcurrentTransitionsSerialise(t *testing.T) {
	f := newServiceFixture(t)
	// Several rounds, because a lost race only shows when the timing overlaps.
	for round := range 3 {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) { raceOneOrder(t, f, round) })
	}
}

func raceOneOrder(t *testing.T, f *serviceFixture, round int) {
	o := f.order(t)
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := payment.StatusCompleted
			if i%2 == 1 {
				to = payment.StatusFailed
			}
			<-start
			_, errs[i] = f.svc.Transition(context.Background(), payment.Transition{OrderID: o.ID, To: to, Source: "race"})
		}()
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, payment.ErrInvalidTransition):
			t.Errorf("goroutine %d: %v, want success or payment.ErrInvalidTransition", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d transitions won, want exactly 1", wins)
	}
	after, events := f.state(t, o.ID)
	if after.Seq != 1 || events != 1 || !after.Status.Terminal() {
		t.Fatalf("after the race: %+v with %d events", after, events)
	}
	if st, _ := f.notifier.counts(); st != round+1 {
		t.Fatalf("announced %d changes over %d rounds, want one each", st, round+1)
	}
}

func TestServiceConcurrentUpdatesAllApply(t *testing.T) {
	f := newServiceFixture(t)
	o := f.order(t)
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := fmt.Sprintf("update %d", i)
			_, errs[i] = f.svc.UpdateOrder(context.Background(), o.ID, payment.OrderPatch{Description: &d})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("update %d: %v", i, err)
		}
	}
	after, events := f.state(t, o.ID)
	if after.Seq != n || events != n {
		t.Fatalf("after %d updates: seq %d, %d events", n, after.Seq, events)
	}
}

func TestServiceWaitForChange(t *testing.T) {
	f := newServiceFixture(t)
	ctx := context.Background()

	t.Run("already past since", func(t *testing.T) {
		o := f.order(t)
		if _, err := f.svc.Transition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusProcessing}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		snap, err := f.svc.WaitForChange(ctx, o.ID, 0, time.Minute)
		if err != nil || snap.Seq != 1 || snap.Status != payment.StatusProcessing {
			t.Fatalf("got %+v, %v", snap, err)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("waited although the order had already moved")
		}
	})

	t.Run("wakes on change", func(t *testing.T) {
		o := f.order(t)
		type result struct {
			snap payment.Snapshot
			err  error
		}
		done := make(chan result, 1)
		before := f.svc.Waiters().Count()
		go func() {
			snap, err := f.svc.WaitForChange(ctx, o.ID, 0, time.Minute)
			done <- result{snap, err}
		}()
		waitUntil(t, "the long-poll to register", func() bool { return f.svc.Waiters().Count() > before })
		if _, err := f.svc.Transition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusCompleted}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			if r.err != nil || r.snap.Seq != 1 || r.snap.Status != payment.StatusCompleted {
				t.Fatalf("got %+v, %v", r.snap, r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("long-poll not woken by the change")
		}
	})

	t.Run("times out with current status", func(t *testing.T) {
		o := f.order(t)
		snap, err := f.svc.WaitForChange(ctx, o.ID, 0, 20*time.Millisecond)
		if err != nil || snap.Seq != 0 || snap.Status != payment.StatusPending {
			t.Fatalf("got %+v, %v", snap, err)
		}
	})

	t.Run("cancelled caller gets current status", func(t *testing.T) {
		o := f.order(t)
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		before := f.svc.Waiters().Count()
		go func() {
			snap, err := f.svc.WaitForChange(cctx, o.ID, 0, time.Minute)
			if err == nil && snap.OrderID != o.ID {
				err = fmt.Errorf("snapshot of %q", snap.OrderID)
			}
			done <- err
		}()
		waitUntil(t, "the long-poll to register", func() bool { return f.svc.Waiters().Count() > before })
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("cancelled long-poll: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("cancelled long-poll kept waiting")
		}
	})

	t.Run("caller already gone gets current status", func(t *testing.T) {
		// The deterministic form of the case above: the context is over
		// before the first read, as when shutdown drains mid-read.
		o := f.order(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		snap, err := f.svc.WaitForChange(cctx, o.ID, 0, time.Minute)
		if err != nil || snap.OrderID != o.ID || snap.Status != payment.StatusPending {
			t.Fatalf("got %+v, %v", snap, err)
		}
	})

	t.Run("unknown order", func(t *testing.T) {
		if _, err := f.svc.WaitForChange(ctx, "ord_missing", 0, time.Second); !errors.Is(err, payment.ErrOrderNotFound) {
			t.Fatalf("error = %v, want payment.ErrOrderNotFound", err)
		}
		if n := f.svc.Waiters().Count(); n != 0 {
			t.Fatalf("%d waiters left registered", n)
		}
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustTokens(t testing.TB, secret string) *payment.Tokens {
	t.Helper()
	tk, err := payment.NewTokens([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

var allStatuses = []payment.Status{payment.StatusPending, payment.StatusProcessing, payment.StatusCompleted, payment.StatusFailed, payment.StatusExpired, payment.StatusRefunded}
