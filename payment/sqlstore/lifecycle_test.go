package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"paystatus/payment"
)

// Lifecycle tests run on SQLite by default and on Postgres with
// TEST_DATABASE_URL, like the other store tests.

// orderWithDeadline stores a pending order whose window ends at deadline,
// created at created, and moves it along path.
// openChunkedStore opens a store that commits in groups and expires at
// most chunk orders per group.
func openChunkedStore(t *testing.T, chunk int) *Store {
	t.Helper()
	return openStoreWith(t, Config{GroupCommit: GroupOn, GroupExpiryMax: chunk})
}

// openStoreWith opens the test database with cfg, closed when the test ends.
func openStoreWith(t *testing.T, cfg Config) *Store {
	t.Helper()
	cfg.URL = testStoreURL(t)
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func orderWithDeadline(t *testing.T, s *Store, created, deadline time.Time, path ...payment.Status) payment.Order {
	t.Helper()
	o, err := payment.NewPendingOrder(payment.NewOrder{Amount: 1000, Currency: "INR"}, created)
	if err != nil {
		t.Fatal(err)
	}
	o.ExpiresAt = deadline
	if err := s.InsertOrder(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for _, st := range path {
		if _, err := s.ApplyTransition(context.Background(), payment.Transition{OrderID: o.ID, To: st, Source: "test"}); err != nil {
			t.Fatalf("move to %s: %v", st, err)
		}
	}
	got, err := s.Order(context.Background(), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestExpireDueMovesOnlyOpenOrdersPastTheirDeadline(t *testing.T) {
	s := openTestStore(t, testStoreURL(t))
	ctx := context.Background()
	now := time.Now().UTC()
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	cases := []struct {
		name        string
		deadline    time.Time
		path        []payment.Status
		wantExpired bool
	}{
		{"pending past its deadline", past, nil, true},
		{"processing past its deadline", past, []payment.Status{payment.StatusProcessing}, true},
		{"pending inside its window", future, nil, false},
		{"completed past its deadline", past, []payment.Status{payment.StatusCompleted}, false},
		{"failed past its deadline", past, []payment.Status{payment.StatusFailed}, false},
	}
	orders := make([]payment.Order, len(cases))
	for i, tc := range cases {
		orders[i] = orderWithDeadline(t, s, now.Add(-time.Minute), tc.deadline, tc.path...)
	}
	changes, err := s.ExpireDue(ctx, now, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]payment.StatusChange{}
	for _, c := range changes {
		byID[c.OrderID] = c
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := orders[i]
			after, err := s.Order(ctx, before.ID)
			if err != nil {
				t.Fatal(err)
			}
			c, reported := byID[before.ID]
			if !tc.wantExpired {
				if reported || after.Status != before.Status || after.Seq != before.Seq {
					t.Fatalf("changed: %+v -> %+v (reported %v)", before, after, reported)
				}
				return
			}
			if after.Status != payment.StatusExpired || after.Seq != before.Seq+1 {
				t.Fatalf("after sweep: status %s seq %d, want expired seq %d", after.Status, after.Seq, before.Seq+1)
			}
			if !reported || c.Seq != after.Seq || c.PreviousStatus != before.Status || c.Source != payment.SourceExpiry {
				t.Fatalf("change %+v, reported %v", c, reported)
			}
			if c.ExpiresAt == nil || !c.ExpiresAt.Equal(tc.deadline.Truncate(time.Microsecond)) && !c.ExpiresAt.Equal(tc.deadline) {
				t.Fatalf("change carries expiresAt %v, want %v", c.ExpiresAt, tc.deadline)
			}
			events := statusEvents(t, s, before.ID)
			last := events[len(events)-1]
			if last.Seq != after.Seq || last.Status != payment.StatusExpired || last.PreviousStatus != before.Status || last.Source != payment.SourceExpiry {
				t.Fatalf("last event %+v", last)
			}
		})
	}
	if len(changes) != 2 {
		t.Fatalf("%d changes, want 2", len(changes))
	}
	again, err := s.ExpireDue(ctx, time.Now(), 100, nil)
	if err != nil || len(again) != 0 {
		t.Fatalf("second sweep: %d changes, %v", len(again), err)
	}
}

func TestExpireDueWorksInBatchesOldestFirst(t *testing.T) {
	s := openTestStore(t, testStoreURL(t))
	ctx := context.Background()
	now := time.Now().UTC()
	var ids []string
	for i := range 7 {
		o := orderWithDeadline(t, s, now.Add(-time.Hour), now.Add(-time.Duration(10-i)*time.Second))
		ids = append(ids, o.ID)
	}
	var got []string
	for range 4 {
		changes, err := s.ExpireDue(ctx, now, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) > 3 {
			t.Fatalf("batch of %d, limit 3", len(changes))
		}
		for _, c := range changes {
			got = append(got, c.OrderID)
		}
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("expired %v, want oldest deadline first %v", got, ids)
	}
}

// Two stores with their own pools stand in for two nodes sweeping one
// database at once: each order must be expired by exactly one of them.
func TestExpireDueAcrossNodesExpiresEachOrderOnce(t *testing.T) {
	u := testStoreURL(t)
	nodes := []*Store{openTestStore(t, u), openTestStore(t, u)}
	ctx := context.Background()
	now := time.Now().UTC()
	const orders = 60
	for range orders {
		orderWithDeadline(t, nodes[0], now.Add(-time.Minute), now.Add(-time.Second))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	errs := race(6, func(i int) error {
		for {
			changes, err := nodes[i%2].ExpireDue(ctx, now, 7, nil)
			if err != nil {
				return err
			}
			mu.Lock()
			for _, c := range changes {
				seen[c.OrderID]++
			}
			mu.Unlock()
			if len(changes) == 0 {
				return nil
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != orders {
		t.Fatalf("%d orders expired, want %d", len(seen), orders)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("order %s reported expired %d times", id, n)
		}
		events := statusEvents(t, nodes[1], id)
		if len(events) != 1 || events[0].Status != payment.StatusExpired || events[0].Seq != 1 {
			t.Fatalf("order %s events %+v", id, events)
		}
	}
}

// A callback and the sweep racing for one order: whichever commits first
// wins, and the order ends with exactly one terminal event.
func TestExpiryAndCompletionRaceEndsOnce(t *testing.T) {
	u := testStoreURL(t)
	nodes := []*Store{openTestStore(t, u), openTestStore(t, u)}
	ctx := context.Background()
	for round := range 10 {
		now := time.Now().UTC()
		o := orderWithDeadline(t, nodes[0], now.Add(-time.Minute), now.Add(-time.Millisecond))
		var expired int
		errs := race(2, func(i int) error {
			if i == 0 {
				changes, err := nodes[0].ExpireDue(ctx, now, 10, nil)
				expired = len(changes)
				return err
			}
			_, err := nodes[1].ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "test"})
			if errors.Is(err, payment.ErrInvalidTransition) {
				return nil // the sweep came first
			}
			return err
		})
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v", round, errs)
		}
		events := statusEvents(t, nodes[0], o.ID)
		if len(events) != 1 {
			t.Fatalf("round %d: %d events %+v", round, len(events), events)
		}
		if (events[0].Status == payment.StatusExpired) != (expired == 1) {
			t.Fatalf("round %d: event %s, sweep reported %d", round, events[0].Status, expired)
		}
	}
}

func TestLateCaptureRule(t *testing.T) {
	s := openTestStore(t, testStoreURL(t))
	ctx := context.Background()
	now := time.Now().UTC()
	tests := []struct {
		name    string
		tr      payment.Transition
		wantErr error
		late    bool
	}{
		{"a capture completes the expired order", payment.Transition{To: payment.StatusCompleted, Source: "upi", Captured: true, PaymentID: "pay_late", Lenient: true}, nil, true},
		{"a completion without proof of payment is refused", payment.Transition{To: payment.StatusCompleted, Source: "test"}, payment.ErrInvalidTransition, false},
		{"a gateway's failure after expiry is stale", payment.Transition{To: payment.StatusFailed, Source: "upi", Lenient: true}, payment.ErrStaleEvent, false},
		{"a gateway's processing after expiry is stale", payment.Transition{To: payment.StatusProcessing, Source: "upi", Lenient: true}, payment.ErrStaleEvent, false},
		{"a refund of an expired order is refused", payment.Transition{To: payment.StatusRefunded, Source: "test", Captured: true}, payment.ErrInvalidTransition, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := orderWithDeadline(t, s, now.Add(-time.Minute), now.Add(-time.Second))
			if changes, err := s.ExpireDue(ctx, time.Now(), 1000, nil); err != nil || len(changes) == 0 {
				t.Fatalf("expire: %v", err)
			}
			tt.tr.OrderID = o.ID
			change, err := s.ApplyTransition(ctx, tt.tr)
			after, _ := s.Order(ctx, o.ID)
			events := statusEvents(t, s, o.ID)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || after.Status != payment.StatusExpired || len(events) != 1 {
					t.Fatalf("err %v (want %v), status %s, %d events", err, tt.wantErr, after.Status, len(events))
				}
				return
			}
			if err != nil || !change.LateCapture || change.PreviousStatus != payment.StatusExpired || after.Status != payment.StatusCompleted || after.PaymentID != "pay_late" {
				t.Fatalf("late capture: %+v %v; order %+v", change, err, after)
			}
			last := events[len(events)-1]
			if last.Status != payment.StatusCompleted || !strings.Contains(last.Data, `"lateCapture":true`) {
				t.Fatalf("late capture event %+v", last)
			}
			// Completed as usual from here: a refund may follow.
			if _, err := s.ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusRefunded, Source: "test"}); err != nil {
				t.Fatalf("refund after a late capture: %v", err)
			}
		})
	}
	// An ordinary completion carries no mark.
	o := orderWithDeadline(t, s, now, now.Add(time.Hour))
	change, err := s.ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "upi", Captured: true})
	if err != nil || change.LateCapture {
		t.Fatalf("on-time completion: %+v %v", change, err)
	}
	if ev := statusEvents(t, s, o.ID); ev[0].Data != "" {
		t.Fatalf("on-time completion event data %q", ev[0].Data)
	}
}

