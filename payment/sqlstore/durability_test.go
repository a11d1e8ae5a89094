package sqlstore

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"testing"

	"paystatus/payment"
	"paystatus/payment/sqlstore/synctrace"
)

// openTracedStore opens a store on a fresh SQLite file through the
// fsync-tracing VFS and returns it with the file's path.
func openTracedStore(t *testing.T, cfg Config) (*Store, string) {
	t.Helper()
	vfs, err := synctrace.Register()
	if err != nil {
		t.Skipf("tracing VFS unavailable: %v", err)
	}
	path := filepath.Join(t.TempDir(), "traced.db")
	cfg.URL, cfg.SQLiteVFS = path, vfs
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

// durabilitySteps are the changes a store acknowledges, in an order that
// makes each one valid.
func durabilitySteps(s *Store) []struct {
	name string
	run  func(ctx context.Context, o *payment.Order) error
} {
	desc := "durable"
	return []struct {
		name string
		run  func(ctx context.Context, o *payment.Order) error
	}{
		{"insert order", func(ctx context.Context, o *payment.Order) (err error) {
			*o, err = createOrder(ctx, s, payment.NewOrder{Amount: 4200, Currency: "INR"})
			return err
		}},
		{"update order", func(ctx context.Context, o *payment.Order) error {
			_, err := s.UpdateOrder(ctx, o.ID, payment.OrderPatch{Description: &desc}, []byte(`{}`))
			return err
		}},
		{"transition to processing", func(ctx context.Context, o *payment.Order) error {
			_, err := s.ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusProcessing, Source: "upi", DeliveryID: o.ID + "-p"})
			return err
		}},
		{"transition to completed", func(ctx context.Context, o *payment.Order) error {
			_, err := s.ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "upi", DeliveryID: o.ID + "-c"})
			return err
		}},
	}
}

// Every change a store reports done has had its WAL writes fsynced: with
// group commit and without.
func TestAcknowledgedChangesAreSynced(t *testing.T) {
	for _, mode := range []GroupMode{GroupOn, GroupOff} {
		t.Run(string(mode), func(t *testing.T) {
			s, path := openTracedStore(t, Config{GroupCommit: mode})
			ctx := context.Background()
			for round := range 10 {
				var o payment.Order
				for _, step := range durabilitySteps(s) {
					before, _ := synctrace.WAL(path)
					if err := step.run(ctx, &o); err != nil {
						t.Fatalf("round %d, %s: %v", round, step.name, err)
					}
					after, ok := synctrace.WAL(path)
					if !ok {
						t.Fatal("the WAL was not opened through the tracing VFS")
					}
					if after.Writes <= before.Writes {
						t.Fatalf("round %d, %s: no WAL write seen (%+v)", round, step.name, after)
					}
					if after.Unsynced != 0 {
						t.Fatalf("round %d, %s: reported done with %d WAL writes not yet synced (%+v)", round, step.name, after.Unsynced, after)
					}
				}
			}
		})
	}
}

// The check above can fail: with synchronous=NORMAL, the setting this
// store had before, commits return with their WAL writes unsynced and the
// trace shows it.
func TestSyncTraceCatchesUnsyncedCommits(t *testing.T) {
	s, path := openTracedStore(t, Config{GroupCommit: GroupOff, synchronous: "NORMAL"})
	ctx := context.Background()
	unsyncedAcks := 0
	for range 10 {
		var o payment.Order
		for _, step := range durabilitySteps(s) {
			if err := step.run(ctx, &o); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
			if c, _ := synctrace.WAL(path); c.Unsynced > 0 {
				unsyncedAcks++
			}
		}
	}
	if unsyncedAcks == 0 {
		t.Fatal("with synchronous=NORMAL every change was synced before it returned; the durability check could not fail")
	}
	t.Logf("%d of 40 changes returned with unsynced WAL writes under synchronous=NORMAL", unsyncedAcks)
}

// On Postgres a session with synchronous_commit=off is refused: its commits
// return before their WAL is flushed.
func TestPostgresRefusesAsynchronousCommit(t *testing.T) {
	base := testStoreURL(t)
	if !isPostgresURL(base) {
		t.Skip("Postgres only; set TEST_DATABASE_URL to run this")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("synchronous_commit", "off") // pgx passes unknown parameters to the server
	u.RawQuery = q.Encode()
	s, err := Open(context.Background(), u.String())
	if err == nil {
		_ = s.Close()
		t.Fatal("a store opened with synchronous_commit=off")
	}
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("got %v, want ErrConfig", err)
	}
	// The default session is accepted.
	openTestStore(t, base)
}
