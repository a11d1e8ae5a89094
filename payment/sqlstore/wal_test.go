package sqlstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"paystatus/payment"
)

// SQLite's automatic checkpoints keep the WAL bounded under steady grouped
// writes: a checkpoint copies the WAL into the database file every 1,000
// pages, and the next commit starts the WAL over.
func TestWALStaysBoundedUnderSteadyWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	s, err := New(context.Background(), Config{URL: path, GroupCommit: GroupOn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var pages int
	if err := s.sqlDB.QueryRow("PRAGMA wal_autocheckpoint").Scan(&pages); err != nil || pages <= 0 {
		t.Fatalf("wal_autocheckpoint = %d (%v), want automatic checkpoints on", pages, err)
	}
	const orders = 800 // 2,400 changes of a few pages each
	errs := race(8, func(int) error {
		for range orders / 8 {
			o, err := createOrder(context.Background(), s, payment.NewOrder{Amount: 100, Currency: "INR"})
			if err != nil {
				return err
			}
			if _, err := s.ApplyTransition(context.Background(), payment.Transition{OrderID: o.ID, To: payment.StatusProcessing, Source: "test"}); err != nil {
				return err
			}
			if _, err := s.ApplyTransition(context.Background(), payment.Transition{OrderID: o.ID, To: payment.StatusCompleted, Source: "test"}); err != nil {
				return err
			}
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	walPages := (fi.Size() - 32) / (4096 + 24) // header, then a page and its frame header each
	// The checkpoint threshold plus one group's pages; without checkpoints
	// these writes leave several thousand.
	const limit = 1500
	t.Logf("WAL file %d pages after %d changes", walPages, 3*orders)
	if walPages > limit {
		t.Fatalf("WAL file grew to %d pages, want at most %d", walPages, limit)
	}
}
