package payment

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestWaitersNotifyWakesOnlyThatOrder(t *testing.T) {
	w := NewWaiters()
	a, cancelA := w.Subscribe("ord_a")
	defer cancelA()
	b, cancelB := w.Subscribe("ord_b")
	defer cancelB()
	if n := w.Count(); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
	w.Notify("ord_a")
	select {
	case <-a:
	case <-time.After(5 * time.Second):
		t.Fatal("waiter of ord_a not woken")
	}
	select {
	case <-b:
		t.Fatal("waiter of ord_b woken by a change to ord_a")
	default:
	}
}

// A change between Subscribe and the wait must not be lost: the signal is
// buffered until the waiter reads it.
func TestWaitersSignalBeforeWaitIsKept(t *testing.T) {
	w := NewWaiters()
	ch, cancel := w.Subscribe("ord_1")
	defer cancel()
	w.Notify("ord_1")
	w.Notify("ord_1") // a second signal must not block the notifier
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if !wait(ctx, ch) {
		t.Fatal("buffered signal lost")
	}
}

func TestWaitersCancelUnregisters(t *testing.T) {
	w := NewWaiters()
	_, c1 := w.Subscribe("ord_1")
	_, c2 := w.Subscribe("ord_1")
	c1()
	if n := w.Count(); n != 1 {
		t.Fatalf("Count after one cancel = %d, want 1", n)
	}
	c2()
	c2() // cancelling twice is harmless
	if n := w.Count(); n != 0 {
		t.Fatalf("Count after cancels = %d, want 0", n)
	}
	w.mu.Lock()
	left := len(w.waiting)
	w.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d empty order entries left behind", left)
	}
	w.Notify("ord_1") // nobody waiting: no panic, no block
}

func TestWaitReturnsFalseWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if wait(ctx, make(chan struct{})) {
		t.Fatal("wait reported a change after the context ended")
	}
}

func TestWaitersConcurrentUse(t *testing.T) {
	w := NewWaiters()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, cancel := w.Subscribe("ord_shared")
			defer cancel()
			if i%2 == 0 {
				w.Notify("ord_shared")
			}
			select {
			case <-ch:
			default:
			}
			_ = w.Count()
		}()
	}
	wg.Wait()
	if n := w.Count(); n != 0 {
		t.Fatalf("Count = %d after all waiters left", n)
	}
}
