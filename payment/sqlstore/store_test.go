package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"paystatus/payment"
	"strings"
	"sync"
	"testing"
	"time"
)

// Store tests run on the database named by TEST_DATABASE_URL (a postgres://
// URL) or, by default, on a fresh SQLite file, like the server package.

// testStoreURL returns the database URL for one test. On Postgres each call
// gets its own schema, so migrations start from nothing and tests cannot see
// each other's rows.
func testStoreURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		return filepath.Join(t.TempDir(), "store.db")
	}
	schema := "t_" + randomHex(t, 8)
	admin, err := Open(context.Background(), base)
	if err != nil {
		t.Fatalf("open %s: %v", redact(base), err)
	}
	defer admin.Close()
	if err := admin.db.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		cleanup, err := Open(context.Background(), base)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer cleanup.Close()
		if err := cleanup.db.Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema) // pgx passes unknown parameters to the server
	u.RawQuery = q.Encode()
	return u.String()
}

func isPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

func redact(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	return "(unparsable URL)"
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// openTestStore opens a store on url and closes it when the test ends.
func openTestStore(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// twoNodes opens two stores on one database, as two nodes would: one
// commits in groups and the other change by change, so races between the
// two kinds are covered on either database.
func twoNodes(t *testing.T, u string) []*Store {
	t.Helper()
	nodes := make([]*Store, 2)
	for i, mode := range []GroupMode{GroupOn, GroupOff} {
		s, err := New(context.Background(), Config{URL: u, GroupCommit: mode})
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		nodes[i] = s
	}
	return nodes
}

// newTestOrder stores a pending order with sensible defaults.
func newTestOrder(t *testing.T, s *Store) payment.Order {
	t.Helper()
	o, err := createOrder(context.Background(), s, payment.NewOrder{Amount: 49900, Currency: "inr", Description: "store test"})
	if err != nil {
		t.Fatalf("create order: %v", err)
	}
	return o
}

// createOrder builds a pending order as the domain does and stores it. It
// may run on any goroutine.
func createOrder(ctx context.Context, s *Store, in payment.NewOrder) (payment.Order, error) {
	o, err := payment.NewPendingOrder(in, time.Now())
	if err != nil {
		return payment.Order{}, err
	}
	return o, s.InsertOrder(ctx, o)
}

// newTestService is a payment service over s.
func newTestService(t *testing.T, s *Store) *payment.Service {
	t.Helper()
	tokens, err := payment.NewTokens([]byte("sqlstore-test-secret-of-some-length"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := payment.NewService(payment.ServiceDeps{Store: s, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func statusEvents(t *testing.T, s *Store, orderID string) []payment.Event {
	t.Helper()
	events, err := s.Events(context.Background(), orderID)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	return events
}

// race runs fn n times at once, starting together, and returns the errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = fn(i)
		}()
	}
	start.Done()
	done.Wait()
	return errs
}

func TestOpenStoreRejectsBadURLs(t *testing.T) {
	for _, tc := range []struct{ name, url string }{
		{"empty SQLite path", ""},
		{"empty sqlite:// path", "sqlite://"},
		{"unreachable Postgres", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"},
		{"malformed Postgres URL", "postgres://%zz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), tc.url)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q) succeeded", tc.url)
			}
		})
	}
}

// Nodes that start together all migrate the same database; each must come
// up, and the schema must be whole afterwards.
func TestMigrationsWhenNodesStartTogether(t *testing.T) {
	u := testStoreURL(t)
	const nodes = 6
	stores := make([]*Store, nodes)
	errs := race(nodes, func(i int) error {
		s, err := Open(context.Background(), u)
		stores[i] = s
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	for _, s := range stores {
		if s != nil {
			t.Cleanup(func() { _ = s.Close() })
		}
	}
	if t.Failed() {
		return
	}
	// Every node can use the schema, and sees what another wrote.
	o := newTestOrder(t, stores[0])
	for i, s := range stores {
		got, err := s.Order(context.Background(), o.ID)
		if err != nil || got.ID != o.ID {
			t.Errorf("node %d: order %s: %v", i, o.ID, err)
		}
	}
	if _, err := stores[nodes-1].ApplyTransition(context.Background(), payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "test", DeliveryID: "d1"}); err != nil {
		t.Fatalf("transition on last node: %v", err)
	}
	// Migrating again over an existing schema is a no-op.
	again := openTestStore(t, u)
	if got, err := again.Order(context.Background(), o.ID); err != nil || got.Status != payment.StatusCompleted {
		t.Fatalf("after re-migration: %+v %v", got, err)
	}
}

// Two stores with their own connection pools stand in for two nodes: the
// database alone must make concurrent changes to one order take turns.
func TestConcurrentTransitionsAcrossNodes(t *testing.T) {
	u := testStoreURL(t)
	nodes := twoNodes(t, u)
	ctx := context.Background()

	for _, tc := range []struct {
		name    string
		targets []payment.Status // tried round-robin, all at once
	}{
		{"same status from every request", []payment.Status{payment.StatusCompleted}},
		{"competing outcomes", []payment.Status{payment.StatusCompleted, payment.StatusFailed, payment.StatusExpired}},
		{"processing and completion together", []payment.Status{payment.StatusProcessing, payment.StatusCompleted}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newTestOrder(t, nodes[0])
			const requests = 12
			errs := race(requests, func(i int) error {
				_, err := nodes[i%len(nodes)].ApplyTransition(ctx, payment.Transition{
					OrderID: o.ID, To: tc.targets[i%len(tc.targets)], Source: "test",
				})
				return err
			})
			wins := 0
			for _, err := range errs {
				switch {
				case err == nil:
					wins++
				case errors.Is(err, payment.ErrInvalidTransition):
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}
			final, err := nodes[1].Order(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			events := statusEvents(t, nodes[0], o.ID)
			// Every accepted change is one event with the next seq, and
			// the order's seq counts them.
			if int64(len(events)) != final.Seq || wins != len(events) {
				t.Fatalf("wins %d, events %d, final seq %d", wins, len(events), final.Seq)
			}
			for i, ev := range events {
				if ev.Seq != int64(i+1) {
					t.Fatalf("event %d has seq %d", i, ev.Seq)
				}
				if i > 0 && ev.PreviousStatus != events[i-1].Status {
					t.Fatalf("event %d starts from %s, previous event ended at %s", i, ev.PreviousStatus, events[i-1].Status)
				}
			}
			if events[len(events)-1].Status != final.Status {
				t.Fatalf("last event %s, order %s", events[len(events)-1].Status, final.Status)
			}
			if !final.Status.Terminal() {
				t.Fatalf("order ended %s", final.Status)
			}
			// Only one terminal outcome may ever be accepted.
			terminal := 0
			for _, ev := range events {
				if ev.Status.Terminal() {
					terminal++
				}
			}
			if terminal != 1 {
				t.Fatalf("%d terminal events: %+v", terminal, events)
			}
		})
	}
}

// A gateway retries deliveries and may hit two nodes at once; the dedup key
// must let exactly one through.
func TestConcurrentDuplicateDeliveries(t *testing.T) {
	u := testStoreURL(t)
	nodes := twoNodes(t, u)
	ctx := context.Background()

	t.Run("same delivery to one order", func(t *testing.T) {
		o := newTestOrder(t, nodes[0])
		errs := race(10, func(i int) error {
			_, err := nodes[i%2].ApplyTransition(ctx, payment.Transition{
				OrderID: o.ID, To: payment.StatusProcessing, Source: "upi", DeliveryID: "evt_same", Lenient: true,
			})
			return err
		})
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, payment.ErrDuplicateEvent):
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d deliveries accepted, want 1", wins)
		}
		if events := statusEvents(t, nodes[1], o.ID); len(events) != 1 || *events[0].DedupKey != "upi:evt_same" {
			t.Fatalf("events: %+v", events)
		}
	})

	t.Run("same delivery id to two orders", func(t *testing.T) {
		a, b := newTestOrder(t, nodes[0]), newTestOrder(t, nodes[1])
		errs := race(2, func(i int) error {
			id := []string{a.ID, b.ID}[i]
			_, err := nodes[i].ApplyTransition(ctx, payment.Transition{OrderID: id, To: payment.StatusCompleted, Source: "stripe", DeliveryID: "evt_shared"})
			return err
		})
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, payment.ErrDuplicateEvent):
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d deliveries accepted, want 1", wins)
		}
		// The loser changed nothing.
		total := len(statusEvents(t, nodes[0], a.ID)) + len(statusEvents(t, nodes[0], b.ID))
		if total != 1 {
			t.Fatalf("%d events across both orders, want 1", total)
		}
	})

	t.Run("same delivery id from different gateways", func(t *testing.T) {
		o := newTestOrder(t, nodes[0])
		for i, src := range []string{"razorpay", "stripe"} {
			to := []payment.Status{payment.StatusProcessing, payment.StatusCompleted}[i]
			if _, err := nodes[i].ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: to, Source: src, DeliveryID: "evt_1"}); err != nil {
				t.Fatalf("%s: %v", src, err)
			}
		}
	})
}

