package payment

import (
	"context"
	"sync"
)

// Waiters lets long-poll requests sleep until an order's seq moves. It only
// signals; callers re-read the database, which stays the source of truth.
type Waiters struct {
	mu      sync.Mutex
	waiting map[string]map[chan struct{}]struct{} // guarded by mu
}

// NewWaiters returns an empty registry.
func NewWaiters() *Waiters {
	return &Waiters{waiting: make(map[string]map[chan struct{}]struct{})}
}

// Subscribe registers interest in an order. Call cancel when done. Subscribe
// before reading the current seq, so a change between the read and the wait
// is not missed.
func (w *Waiters) Subscribe(orderID string) (changed <-chan struct{}, cancel func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	set := w.waiting[orderID]
	if set == nil {
		set = make(map[chan struct{}]struct{})
		w.waiting[orderID] = set
	}
	set[ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if set := w.waiting[orderID]; set != nil {
			delete(set, ch)
			if len(set) == 0 {
				delete(w.waiting, orderID)
			}
		}
	}
}

// Notify wakes every waiter of an order.
func (w *Waiters) Notify(orderID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.waiting[orderID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Count returns how many requests are waiting, for metrics.
func (w *Waiters) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, set := range w.waiting {
		n += len(set)
	}
	return n
}

// wait blocks until changed fires or ctx ends; it reports whether a change came.
func wait(ctx context.Context, changed <-chan struct{}) bool {
	select {
	case <-changed:
		return true
	case <-ctx.Done():
		return false
	}
}
