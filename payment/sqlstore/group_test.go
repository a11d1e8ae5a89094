package sqlstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"paystatus/payment"
)

// queued reports how many changes wait in the store's group queue.
func queued(s *Store) int {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return len(s.group.queue)
}

// groupSizes records the size of each group a store commits.
type groupSizes struct {
	mu   sync.Mutex
	seen []int // guarded by mu
}

func (g *groupSizes) observe(n, _ int) {
	g.mu.Lock()
	g.seen = append(g.seen, n)
	g.mu.Unlock()
}

// sizes returns a copy of the sizes recorded so far.
func (g *groupSizes) sizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.seen...)
}

func (g *groupSizes) reset() {
	g.mu.Lock()
	g.seen = nil
	g.mu.Unlock()
}

// openObservedStore opens a store with group commit on that records its
// groups' sizes.
func openObservedStore(t *testing.T) (*Store, *groupSizes) {
	t.Helper()
	groups := &groupSizes{}
	s, err := New(context.Background(), Config{URL: testStoreURL(t), GroupCommit: GroupOn, observeGroup: groups.observe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, groups
}

// One group holds changes that fail their guard (status machine, delivery
// key, unknown order, an event that cannot be stored) next to changes that
// succeed: each failure comes back alone, with nothing of it kept, and the
// others commit.
func TestGroupedChangeFailsAlone(t *testing.T) {
	s, groups := openObservedStore(t)
	ctx := context.Background()
	good, done, squatted, dupA, dupB := newTestOrder(t, s), newTestOrder(t, s), newTestOrder(t, s), newTestOrder(t, s), newTestOrder(t, s)
	if _, err := s.ApplyTransition(ctx, payment.Transition{OrderID: done.ID, To: payment.StatusFailed, Source: "test"}); err != nil {
		t.Fatal(err)
	}
	// An event already holds squatted's next seq: its transition passes the
	// status check and updates the order, then cannot append its event.
	if err := s.db.Create(&eventRow{OrderID: squatted.ID, Seq: 1, Type: "squatter", Source: "test", CreatedAt: time.Now().UTC()}).Error; err != nil {
		t.Fatal(err)
	}
	key := "evt_" + randomHex(t, 6)
	changes := []struct {
		name string
		tr   payment.Transition
		want error
	}{
		{"valid", payment.Transition{OrderID: good.ID, To: payment.StatusCompleted, Source: "test"}, nil},
		{"refused by the status machine", payment.Transition{OrderID: done.ID, To: payment.StatusCompleted, Source: "test"}, payment.ErrInvalidTransition},
		{"unknown order", payment.Transition{OrderID: "ord_nothere", To: payment.StatusCompleted, Source: "test"}, payment.ErrOrderNotFound},
		{"event seq taken", payment.Transition{OrderID: squatted.ID, To: payment.StatusCompleted, Source: "test"}, errAny},
		{"first of a delivery", payment.Transition{OrderID: dupA.ID, To: payment.StatusCompleted, Source: "upi", DeliveryID: key}, nil},
		{"repeat of a delivery in the same group", payment.Transition{OrderID: dupB.ID, To: payment.StatusCompleted, Source: "upi", DeliveryID: key}, payment.ErrDuplicateEvent},
	}
	// Hold the one SQLite connection, or a Postgres group's, so that every
	// change queues before the group starts.
	held, err := s.sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.postgres {
		_ = held.Close() // Postgres has a pool; the queue fills fast enough
		held = nil
	}
	errs := make([]error, len(changes))
	var wg sync.WaitGroup
	for i, c := range changes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.ApplyTransition(ctx, c.tr)
		}()
		if held != nil {
			waitUntil(t, "the change to queue", func() bool { return queued(s) == i+1 })
		}
	}
	if held != nil {
		_ = held.Close()
	}
	wg.Wait()
	// On SQLite the held connection queues the changes in order, so the
	// first of the two deliveries wins. A Postgres group has no such hold:
	// the two race, and either may win, but exactly one must.
	dupWinner, dupLoser := dupA, dupB
	if s.postgres && errs[4] != nil && errs[5] == nil {
		changes[4].want, changes[5].want = payment.ErrDuplicateEvent, nil
		dupWinner, dupLoser = dupB, dupA
	}
	for i, c := range changes {
		switch {
		case c.want == nil && errs[i] != nil:
			t.Errorf("%s: %v", c.name, errs[i])
		case c.want == errAny && errs[i] == nil:
			t.Errorf("%s: succeeded", c.name)
		case c.want != nil && c.want != errAny && !errors.Is(errs[i], c.want):
			t.Errorf("%s: got %v, want %v", c.name, errs[i], c.want)
		}
	}
	for _, want := range []struct {
		o      payment.Order
		status payment.Status
		seq    int64
	}{{good, payment.StatusCompleted, 1}, {done, payment.StatusFailed, 1}, {squatted, payment.StatusPending, 0}, {dupWinner, payment.StatusCompleted, 1}, {dupLoser, payment.StatusPending, 0}} {
		got, err := s.Order(ctx, want.o.ID)
		if err != nil || got.Status != want.status || got.Seq != want.seq {
			t.Errorf("order %s: %s seq %d (%v), want %s seq %d", want.o.ID, got.Status, got.Seq, err, want.status, want.seq)
		}
	}
	if !s.postgres {
		// The order creations and the setup transition were groups of one;
		// the held connection made the six changes one group.
		if sizes := groups.sizes(); sizes[len(sizes)-1] != len(changes) {
			t.Errorf("group sizes %v, want the last to hold all %d changes", sizes, len(changes))
		}
	}
}

// errAny stands for any error in a table.
var errAny = errors.New("any error")