func TestTransitionRejectsBadInputWithoutChanges(t *testing.T) {
	s := openTestStore(t, testStoreURL(t))
	ctx := context.Background()
	amount := func(n int64) *int64 { return &n }

	for _, tc := range []struct {
		name  string
		setup payment.Status // moved to before the bad request; "" stays pending
		tr    func(id string) payment.Transition
		want  error
	}{
		{"malformed order id", "", func(string) payment.Transition {
			return payment.Transition{OrderID: "bad id!", To: payment.StatusCompleted, Source: "test"}
		}, payment.ErrOrderNotFound},
		{"unknown order", "", func(string) payment.Transition {
			return payment.Transition{OrderID: "ord_missing", To: payment.StatusCompleted, Source: "test"}
		}, payment.ErrOrderNotFound},
		{"amount mismatch", "", func(id string) payment.Transition {
			return payment.Transition{OrderID: id, To: payment.StatusCompleted, Source: "test", Amount: amount(1)}
		}, payment.ErrAmountMismatch},
		{"currency mismatch", "", func(id string) payment.Transition {
			return payment.Transition{OrderID: id, To: payment.StatusCompleted, Source: "test", Currency: "USD"}
		}, payment.ErrAmountMismatch},
		{"backwards move", payment.StatusCompleted, func(id string) payment.Transition {
			return payment.Transition{OrderID: id, To: payment.StatusPending, Source: "test"}
		}, payment.ErrInvalidTransition},
		{"late delivery is stale when lenient", payment.StatusCompleted, func(id string) payment.Transition {
			return payment.Transition{OrderID: id, To: payment.StatusProcessing, Source: "test", Lenient: true}
		}, payment.ErrStaleEvent},
		{"second outcome", payment.StatusFailed, func(id string) payment.Transition {
			return payment.Transition{OrderID: id, To: payment.StatusCompleted, Source: "test"}
		}, payment.ErrInvalidTransition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newTestOrder(t, s)
			if tc.setup != "" {
				if _, err := s.ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: tc.setup, Source: "test"}); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := s.Order(ctx, o.ID)
			_, err := s.ApplyTransition(ctx, tc.tr(o.ID))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			after, _ := s.Order(ctx, o.ID)
			if after.Status != before.Status || after.Seq != before.Seq {
				t.Fatalf("order changed: %+v -> %+v", before, after)
			}
			if n := len(statusEvents(t, s, o.ID)); int64(n) != before.Seq {
				t.Fatalf("%d events for seq %d", n, before.Seq)
			}
		})
	}
}

