package sqlstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"paystatus/payment"
)

// benchStore opens a fresh SQLite store (the default deployment) for a
// benchmark; Postgres figures come from the plan test and the e2e runs.
func benchStore(b *testing.B) *Store {
	b.Helper()
	if os.Getenv("TEST_DATABASE_URL") != "" {
		b.Skip("lifecycle benchmarks run on SQLite only")
	}
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func insertDue(b *testing.B, s *Store, n int, deadline time.Time) []payment.Order {
	b.Helper()
	rows := make([]orderRow, n)
	orders := make([]payment.Order, n)
	for i := range rows {
		o, err := payment.NewPendingOrder(payment.NewOrder{Amount: 100}, deadline.Add(-time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		o.ExpiresAt = deadline.Add(time.Duration(i) * time.Microsecond)
		orders[i], rows[i] = o, newOrderRow(o)
	}
	if err := s.db.CreateInBatches(rows, 500).Error; err != nil {
		b.Fatal(err)
	}
	return orders
}

// processCPU is the CPU time, user and system, of this process so far: the
// expiry's cost includes the kernel's share of its WAL writes and fsyncs,
// and not the time spent waiting for them.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExpireDue reports the cost of expiring one order on a SQLite
// file, by batch size: a batch holds SQLite's one writer for its length.
func BenchmarkExpireDue(b *testing.B) {
	for _, batch := range []int{20, 50, 200} {
		b.Run(fmt.Sprintf("batch-%d", batch), func(b *testing.B) {
			s := benchStore(b)
			now := time.Now().UTC()
			insertDue(b, s, b.N, now.Add(-time.Hour))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			var longest time.Duration
			cpu0 := processCPU(b)
			expired := 0
			var buf []payment.StatusChange // reused, as the sweeper does
			for expired < b.N {
				start := time.Now()
				changes, err := s.ExpireDue(ctx, now, batch, buf[:0])
				buf = changes
				longest = max(longest, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				if len(changes) == 0 {
					b.Fatalf("stopped at %d of %d", expired, b.N)
				}
				expired += len(changes)
			}
			b.ReportMetric(float64(longest.Microseconds()), "max-batch-µs")
			b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkCompleteOrder is a callback's transition with and without the
// partial index on open orders' deadlines, which every completion now
// updates; compare the two within one run.
func BenchmarkCompleteOrder(b *testing.B) {
	for _, tc := range []struct {
		name  string
		index bool
	}{{"with-open-deadline-index", true}, {"without-index", false}} {
		b.Run(tc.name, func(b *testing.B) {
			s := benchStore(b)
			if !tc.index {
				if err := s.db.Exec("DROP INDEX " + openDeadlineIndexName).Error; err != nil {
					b.Fatal(err)
				}
			}
			orders := insertDue(b, s, b.N, time.Now().Add(time.Hour))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			for i := range b.N {
				if _, err := s.ApplyTransition(ctx, payment.Transition{OrderID: orders[i].ID, To: payment.StatusCompleted, Source: "bench"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