// explain returns the plan of q on this store's database, one line per row.
func explain(t *testing.T, s *Store, q string, args ...any) string {
	t.Helper()
	prefix := "EXPLAIN QUERY PLAN "
	if s.postgres {
		prefix = "EXPLAIN "
	}
	rows, err := s.sqlDB.Query(s.query(prefix+q), args...)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals[len(vals)-1]))
	}
	return strings.Join(lines, "\n")
}

// The sweep, the purge and the quota's count must each be served by an
// index, not a scan of the table: checked on a table whose history
// (terminal orders) far outnumbers the open orders, as in production.
func TestLifecycleQueriesUseTheirIndexes(t *testing.T) {
	s := openTestStore(t, testStoreURL(t))
	ctx := context.Background()
	now := time.Now().UTC()
	rows := insertPlanOrders(t, s, now, "ord_plan", func(i int) payment.Status {
		if i%100 == 0 {
			return payment.StatusPending
		}
		return payment.StatusCompleted
	})
	// Events as a sweep and callbacks leave them: most without a delivery key.
	events := make([]eventRow, 0, len(rows))
	for i, r := range rows {
		e := eventRow{OrderID: r.ID, Seq: 1, Type: "status", Status: r.Status, Source: "expiry", CreatedAt: now}
		if i%10 == 0 {
			key := fmt.Sprintf("upi:evt_plan_%05d", i)
			e.DedupKey, e.Source = &key, "upi"
		}
		events = append(events, e)
	}
	if err := s.db.WithContext(ctx).CreateInBatches(events, 500).Error; err != nil {
		t.Fatal(err)
	}
	analyze := "ANALYZE"
	if s.postgres {
		analyze = "ANALYZE orders, payment_events"
	}
	if _, err := s.sqlDB.Exec(analyze); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		name, query, index string
		args               []any
	}{
		{"due orders", dueOrdersQuery, openDeadlineIndexName, []any{now, 200}},
		{"legacy orders without a deadline", strings.Replace(assignDeadlinesStmt, "UPDATE orders SET expires_at = ?", "SELECT id FROM orders", 1), openDeadlineIndexName, nil},
		{"purge candidates", purgeCandidatesQuery, createdAtIndexName, []any{now.Add(-24 * time.Hour), 500}},
		{"recent creations", countCreatedQuery, createdAtIndexName, []any{now.Add(-time.Minute)}},
		{"delivery seen", loadOrderQuery, dedupKeyIndexName, []any{"upi:evt_plan_00010", "ord_plan_00010"}},
	} {
		t.Run(q.name, func(t *testing.T) { checkPlanUses(t, s, q.query, q.index, q.args...) })
	}
}