// Bad input for a new order is refused by the domain before the store sees
// it, and nothing is stored.
func TestCreateOrderRejectsBadInput(t *testing.T) {
	s := openTestStore(t, testStoreURL(t))
	svc := newTestService(t, s)
	for _, tc := range []struct {
		name string
		in   payment.NewOrder
	}{
		{"zero amount", payment.NewOrder{Amount: 0}},
		{"negative amount", payment.NewOrder{Amount: -5}},
		{"huge amount", payment.NewOrder{Amount: payment.MaxAmount + 1}},
		{"bad currency", payment.NewOrder{Amount: 100, Currency: "RUPEES"}},
		{"long description", payment.NewOrder{Amount: 100, Description: strings.Repeat("x", payment.MaxDescriptionLength+1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := svc.CreateOrder(context.Background(), tc.in); !errors.Is(err, payment.ErrInvalidOrder) {
				t.Fatalf("got %v, want payment.ErrInvalidOrder", err)
			}
		})
	}
	var n int64
	if err := s.db.Model(&orderRow{}).Count(&n).Error; err != nil || n != 0 {
		t.Fatalf("%d orders stored after bad input (%v)", n, err)
	}
}

func TestUpdateOrderAcrossNodesKeepsSeqInStep(t *testing.T) {
	u := testStoreURL(t)
	nodes := twoNodes(t, u)
	ctx := context.Background()
	o := newTestOrder(t, nodes[0])
	const writers = 8
	errs := race(writers, func(i int) error {
		d := "update " + string(rune('a'+i))
		if i%2 == 0 {
			_, err := nodes[i%2].UpdateOrder(ctx, o.ID, payment.OrderPatch{Description: &d}, []byte(`{}`))
			return err
		}
		_, err := nodes[i%2].ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusProcessing, Source: "test"})
		return err
	})
	okCount := 0
	for _, err := range errs {
		if err == nil {
			okCount++
		} else if !errors.Is(err, payment.ErrInvalidTransition) {
			t.Errorf("unexpected error: %v", err)
		}
	}
	final, err := nodes[1].Order(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	events := statusEvents(t, nodes[0], o.ID)
	if int64(okCount) != final.Seq || len(events) != okCount {
		t.Fatalf("%d accepted, seq %d, %d events", okCount, final.Seq, len(events))
	}
	// Four description updates always apply; one of the four processing
	// moves wins.
	if okCount != writers/2+1 {
		t.Fatalf("%d accepted, want %d", okCount, writers/2+1)
	}
}

