package engineio

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"paystatus/realtime/realtimetest"
)

func TestWorkers(t *testing.T) {
	t.Run("blocked tasks do not hold up the rest", func(t *testing.T) {
		w := newWorkers(time.Second, 64)
		release := make(chan struct{})
		var blocked sync.WaitGroup
		for range 50 {
			blocked.Add(1)
			w.run(func() { defer blocked.Done(); <-release })
		}
		done := make(chan struct{})
		w.run(func() { close(done) })
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("a task queued behind 50 blocked ones never ran")
		}
		close(release)
		blocked.Wait()
	})

	t.Run("a burst on one P starts few goroutines", func(t *testing.T) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		w := newWorkers(time.Second, 64)
		var ran sync.WaitGroup
		var count atomic.Int32
		before := runtime.NumGoroutine()
		for range 1000 {
			ran.Add(1)
			w.run(func() { count.Add(1); ran.Done() })
		}
		started := runtime.NumGoroutine() - before
		ran.Wait()
		if count.Load() != 1000 {
			t.Fatalf("%d of 1000 tasks ran", count.Load())
		}
		if started > 2 {
			t.Fatalf("queueing 1000 tasks started %d goroutines, want at most 2", started)
		}
	})

	t.Run("at most max run at once, and the queue drains", func(t *testing.T) {
		w := newWorkers(time.Second, 4)
		release := make(chan struct{})
		var running, peak atomic.Int32
		var ran sync.WaitGroup
		for range 20 {
			ran.Add(1)
			w.run(func() {
				n := running.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				<-release
				running.Add(-1)
				ran.Done()
			})
		}
		realtimetest.Eventually(t, 5*time.Second, "four tasks to block", func() bool { return running.Load() == 4 })
		close(release)
		ran.Wait()
		if peak.Load() != 4 {
			t.Fatalf("%d tasks ran at once, want 4", peak.Load())
		}
	})

	t.Run("idle workers exit", func(t *testing.T) {
		w := newWorkers(20*time.Millisecond, 64)
		var ran sync.WaitGroup
		for range 10 {
			ran.Add(1)
			w.run(ran.Done)
		}
		ran.Wait()
		realtimetest.Eventually(t, 5*time.Second, "the workers to exit", func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.free == 0 && w.total == 0 && len(w.queue) == 0
		})
	})
}
