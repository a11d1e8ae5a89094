package sqlstore

import (
	"context"
	"database/sql"
	"testing"

	"paystatus/payment"
	"paystatus/payment/sqlstore/synctrace"
)

// A change's WAL frames reach the file as one write (two when the WAL
// starts over and its header is synced on its own), where SQLite alone
// makes two per frame, and the commit's sync still covers every write.
func TestWALFramesWrittenOnce(t *testing.T) {
	s, path := openTracedStore(t, Config{GroupCommit: GroupOff})
	ctx := context.Background()
	o, err := createOrder(ctx, s, payment.NewOrder{Amount: 4200, Currency: "INR"})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := synctrace.WAL(path)
	const changes = 40
	for i := range changes {
		desc := "change " + string(rune('a'+i%26))
		if _, err := s.UpdateOrder(ctx, o.ID, payment.OrderPatch{Description: &desc}, []byte(`{}`)); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		if c, _ := synctrace.WAL(path); c.Unsynced != 0 {
			t.Fatalf("update %d returned with %d unsynced WAL writes", i, c.Unsynced)
		}
	}
	after, _ := synctrace.WAL(path)
	writes, syncs := after.Writes-before.Writes, after.Syncs-before.Syncs
	if syncs < changes {
		t.Fatalf("%d syncs for %d commits", syncs, changes)
	}
	if writes > syncs {
		t.Fatalf("%d WAL writes for %d commits and %d syncs: frames were not written together", writes, changes, syncs)
	}
	t.Logf("%d commits: %d WAL writes, %d syncs", changes, writes, syncs)
}

// Without a sync at commit (synchronous=NORMAL), held frames must still
// reach the file before the commit returns: another connection reads
// committed pages from the WAL file, and would otherwise see old ones.
func TestWALFramesReachTheFileAtCommit(t *testing.T) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		t.Run(sync, func(t *testing.T) {
			s, path := openTracedStore(t, Config{GroupCommit: GroupOff, synchronous: sync})
			ctx := context.Background()
			reader, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
			if err != nil {
				t.Fatal(err)
			}
			defer reader.Close()
			for i := range 20 {
				o, err := createOrder(ctx, s, payment.NewOrder{Amount: int64(100 + i), Currency: "INR"})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "upi", DeliveryID: o.ID + "-c"}); err != nil {
					t.Fatal(err)
				}
				var status string
				var amount int64
				if err := reader.QueryRow(`SELECT status, amount FROM orders WHERE id = ?`, o.ID).Scan(&status, &amount); err != nil {
					t.Fatalf("order %d from another connection: %v", i, err)
				}
				if status != string(payment.StatusCompleted) || amount != int64(100+i) {
					t.Fatalf("order %d from another connection: status %q amount %d, want completed %d", i, status, amount, 100+i)
				}
			}
		})
	}
}