// insertPlanOrders stores 3,000 orders, named prefix_00000 on, with the
// status that status gives each and deadlines a second apart around now,
// for the query plan tests.
func insertPlanOrders(t *testing.T, s *Store, now time.Time, prefix string, status func(i int) payment.Status) []orderRow {
	t.Helper()
	rows := make([]orderRow, 0, 3000)
	for i := range 3000 {
		deadline := now.Add(time.Duration(i-1500) * time.Second)
		rows = append(rows, orderRow{ID: fmt.Sprintf("%s_%05d", prefix, i), Amount: 100, Currency: "INR", Status: status(i),
			Seq: 1, CreatedAt: now.Add(-time.Hour), UpdatedAt: now, ExpiresAt: &deadline})
	}
	if err := s.db.CreateInBatches(rows, 500).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

// checkPlanUses fails the test unless the database's plan for query, with
// args bound, uses index.
func checkPlanUses(t *testing.T, s *Store, query, index string, args ...any) {
	t.Helper()
	plan := explain(t, s, query, args...)
	t.Logf("plan on %s:\n%s", s.Dialect(), plan)
	if !strings.Contains(plan, index) {
		t.Fatalf("plan does not use %s:\n%s", index, plan)
	}
}

func TestPurgeTerminalKeepsOpenAndRecentOrders(t *testing.T) {
	s := openTestStore(t, testStoreURL(t))
	ctx := context.Background()
	now := time.Now().UTC()
	old := now.Add(-40 * 24 * time.Hour)
	oldCompleted := orderWithDeadline(t, s, old, old.Add(time.Minute), payment.StatusCompleted)
	oldExpired := orderWithDeadline(t, s, old, old.Add(time.Minute), payment.StatusExpired)
	oldRefunded := orderWithDeadline(t, s, old, old.Add(time.Minute), payment.StatusCompleted, payment.StatusRefunded)
	oldPending := orderWithDeadline(t, s, old, now.Add(time.Hour))
	recent := orderWithDeadline(t, s, now, now.Add(time.Minute), payment.StatusCompleted)
	cutoff := now.Add(-30 * 24 * time.Hour)

	n, err := s.PurgeTerminal(ctx, cutoff, 2)
	if err != nil || n != 2 {
		t.Fatalf("first batch: %d, %v; want 2", n, err)
	}
	n, err = s.PurgeTerminal(ctx, cutoff, 2)
	if err != nil || n != 1 {
		t.Fatalf("second batch: %d, %v; want 1", n, err)
	}
	for _, o := range []payment.Order{oldCompleted, oldExpired, oldRefunded} {
		if _, err := s.Order(ctx, o.ID); !errors.Is(err, payment.ErrOrderNotFound) {
			t.Fatalf("old %s order still there: %v", o.Status, err)
		}
		if events := statusEvents(t, s, o.ID); len(events) != 0 {
			t.Fatalf("old order's %d events still there", len(events))
		}
	}
	for _, o := range []payment.Order{oldPending, recent} {
		if _, err := s.Order(ctx, o.ID); err != nil {
			t.Fatalf("%s order purged: %v", o.Status, err)
		}
	}
	if n, err := s.PurgeTerminal(ctx, cutoff, 2); err != nil || n != 0 {
		t.Fatalf("nothing left to purge, got %d, %v", n, err)
	}
}

func TestAssignMissingDeadlinesAdoptsOnlyOpenLegacyOrders(t *testing.T) {
	s := openTestStore(t, testStoreURL(t))
	ctx := context.Background()
	now := time.Now().UTC()
	legacyPending := orderWithDeadline(t, s, now, time.Time{})
	legacyCompleted := orderWithDeadline(t, s, now, time.Time{}, payment.StatusCompleted)
	windowed := orderWithDeadline(t, s, now, now.Add(time.Hour))
	deadline := now.Add(15 * time.Minute)
	n, err := s.AssignMissingDeadlines(ctx, deadline)
	if err != nil || n != 1 {
		t.Fatalf("assigned %d, %v; want 1", n, err)
	}
	for _, c := range []struct {
		o    payment.Order
		want time.Time
	}{{legacyPending, deadline}, {legacyCompleted, time.Time{}}, {windowed, now.Add(time.Hour)}} {
		got, _ := s.Order(ctx, c.o.ID)
		if got.ExpiresAt.Sub(c.want).Abs() > time.Millisecond || got.ExpiresAt.IsZero() != c.want.IsZero() {
			t.Fatalf("order %s (%s): expiresAt %v, want %v", c.o.ID, c.o.Status, got.ExpiresAt, c.want)
		}
	}
}

func TestCreationQuotaCountsTheStore(t *testing.T) {
	u := testStoreURL(t)
	nodes := []*Store{openTestStore(t, u), openTestStore(t, u)}
	ctx := context.Background()
	now := time.Now().UTC()
	// Three orders from before the period do not count; two inside it do.
	for i := range 5 {
		created := now.Add(-2 * time.Hour)
		if i >= 3 {
			created = now.Add(-time.Minute)
		}
		orderWithDeadline(t, nodes[0], created, created.Add(time.Hour))
	}
	if n, err := nodes[1].CountCreatedSince(ctx, now.Add(-time.Hour)); err != nil || n != 2 {
		t.Fatalf("count %d, %v; want 2", n, err)
	}
	q, err := payment.NewCreationQuota(nodes[1], 4, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := q.Reserve(ctx); err != nil {
			t.Fatalf("reserve %d: %v", i, err)
		}
	}
	if err := q.Reserve(ctx); !errors.Is(err, payment.ErrQuotaExceeded) {
		t.Fatalf("fifth order in the hour: %v, want ErrQuotaExceeded", err)
	}
	for _, bad := range []struct {
		max    int64
		period time.Duration
	}{{0, time.Hour}, {-1, time.Hour}, {1, 0}} {
		if _, err := payment.NewCreationQuota(nodes[0], bad.max, bad.period); err == nil {
			t.Errorf("quota %d per %s accepted", bad.max, bad.period)
		}
	}
}

// A deadline lives in the database: a store opened after a restart, with a
// fresh service and sweeper, still expires the order and announces it.
func TestSweeperExpiresAfterRestartInsideTheWindow(t *testing.T) {
	u := testStoreURL(t)
	ctx := context.Background()
	tokens := mustTokens(t, "restart-secret")
	window := payment.Window{TTL: 2 * time.Second, Min: time.Second, Max: time.Hour}

	first, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	svc1, err := payment.NewService(payment.ServiceDeps{Store: first, Tokens: tokens, Window: window})
	if err != nil {
		t.Fatal(err)
	}
	created, err := svc1.CreateOrder(ctx, payment.NewOrder{Amount: 500})
	if err != nil {
		t.Fatal(err)
	}
	if d := created.ExpiresAt.Sub(created.CreatedAt); d != 2*time.Second {
		t.Fatalf("window %s, want 2s", d)
	}
	if err := first.Close(); err != nil { // the node goes down inside the window
		t.Fatal(err)
	}

	second := openTestStore(t, u)
	notified := make(chan payment.StatusChange, 4)
	svc2, err := payment.NewService(payment.ServiceDeps{Store: second, Tokens: tokens, Window: window, Notifier: chanNotifier(notified)})
	if err != nil {
		t.Fatal(err)
	}
	sweeper, err := payment.NewSweeper(second, svc2, payment.SweepConfig{Every: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = sweeper.Run(runCtx) }()
	defer func() { stop(); <-done }()

	select {
	case c := <-notified:
		lag := time.Since(created.ExpiresAt)
		if c.OrderID != created.ID || c.Status != payment.StatusExpired || c.Seq != 1 {
			t.Fatalf("announced %+v", c)
		}
		if lag < 0 || lag > 2*time.Second {
			t.Fatalf("expired %s after its deadline", lag)
		}
		t.Logf("expired %s after its deadline", lag.Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the order was not expired after the restart")
	}
	snap, err := svc2.Snapshot(ctx, created.ID)
	if err != nil || snap.Status != payment.StatusExpired {
		t.Fatalf("snapshot %+v %v", snap, err)
	}
}

type chanNotifier chan payment.StatusChange

func (n chanNotifier) PaymentStatusChanged(c payment.StatusChange) { n <- c }
func (n chanNotifier) OrderChanged(payment.OrderChange)            {}

// An order whose expiry cannot be written (here an event already squats on
// its next seq) is skipped and reported; the due orders behind it still
// expire, so one bad row cannot stop every expiry.
func TestExpireDueSkipsAnOrderThatFailsAlone(t *testing.T) {
	s := openTestStore(t, testStoreURL(t))
	ctx := context.Background()
	now := time.Now().UTC()
	poisoned := orderWithDeadline(t, s, now.Add(-time.Hour), now.Add(-time.Minute))
	squatter := eventRow{OrderID: poisoned.ID, Seq: 1, Type: "squatter", Source: "test", CreatedAt: now}
	if err := s.db.Create(&squatter).Error; err != nil {
		t.Fatal(err)
	}
	var others []payment.Order
	for range 3 {
		others = append(others, orderWithDeadline(t, s, now.Add(-time.Hour), now.Add(-time.Second)))
	}
	changes, err := s.ExpireDue(ctx, now, 10, nil)
	if !errors.Is(err, payment.ErrExpirySkipped) || !strings.Contains(err.Error(), poisoned.ID) {
		t.Fatalf("error %v, want ErrExpirySkipped naming %s", err, poisoned.ID)
	}
	if len(changes) != len(others) {
		t.Fatalf("%d changes, want %d", len(changes), len(others))
	}
	for _, o := range others {
		if got, _ := s.Order(ctx, o.ID); got.Status != payment.StatusExpired || got.Seq != 1 {
			t.Fatalf("order behind the bad one: %s seq %d", got.Status, got.Seq)
		}
	}
	if got, _ := s.Order(ctx, poisoned.ID); got.Status != payment.StatusPending || got.Seq != 0 {
		t.Fatalf("bad order half-changed: %s seq %d", got.Status, got.Seq)
	}

	// The sweeper announces what moved and reports the rest.
	more := orderWithDeadline(t, s, now.Add(-time.Hour), now.Add(-time.Second))
	notified := make(chan payment.StatusChange, 8)
	svc, err := payment.NewService(payment.ServiceDeps{Store: s, Tokens: mustTokens(t, "skip-secret"), Notifier: chanNotifier(notified)})
	if err != nil {
		t.Fatal(err)
	}
	sweeper, err := payment.NewSweeper(s, svc, payment.SweepConfig{Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	n, err := sweeper.ExpireDue(ctx)
	if n != 1 || !errors.Is(err, payment.ErrExpirySkipped) {
		t.Fatalf("sweeper expired %d, %v", n, err)
	}
	if c := <-notified; c.OrderID != more.ID || c.Status != payment.StatusExpired {
		t.Fatalf("announced %+v", c)
	}
}

// A callback that arrives while a large expiry backlog is being swept waits
// behind a bounded share of it: counted by commit order in the event log,
// at most the expiry chunk in flight when it arrived and the one that
// shares its group go ahead of it (plus one chunk for the instant between
// the count and the submission), however long the backlog.
func TestCallbackWaitsBehindAtMostTwoExpiryChunks(t *testing.T) {
	const chunk, backlog = 8, 3000
	s := openChunkedStore(t, chunk)
	ctx := context.Background()
	now := time.Now().UTC()
	insertDueBacklog(t, s, now, backlog)
	target := orderWithDeadline(t, s, now, now.Add(time.Hour))

	countExpiries := func(beforeEventID int64) int64 {
		t.Helper()
		var n int64
		q := s.db.Model(&eventRow{}).Where("source = ?", payment.SourceExpiry)
		if beforeEventID > 0 {
			q = q.Where("id < ?", beforeEventID)
		}
		if err := q.Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}

	swept := make(chan error, 1)
	go func() {
		_, err := s.ExpireDue(ctx, now, backlog, nil)
		swept <- err
	}()
	// Wait until the sweep has committed something, then count.
	var atSubmit int64
	for deadline := time.Now().Add(30 * time.Second); ; {
		if atSubmit = countExpiries(0); atSubmit > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweep committed nothing")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := s.ApplyTransition(ctx, payment.Transition{OrderID: target.ID, To: payment.StatusProcessing, Source: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := <-swept; err != nil {
		t.Fatal(err)
	}
	var callback eventRow
	if err := s.db.Where("order_id = ? AND seq = 1", target.ID).First(&callback).Error; err != nil {
		t.Fatal(err)
	}
	ahead := countExpiries(callback.ID) - atSubmit
	after := int64(backlog) - countExpiries(callback.ID)
	t.Logf("expiries committed at submission %d, between submission and the callback %d, after it %d", atSubmit, ahead, after)
	if after == 0 {
		t.Fatalf("the callback landed after the whole backlog (%d expiries committed when it was submitted)", atSubmit)
	}
	if ahead > 3*chunk {
		t.Fatalf("%d expiries committed between the callback's submission and its own commit; want at most %d", ahead, 3*chunk)
	}
}

// Due orders expire in one batch (one UPDATE and one INSERT) when nothing
// fails, with the same result as order by order: the order-by-order path
// is only the fallback.
func TestExpireBatchMovesEveryOrderAtOnce(t *testing.T) {
	s := openTestStore(t, testStoreURL(t))
	ctx := context.Background()
	now := time.Now().UTC()
	var due []payment.Order
	for range 5 {
		due = append(due, orderWithDeadline(t, s, now.Add(-time.Hour), now.Add(-time.Second)))
	}
	// One is processing, with the gateway's payment id: its event must
	// carry both, copied from its row.
	due[2].Status, due[2].PaymentID = payment.StatusProcessing, "pay_batch"
	if err := s.db.Model(&orderRow{}).Where("id = ?", due[2].ID).
		Updates(map[string]any{"status": string(due[2].Status), "payment_id": due[2].PaymentID}).Error; err != nil {
		t.Fatal(err)
	}
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	changes, ok := s.expireBatch(ctx, tx, due, payment.SourceExpiry, now, nil)
	if !ok || len(changes) != len(due) {
		_ = tx.Rollback()
		t.Fatalf("batch: ok %v, %d changes, want %d", ok, len(changes), len(due))
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for i, o := range due {
		c := changes[i]
		if c.OrderID != o.ID || c.Status != payment.StatusExpired || c.Seq != o.Seq+1 || c.PreviousStatus != o.Status {
			t.Fatalf("change %d: %+v for %s seq %d", i, c, o.ID, o.Seq)
		}
		got, err := s.Order(ctx, o.ID)
		if err != nil || got.Status != payment.StatusExpired || got.Seq != o.Seq+1 {
			t.Fatalf("order %s: %s seq %d, %v", o.ID, got.Status, got.Seq, err)
		}
		events, err := s.Events(ctx, o.ID)
		if err != nil || len(events) == 0 {
			t.Fatalf("events of %s: %+v, %v", o.ID, events, err)
		}
		ev := events[len(events)-1]
		want := payment.Event{ID: ev.ID, OrderID: o.ID, Seq: o.Seq + 1, Type: "status", Status: payment.StatusExpired,
			PreviousStatus: o.Status, Source: payment.SourceExpiry, PaymentID: o.PaymentID, CreatedAt: ev.CreatedAt}
		if ev != want || !ev.CreatedAt.Equal(now.Truncate(time.Microsecond)) && !ev.CreatedAt.Equal(now) {
			t.Fatalf("event of %s:\n got %+v\nwant %+v at %v", o.ID, ev, want, now)
		}
	}
}

// Chunks of every size a sweep makes (a full one, what its batch leaves
// over, and one that finds fewer orders due) run on the same statements:
// each way, every due order moves once, with one event and its seq raised
// by one, and an order not yet due stays pending.
func TestExpireDueInFullAndShortChunks(t *testing.T) {
	const chunk = 8
	for _, due := range []int{chunk, 2 * chunk, 2*chunk + 3, 3} {
		t.Run(fmt.Sprintf("due-%d", due), func(t *testing.T) {
			ctx := context.Background()
			s := openChunkedStore(t, chunk)
			now := time.Now().UTC()
			before := map[string]payment.Order{}
			for range due {
				o := orderWithDeadline(t, s, now.Add(-time.Hour), now.Add(-time.Minute))
				before[o.ID] = o
			}
			later := orderWithDeadline(t, s, now.Add(-time.Hour), now.Add(time.Hour))

			// A sweep batch of 12 asks for chunks of 8 and 4.
			var changes []payment.StatusChange
			for {
				got, err := s.ExpireDue(ctx, now, 12, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) == 0 {
					break
				}
				changes = append(changes, got...)
			}
			if len(changes) != due {
				t.Fatalf("expired %d orders, want %d", len(changes), due)
			}
			for id, o := range before {
				got, err := s.Order(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != payment.StatusExpired || got.Seq != o.Seq+1 {
					t.Fatalf("order %s: status %s seq %d, want expired seq %d", id, got.Status, got.Seq, o.Seq+1)
				}
				var events int64
				if err := s.db.Model(&eventRow{}).Where("order_id = ? AND source = ?", id, payment.SourceExpiry).Count(&events).Error; err != nil {
					t.Fatal(err)
				}
				if events != 1 {
					t.Fatalf("order %s has %d expiry events, want 1", id, events)
				}
			}
			if got, err := s.Order(ctx, later.ID); err != nil || got.Status != payment.StatusPending {
				t.Fatalf("order not yet due: %+v, %v", got, err)
			}
		})
	}
}

// expireBatch itself, below the sweep's fallback to order-by-order writes
// (which would hide a batch statement that fails): a full chunk, on the
// prepared statements, and a shorter one must each go through as one batch.
func TestExpireBatchWithPreparedAndAdHocStatements(t *testing.T) {
	const chunk = 8
	for _, n := range []int{chunk, 3} {
		t.Run(fmt.Sprintf("orders-%d", n), func(t *testing.T) {
			ctx := context.Background()
			s := openChunkedStore(t, chunk)
			now := time.Now().UTC()
			orders := make([]payment.Order, n)
			for i := range orders {
				orders[i] = orderWithDeadline(t, s, now.Add(-time.Hour), now.Add(-time.Minute))
			}
			tx, err := s.sqlDB.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			changes, ok := s.expireBatch(ctx, tx, orders, payment.SourceExpiry, now, nil)
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if !ok || len(changes) != n {
				t.Fatalf("batch of %d: ok=%v, %d changes", n, ok, len(changes))
			}
			for _, o := range orders {
				if got, err := s.Order(ctx, o.ID); err != nil || got.Status != payment.StatusExpired {
					t.Fatalf("order %s after the batch: %+v, %v", o.ID, got, err)
				}
			}
		})
	}
}

// insertDueBacklog stores n pending orders whose deadlines passed a minute
// before now, one microsecond apart.
func insertDueBacklog(t *testing.T, s *Store, now time.Time, n int) {
	t.Helper()
	rows := make([]orderRow, n)
	for i := range rows {
		o, err := payment.NewPendingOrder(payment.NewOrder{Amount: 100, Currency: "INR"}, now.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		o.ExpiresAt = now.Add(-time.Minute + time.Duration(i)*time.Microsecond)
		rows[i] = newOrderRow(o)
	}
	if err := s.db.CreateInBatches(rows, 500).Error; err != nil {
		t.Fatal(err)
	}
}

// A grouped expiry chunk goes expiryStep orders at a time and stops once
// told to give way; the orders it leaves stay due, and the sweep goes on
// with them in the next chunk instead of taking the short chunk for the
// end of what is due.
func TestExpiryChunkGivesWay(t *testing.T) {
	const chunk = 4 * expiryStep
	cases := []struct {
		name        string
		giveWayFrom int // the giveWay call from which it reports true; 0: never
		want        int
		yielded     bool
	}{
		{"never asked to give way", 0, chunk, false},
		{"asked at the first look", 1, expiryStep, true},
		{"asked at the third look", 3, 3 * expiryStep, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openChunkedStore(t, chunk)
			ctx := context.Background()
			now := time.Now().UTC()
			insertDueBacklog(t, s, now, chunk+5)
			calls := 0
			giveWay := func() bool {
				calls++
				return c.giveWayFrom > 0 && calls >= c.giveWayFrom
			}
			tx, err := s.sqlDB.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			changes, failed, yielded, err := s.expireChunk(ctx, tx, now, chunk, giveWay, nil)
			if err != nil || len(failed) > 0 {
				_ = tx.Rollback()
				t.Fatalf("expire chunk: %v %v", err, failed)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if len(changes) != c.want || yielded != c.yielded {
				t.Fatalf("chunk expired %d orders, yielded %v; want %d, %v", len(changes), yielded, c.want, c.yielded)
			}
			var expired int64
			if err := s.db.Model(&orderRow{}).Where("status = ?", payment.StatusExpired).Count(&expired).Error; err != nil {
				t.Fatal(err)
			}
			if expired != int64(c.want) {
				t.Fatalf("%d orders stored as expired, want %d", expired, c.want)
			}
		})
	}

	t.Run("the sweep goes on after chunks that gave way", func(t *testing.T) {
		const backlog = 10*chunk + 7
		s := openChunkedStore(t, chunk)
		s.giveWay = func() bool { return true }
		ctx := context.Background()
		now := time.Now().UTC()
		insertDueBacklog(t, s, now, backlog)
		changes, err := s.ExpireDue(ctx, now, backlog, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) != backlog {
			t.Fatalf("the sweep expired %d of %d due orders", len(changes), backlog)
		}
	})
}

// ExpireDue appends to the slice it is given and leaves what was there, so
// a sweep can hand back the previous batch's slice; past its length the
// slice is scratch.
func TestExpireDueAppendsToDst(t *testing.T) {
	for _, mode := range []struct {
		name  string
		group GroupMode
	}{{"grouped", GroupOn}, {"alone", GroupOff}} {
		t.Run(mode.name, func(t *testing.T) {
			s := openStoreWith(t, Config{GroupCommit: mode.group})
			ctx := context.Background()
			now := time.Now().UTC()
			due := []payment.Order{
				orderWithDeadline(t, s, now.Add(-time.Minute), now.Add(-time.Second)),
				orderWithDeadline(t, s, now.Add(-time.Minute), now.Add(-time.Second)),
			}
			// A third, due after the others: the limit counts only the
			// changes this call appends, so it is left for the next call.
			last := orderWithDeadline(t, s, now.Add(-time.Minute), now.Add(-time.Millisecond))
			kept := payment.StatusChange{Source: "earlier batch"}
			kept.OrderID = "ord_kept"
			dst := make([]payment.StatusChange, 1, 8)
			dst[0] = kept
			// Leftovers past the length must not leak into the result.
			stale := dst[:4]
			stale[1].OrderID, stale[2].OrderID, stale[3].OrderID = "stale1", "stale2", "stale3"
			got, err := s.ExpireDue(ctx, now, 2, dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || got[0].OrderID != kept.OrderID || got[0].Source != kept.Source {
				t.Fatalf("changes %+v, want the kept one and then two expiries", got)
			}
			ids := map[string]bool{got[1].OrderID: true, got[2].OrderID: true}
			for _, o := range due {
				if !ids[o.ID] {
					t.Fatalf("order %s missing from %+v", o.ID, got)
				}
			}
			again, err := s.ExpireDue(ctx, now, 10, got[:1])
			if err != nil || len(again) != 2 || again[0].OrderID != kept.OrderID || again[1].OrderID != last.ID {
				t.Fatalf("second call: %+v, %v; want the kept change and %s", again, err, last.ID)
			}
			if again, err := s.ExpireDue(ctx, now, 10, got[:1]); err != nil || len(again) != 1 || again[0].OrderID != kept.OrderID {
				t.Fatalf("nothing due: %+v, %v; want only the kept change", again, err)
			}
		})
	}
}

// A batch's ids come as one JSON array, and each must still be looked up
// in the primary key: a sweep with a backlog has many open orders, and
// scanning them for every batch would cost more the further behind it is.
func TestBatchExpiryLooksUpByPrimaryKey(t *testing.T) {
	s := openTestStore(t, testStoreURL(t))
	now := time.Now().UTC()
	insertPlanOrders(t, s, now, "ord_batch", func(int) payment.Status { return payment.StatusPending })
	if _, err := s.sqlDB.Exec("ANALYZE"); err != nil {
		t.Fatal(err)
	}
	update, insert := batchStatements(s.postgres)
	primaryKey := "sqlite_autoindex_orders_1"
	if s.postgres {
		primaryKey = "orders_pkey"
	}
	ids := string(batchIDs(nil, []payment.Order{{ID: "ord_batch_00100"}, {ID: "ord_batch_00200"}}))
	for _, q := range []struct {
		name, query string
		args        []any
	}{
		{"update", update, []any{string(payment.StatusExpired), now, ids}},
		{"events", insert, []any{payment.SourceExpiry, now, ids}},
	} {
		t.Run(q.name, func(t *testing.T) { checkPlanUses(t, s, q.query, primaryKey, q.args...) })
	}
}

// A batch's ids reach the database as one JSON array; any id, however odd,
// must come back out of it unchanged.
func TestBatchIDsIsJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		ids  []string
	}{
		{"none", nil},
		{"one", []string{"ord_0123456789abcdefghijklmn"}},
		{"several", []string{"a", "b-c", "d_e"}},
		{"quotes and backslashes", []string{`x"y`, `back\slash`}},
		{"control and non-ASCII", []string{"tab\there", "caf\u00e9", "\x7f"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orders := make([]payment.Order, len(tc.ids))
			for i, id := range tc.ids {
				orders[i].ID = id
			}
			got := batchIDs(nil, orders)
			var back []string
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("%s is not JSON: %v", got, err)
			}
			if len(back) != len(tc.ids) {
				t.Fatalf("%s holds %d ids, want %d", got, len(back), len(tc.ids))
			}
			for i := range back {
				if back[i] != tc.ids[i] {
					t.Fatalf("id %d came back as %q, want %q", i, back[i], tc.ids[i])
				}
			}
		})
	}
}
