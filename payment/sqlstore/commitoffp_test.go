package sqlstore

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"paystatus/payment"
	"paystatus/payment/sqlstore/synctrace"
	"paystatus/realtime/realtimetest"
)

// While a commit waits for a slow fsync, the goroutine that asked is parked
// in Go's poller ("IO wait"), not inside a cgo call ("syscall") where it
// would hold a P.
func TestCommitWaitsOffTheP(t *testing.T) {
	for _, mode := range []GroupMode{GroupOn, GroupOff} {
		t.Run(string(mode), func(t *testing.T) {
			s, _ := openTracedStore(t, Config{GroupCommit: mode})
			ctx := context.Background()
			o, err := createOrder(ctx, s, payment.NewOrder{Amount: 100, Currency: "INR"})
			if err != nil {
				t.Fatal(err)
			}
			synctrace.SetSyncDelay(400 * time.Millisecond)
			defer synctrace.SetSyncDelay(0)
			done := make(chan error, 1)
			go func() {
				_, err := s.ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusProcessing, Source: "upi", DeliveryID: o.ID + "-p"})
				done <- err
			}()
			// It may be seen runnable on its way in or out of the wait; it
			// must park in IO wait, and never be seen in a syscall.
			var seen []string
			realtimetest.Eventually(t, 5*time.Second, "the commit to wait in its thread", func() bool {
				state := committerState()
				if state != "" && (len(seen) == 0 || seen[len(seen)-1] != state) {
					seen = append(seen, state)
				}
				return strings.HasPrefix(state, "IO wait")
			})
			// Sample through the rest of the slow fsync.
			for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
				if state := committerState(); state != "" && seen[len(seen)-1] != state {
					seen = append(seen, state)
				}
			}
			for _, state := range seen {
				if strings.HasPrefix(state, "syscall") {
					t.Errorf("the committing goroutine was in state %q (states seen: %q), want IO wait", state, seen)
				}
			}
			if err := <-done; err != nil {
				t.Fatalf("transition: %v", err)
			}
		})
	}
}

// committerState returns the scheduling state of the goroutine waiting in
// commitThread.commit, or "" if there is none.
func committerState() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "(*commitThread).commit(") {
			continue
		}
		header, _, _ := strings.Cut(g, "\n")
		_, state, ok := strings.Cut(header, "[")
		if !ok {
			return "unknown"
		}
		state, _, _ = strings.Cut(state, "]")
		return state
	}
	return ""
}

// A COMMIT that fails (here a deferred foreign key) reports SQLite's error,
// leaves nothing of the transaction behind, and the connection commits
// again afterwards.
func TestFailedCommitRollsBack(t *testing.T) {
	s := openTestStore(t, t.TempDir()+"/fk.db")
	ctx := context.Background()
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Raw(func(dc any) error {
		if _, ok := dc.(*offPConn); !ok {
			return errors.New("the connection does not commit off the P")
		}
		return nil
	}); err != nil {
		t.Fatalf("driver connection is %v", err)
	}
	for _, q := range []string{
		"PRAGMA foreign_keys=ON",
		"CREATE TABLE fk_parent (id INTEGER PRIMARY KEY)",
		"CREATE TABLE fk_child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES fk_parent(id) DEFERRABLE INITIALLY DEFERRED)",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	insert := func(parent int) error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO fk_parent (id) VALUES (1)"); err != nil {
			_ = tx.Rollback()
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO fk_child (parent) VALUES (?)", parent); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	err = insert(2) // parent 2 does not exist
	var sqliteErr sqlite3.Error
	if !errors.As(err, &sqliteErr) || sqliteErr.Code != sqlite3.ErrConstraint {
		t.Fatalf("commit with a broken foreign key: got %v, want a constraint error", err)
	}
	count := func() (n int) {
		if err := conn.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM fk_parent) + (SELECT count(*) FROM fk_child)").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("after the failed commit %d rows remain, want 0", n)
	}
	if err := insert(1); err != nil {
		t.Fatalf("commit after a failed one: %v", err)
	}
	if n := count(); n != 2 {
		t.Fatalf("after a good commit %d rows, want 2", n)
	}
}