// A change whose request ends while it is queued is dropped; the store
// stays usable and commits the next change.
func TestQueuedChangeGivesUpWithItsRequest(t *testing.T) {
	s, err := New(context.Background(), Config{URL: testStoreURL(t), GroupCommit: GroupOn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if s.postgres {
		t.Skip("holding the writer applies to SQLite's one connection")
	}
	o := newTestOrder(t, s)
	held, err := s.sqlDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = s.ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "test"})
	_ = held.Close()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	if _, err := s.ApplyTransition(context.Background(), payment.Transition{OrderID: o.ID, To: payment.StatusFailed, Source: "test"}); err != nil {
		t.Fatalf("next change: %v", err)
	}
	if got, _ := s.Order(context.Background(), o.ID); got.Status != payment.StatusFailed || got.Seq != 1 {
		t.Fatalf("order %+v, want failed at seq 1 (the dropped change must not apply)", got)
	}
}

// Close fails changes submitted afterwards instead of hanging them.
func TestChangeAfterCloseFails(t *testing.T) {
	s, err := New(context.Background(), Config{URL: testStoreURL(t), GroupCommit: GroupOn})
	if err != nil {
		t.Fatal(err)
	}
	o := newTestOrder(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.ApplyTransition(context.Background(), payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "test"}); err == nil {
		t.Fatal("a change after Close succeeded")
	}
}

func TestStoreConfigRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"unknown group mode", Config{URL: "x.db", GroupCommit: "sometimes"}},
		{"negative group size", Config{URL: "x.db", GroupMax: -1}},
		{"negative queue", Config{URL: "x.db", GroupQueue: -1}},
		{"negative wait", Config{URL: "x.db", GroupWait: -time.Millisecond}},
		{"wait too long", Config{URL: "x.db", GroupWait: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(context.Background(), tc.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
		})
	}
}

// A group takes the interactive changes first, up to its cap. A background
// op joins only a group without them, or, once it has waited
// backgroundMaxDefer, even a full one: a callback rarely shares its group
// with an expiry chunk, and a stream of callbacks cannot starve the sweep.
func TestGroupTakesInteractiveFirstAndOneBackgroundOp(t *testing.T) {
	g := &groupCommitter{maxBatch: 2}
	op := func(background bool) *groupOp {
		return &groupOp{background: background, queued: time.Now(), done: make(chan struct{})}
	}
	bg1, bg2 := op(true), op(true)
	in1, in2, in3 := op(false), op(false), op(false)
	g.background = []*groupOp{bg1, bg2}
	g.queue = []*groupOp{in1, in2, in3}
	if got := g.take(); len(got) != 2 || got[0] != in1 || got[1] != in2 {
		t.Fatalf("first group %v, want in1, in2 and no background op", got)
	}
	bg1.queued = time.Now().Add(-backgroundMaxDefer)
	if got := g.take(); len(got) != 2 || got[0] != in3 || got[1] != bg1 {
		t.Fatalf("second group %v, want in3 and bg1, which waited its longest", got)
	}
	if got := g.take(); len(got) != 1 || got[0] != bg2 {
		t.Fatalf("third group %v, want bg2 alone", got)
	}
	if got := g.take(); len(got) != 0 {
		t.Fatalf("fourth group %v, want none", got)
	}
	// A retried background op goes back to the front of its own queue.
	bg3 := op(true)
	g.background = []*groupOp{bg3}
	g.requeue([]*groupOp{bg2})
	if len(g.queue) != 0 || len(g.background) != 2 || g.background[0] != bg2 {
		t.Fatalf("requeued: interactive %v, background %v", g.queue, g.background)
	}
}

// A change queued while a group's statements run joins that group before
// its commit, instead of waiting for the commit and then a group of its
// own; a failure among the joiners still fails alone.
func TestChangesQueuedDuringAGroupJoinIt(t *testing.T) {
	s, groups := openObservedStore(t)
	ctx := context.Background()
	first, joiner := newTestOrder(t, s), newTestOrder(t, s)
	groups.reset()

	// The first change holds its group open until the others have queued.
	started, release := make(chan struct{}), make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- s.group.submit(ctx, func(ctx context.Context, tx writeTx) error {
			close(started)
			<-release
			_, err := s.applyTransition(ctx, tx, payment.Transition{OrderID: first.ID, To: payment.StatusProcessing, Source: "test"}, nil)
			return err
		})
	}()
	<-started
	joined := make([]error, 2)
	var wg sync.WaitGroup
	for i, tr := range []payment.Transition{
		{OrderID: joiner.ID, To: payment.StatusCompleted, Source: "test"},
		{OrderID: "ord_nothere", To: payment.StatusCompleted, Source: "test"},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, joined[i] = s.ApplyTransition(ctx, tr)
		}()
		waitUntil(t, "the change to queue", func() bool { return queued(s) == i+1 })
	}
	close(release)
	wg.Wait()
	if err := <-firstDone; err != nil {
		t.Fatalf("first change: %v", err)
	}
	if joined[0] != nil {
		t.Fatalf("joining change: %v", joined[0])
	}
	if !errors.Is(joined[1], payment.ErrOrderNotFound) {
		t.Fatalf("joining change for an unknown order: %v, want ErrOrderNotFound", joined[1])
	}
	if sizes := groups.sizes(); len(sizes) != 1 || sizes[0] != 3 {
		t.Fatalf("groups committed: %v, want one of 3", sizes)
	}
	for id, want := range map[string]payment.Status{first.ID: payment.StatusProcessing, joiner.ID: payment.StatusCompleted} {
		if o, err := s.Order(ctx, id); err != nil || o.Status != want {
			t.Fatalf("order %s: %v %v, want %s", id, o.Status, err, want)
		}
	}
}
