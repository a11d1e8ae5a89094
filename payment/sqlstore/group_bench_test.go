package sqlstore

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"paystatus/payment"
)

// BenchmarkConcurrentTransitions measures 64 concurrent senders, each
// applying a status transition as soon as its previous one returned (the
// shape of 64 gateways, each sending its next callback when answered),
// with and without group commit, on SQLite and, with TEST_DATABASE_URL, on
// Postgres. It reports transitions per second and the p50 and p99 of one
// transition; compare the modes within one run (see docs/storage.md).
func BenchmarkConcurrentTransitions(b *testing.B) {
	backends := []string{"sqlite"}
	if isPostgresURL(testStoreURL(b)) {
		backends = append(backends, "postgres")
	}
	cases := []struct {
		name    string
		cfg     Config
		senders int
	}{
		{"group=on", Config{GroupCommit: GroupOn}, 64},
		{"group=on,wait=500us", Config{GroupCommit: GroupOn, GroupWait: 500 * time.Microsecond}, 64},
		{"group=off", Config{GroupCommit: GroupOff}, 64},
		{"group=on,senders=1", Config{GroupCommit: GroupOn}, 1},
		{"group=off,senders=1", Config{GroupCommit: GroupOff}, 1},
		{"group=on,paced-1000/s", Config{GroupCommit: GroupOn}, paced},
		{"group=off,paced-1000/s", Config{GroupCommit: GroupOff}, paced},
	}
	for _, backend := range backends {
		for _, tc := range cases {
			b.Run(backend+"/"+tc.name, func(b *testing.B) {
				cfg := tc.cfg
				cfg.URL = testStoreURL(b)
				if backend == "sqlite" {
					cfg.URL = b.TempDir() + "/bench.db"
				}
				s, err := New(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				benchTransitions(b, s, tc.senders)
			})
		}
	}
}

// paced, as a sender count, stands for 8 senders that start a transition
// every 8 ms each: 1,000 a second, the end-to-end benchmark's rate.
const paced = -8

func benchTransitions(b *testing.B, s *Store, senders int) {
	ctx := context.Background()
	var interval time.Duration
	if senders == paced {
		senders, interval = -paced, 8*time.Millisecond
	}
	// Each order takes two transitions: processing, then completed.
	orders := make([]payment.Order, b.N/2+senders)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(orders)); i = next.Add(1) - 1 {
				o, err := createOrder(ctx, s, payment.NewOrder{Amount: 100, Currency: "INR"})
				if err != nil {
					b.Error(err)
					return
				}
				orders[i] = o
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	latencies := make([][]time.Duration, senders)
	var done atomic.Int64
	next.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.Now()
			for done.Add(1) <= int64(b.N) {
				o := orders[next.Add(1)-1]
				for _, to := range []payment.Status{payment.StatusProcessing, payment.StatusCompleted} {
					if interval > 0 {
						tick = tick.Add(interval)
						time.Sleep(time.Until(tick))
					}
					t0 := time.Now()
					if _, err := s.ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: to, Source: "bench"}); err != nil {
						b.Error(err)
						return
					}
					latencies[w] = append(latencies[w], time.Since(t0))
				}
				done.Add(1) // the second transition of the order
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(latencies...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "transitions/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}