func TestPingFailsAfterClose(t *testing.T) {
	s, err := Open(context.Background(), testStoreURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("ping open store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("ping succeeded on a closed store")
	}
}

func TestDialectFollowsURL(t *testing.T) {
	u := testStoreURL(t)
	s := openTestStore(t, u)
	want := "sqlite"
	if isPostgresURL(u) {
		want = "postgres"
	}
	if got := s.Dialect(); got != want {
		t.Fatalf("dialect %q, want %q", got, want)
	}
}

// A burst of requests larger than Postgres's max_connections (100 by
// default) must queue on the node's bounded pool, not be refused. Each
// request holds its connection for a moment, as a slow query would.
func TestBurstLargerThanServerConnectionLimit(t *testing.T) {
	u := testStoreURL(t)
	if !isPostgresURL(u) {
		t.Skip("the connection cap applies to Postgres; set TEST_DATABASE_URL to run this")
	}
	s := openTestStore(t, u)
	o := newTestOrder(t, s)
	errs := race(150, func(i int) error {
		if i%10 == 0 {
			_, err := s.Order(context.Background(), o.ID)
			return err
		}
		return s.db.Exec("SELECT pg_sleep(0.3)").Error
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	if got := sqlDB.Stats().MaxOpenConnections; got != maxPostgresConns {
		t.Fatalf("pool allows %d connections, want %d", got, maxPostgresConns)
	}
}

// A transition waits for a database connection only as long as its request
// lasts, and a request that ended changes nothing.
func TestTransitionGivesUpWithItsRequest(t *testing.T) {
	url := testStoreURL(t)
	s := openTestStore(t, url)
	o := newTestOrder(t, s)
	completed := payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "test"}

	t.Run("request already ended", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.ApplyTransition(ctx, completed); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
	if !isPostgresURL(url) {
		t.Run("request ends while the writer is busy", func(t *testing.T) {
			// SQLite has one writer connection; hold it.
			held, err := s.sqlDB.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err = s.ApplyTransition(ctx, completed)
			_ = held.Close()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want context.DeadlineExceeded", err)
			}
		})
	}
	if got, _ := s.Order(context.Background(), o.ID); got.Status != payment.StatusPending || got.Seq != 0 {
		t.Fatalf("order changed by ended requests: %+v", got)
	}
	if _, err := s.ApplyTransition(context.Background(), completed); err != nil {
		t.Fatalf("transition after the ended requests: %v", err)
	}
}

// A database made by an earlier version has an index on orders.status;
// migrating drops it, and the orders are still there.
func TestMigrationDropsTheUnusedStatusIndex(t *testing.T) {
	u := testStoreURL(t)
	old := openTestStore(t, u)
	o := newTestOrder(t, old)
	if err := old.db.Exec("CREATE INDEX idx_orders_status ON orders (status)").Error; err != nil {
		t.Fatalf("create the earlier version's index: %v", err)
	}
	if !old.db.Migrator().HasIndex(&orderRow{}, "idx_orders_status") {
		t.Fatal("the index was not created")
	}
	_ = old.Close()

	s := openTestStore(t, u)
	if s.db.Migrator().HasIndex(&orderRow{}, "idx_orders_status") {
		t.Fatal("idx_orders_status is still there after migrating")
	}
	if got, err := s.Order(context.Background(), o.ID); err != nil || got.ID != o.ID {
		t.Fatalf("order after migrating: %+v %v", got, err)
	}
}

// A database made by an earlier version has a full unique index on
// dedup_key; migrating replaces it with the partial one, and a repeated
// delivery is still refused, by the check and by the index itself.
func TestMigrationMakesTheDedupIndexPartial(t *testing.T) {
	u := testStoreURL(t)
	old := openTestStore(t, u)
	ctx := context.Background()
	for _, ddl := range []string{
		"DROP INDEX " + dedupKeyIndexName,
		"CREATE UNIQUE INDEX idx_payment_events_dedup_key ON payment_events (dedup_key)",
	} {
		if err := old.db.Exec(ddl).Error; err != nil {
			t.Fatalf("%s: %v", ddl, err)
		}
	}
	o := newTestOrder(t, old)
	delivery := payment.Transition{OrderID: o.ID, To: payment.StatusProcessing, Source: "upi", DeliveryID: "evt_migrate", Lenient: true}
	if _, err := old.ApplyTransition(ctx, delivery); err != nil {
		t.Fatal(err)
	}
	_ = old.Close()

	s := openTestStore(t, u)
	if s.db.Migrator().HasIndex(&eventRow{}, "idx_payment_events_dedup_key") {
		t.Fatal("the full index is still there after migrating")
	}
	if def := indexDefinition(t, s, dedupKeyIndexName); !strings.Contains(strings.ToUpper(def), "WHERE") || !strings.Contains(strings.ToUpper(def), "UNIQUE") {
		t.Fatalf("%s is not a partial unique index: %s", dedupKeyIndexName, def)
	}
	if _, err := s.ApplyTransition(ctx, delivery); !errors.Is(err, payment.ErrDuplicateEvent) {
		t.Fatalf("repeated delivery after migrating: %v, want ErrDuplicateEvent", err)
	}
	// Past the check, straight into the table: the index refuses it.
	key := "upi:evt_migrate"
	dup := eventRow{OrderID: o.ID, Seq: 99, Type: "status", Status: payment.StatusProcessing, Source: "upi", DedupKey: &key, CreatedAt: time.Now()}
	if err := s.db.Create(&dup).Error; err == nil {
		t.Fatal("a second event with the same delivery key was stored")
	}
	// Events without a key are not constrained by it.
	for seq := int64(100); seq < 102; seq++ {
		if err := s.db.Create(&eventRow{OrderID: o.ID, Seq: seq, Type: "status", Status: payment.StatusProcessing, Source: "manual", CreatedAt: time.Now()}).Error; err != nil {
			t.Fatalf("event without a key: %v", err)
		}
	}
}

// indexDefinition returns the SQL that defines the named index.
func indexDefinition(t *testing.T, s *Store, name string) string {
	t.Helper()
	q := "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?"
	if s.postgres {
		q = "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1"
	}
	var def string
	if err := s.sqlDB.QueryRow(q, name).Scan(&def); err != nil {
		t.Fatalf("definition of %s: %v", name, err)
	}
	return def
}

// tableDefinition returns the SQL that defines a SQLite table.
func tableDefinition(t *testing.T, s *Store, name string) string {
	t.Helper()
	var def string
	if err := s.sqlDB.QueryRow("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", name).Scan(&def); err != nil {
		t.Fatalf("definition of %s: %v", name, err)
	}
	return def
}

// On SQLite, events are keyed by the rowid without AUTOINCREMENT, which
// would write sqlite_sequence in every transition's commit; a database made
// with it is rebuilt, keeping every event, its id and the constraints.
func TestEventsTableHasNoAutoincrement(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") != "" {
		t.Skip("SQLite's table definition: Postgres keeps its sequence")
	}
	ctx := context.Background()
	t.Run("new database", func(t *testing.T) {
		s := openTestStore(t, testStoreURL(t))
		if def := tableDefinition(t, s, "payment_events"); strings.Contains(strings.ToUpper(def), "AUTOINCREMENT") {
			t.Fatalf("payment_events is declared with AUTOINCREMENT: %s", def)
		}
		o := newTestOrder(t, s)
		if _, err := s.ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "upi", DeliveryID: "evt_new"}); err != nil {
			t.Fatal(err)
		}
		var counters int
		if err := s.sqlDB.QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'").Scan(&counters); err != nil {
			t.Fatal(err)
		}
		if counters != 0 {
			t.Fatal("a transition wrote sqlite_sequence")
		}
	})
	t.Run("database made with AUTOINCREMENT", func(t *testing.T) {
		u := testStoreURL(t)
		old := openTestStore(t, u)
		o := newTestOrder(t, old)
		delivery := payment.Transition{OrderID: o.ID, To: payment.StatusProcessing, Source: "upi", DeliveryID: "evt_auto", Lenient: true}
		if _, err := old.ApplyTransition(ctx, delivery); err != nil {
			t.Fatal(err)
		}
		const columns = "id, " + eventColumns
		for _, ddl := range []string{
			"ALTER TABLE payment_events RENAME TO events_now",
			strings.Replace(sqliteEventsTable, "PRIMARY KEY", "PRIMARY KEY AUTOINCREMENT", 1),
			"INSERT INTO payment_events (" + columns + ") SELECT " + columns + " FROM events_now",
			"DROP TABLE events_now",
			"CREATE UNIQUE INDEX idx_payment_events_order_seq ON payment_events (order_id, seq)",
			"CREATE UNIQUE INDEX idx_payment_events_dedup_key ON payment_events (dedup_key)",
			// An event with id 41 was deleted: AUTOINCREMENT remembers it,
			// and the rebuild must drop that counter.
			"UPDATE sqlite_sequence SET seq = 41 WHERE name = 'payment_events'",
		} {
			if err := old.db.Exec(ddl).Error; err != nil {
				t.Fatalf("%s: %v", ddl, err)
			}
		}
		before, err := old.Events(ctx, o.ID)
		if err != nil || len(before) == 0 {
			t.Fatalf("events before migrating: %v, %v", before, err)
		}
		_ = old.Close()

		s := openTestStore(t, u)
		if def := tableDefinition(t, s, "payment_events"); strings.Contains(strings.ToUpper(def), "AUTOINCREMENT") {
			t.Fatalf("payment_events still has AUTOINCREMENT after migrating: %s", def)
		}
		var counters int
		if err := s.sqlDB.QueryRow("SELECT count(*) FROM sqlite_sequence WHERE name LIKE 'payment_events%'").Scan(&counters); err != nil {
			t.Fatal(err)
		}
		if counters != 0 {
			t.Fatal("the rebuild left payment_events' counter in sqlite_sequence")
		}
		after, err := s.Events(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) {
			t.Fatalf("%d events after migrating, %d before", len(after), len(before))
		}
		for i := range before {
			if after[i].ID != before[i].ID || after[i].Seq != before[i].Seq || after[i].Status != before[i].Status {
				t.Fatalf("event %d changed in the migration: %+v, was %+v", i, after[i], before[i])
			}
		}
		for _, name := range []string{"idx_payment_events_order_seq", dedupKeyIndexName} {
			if def := indexDefinition(t, s, name); !strings.Contains(strings.ToUpper(def), "UNIQUE") {
				t.Fatalf("%s is not unique after migrating: %s", name, def)
			}
		}
		if _, err := s.ApplyTransition(ctx, delivery); !errors.Is(err, payment.ErrDuplicateEvent) {
			t.Fatalf("repeated delivery after migrating: %v, want ErrDuplicateEvent", err)
		}
		if err := s.db.Create(&eventRow{OrderID: o.ID, Seq: before[0].Seq, Type: "status", Source: "test", CreatedAt: time.Now()}).Error; err == nil {
			t.Fatal("a second event with the same order and seq was stored")
		}
		if _, err := s.ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "upi", DeliveryID: "evt_after"}); err != nil {
			t.Fatal(err)
		}
		events, err := s.Events(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if last := events[len(events)-1]; last.ID <= before[len(before)-1].ID || last.Status != payment.StatusCompleted {
			t.Fatalf("event after migrating: %+v, want a completion with an id above %d", last, before[len(before)-1].ID)
		}
	})
}
