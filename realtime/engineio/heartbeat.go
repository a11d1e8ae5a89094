package engineio

import (
	"sync"
	"time"
)

// heartbeats keeps every session's next heartbeat deadline on one coarse
// timing wheel instead of a runtime timer per session, which would be most
// of an idle connection's memory after its buffers. A deadline fires at
// most one tick late, never early. The wheel's goroutine runs only while
// some deadline is pending.
//
// Lock order: a Session's mu, then heartbeats.mu.
type heartbeats struct {
	tick  time.Duration
	epoch time.Time

	mu      sync.Mutex
	slots   [][]hbEntry // guarded by mu; slot i holds entries due at ticks ≡ i (mod len(slots))
	next    int64       // guarded by mu; the first tick not yet processed
	pending int         // guarded by mu; entries in slots
	running bool        // guarded by mu; the wheel's goroutine is live
}

// hbEntry is a deadline: session s's heartbeat is due at tick due, unless
// the session has since been rescheduled (its hbDue differs).
type hbEntry struct {
	s   *Session
	due int64
}

// newHeartbeats builds a wheel whose slots span longest, the longest delay
// a session asks for, with a tick fine enough for shortest.
func newHeartbeats(shortest, longest time.Duration) *heartbeats {
	tick := min(max(shortest/20, time.Millisecond), 500*time.Millisecond)
	n := int(longest/tick) + 2
	return &heartbeats{tick: tick, epoch: time.Now(), slots: make([][]hbEntry, n)}
}

// tickAt is the tick in which t falls.
func (h *heartbeats) tickAt(t time.Time) int64 { return int64(t.Sub(h.epoch) / h.tick) }

// schedule makes s's heartbeat due after d, replacing any earlier deadline.
// s.mu must be held.
func (h *heartbeats) schedule(s *Session, d time.Duration) {
	// The deadline's tick is processed once that tick has ended, so the
	// heartbeat never fires before d has passed.
	due := h.tickAt(time.Now().Add(d))
	h.mu.Lock()
	due = max(due, h.next)
	s.hbDue.Store(due)
	slot := &h.slots[due%int64(len(h.slots))]
	*slot = append(*slot, hbEntry{s: s, due: due})
	h.pending++
	start := !h.running
	h.running = true
	h.mu.Unlock()
	if start {
		go h.run()
	}
}

// cancel drops s's deadline. s.mu must be held.
func (h *heartbeats) cancel(s *Session) { s.hbDue.Store(0) }

// run processes each tick once it has ended and starts the heartbeats
// that fell due, until no deadline is pending.
func (h *heartbeats) run() {
	var due []hbEntry
	for {
		h.mu.Lock()
		wake := h.epoch.Add(time.Duration(h.next+1) * h.tick)
		h.mu.Unlock()
		if d := time.Until(wake); d > 0 {
			time.Sleep(d)
		}
		h.mu.Lock()
		cur := h.tickAt(time.Now()) - 1 // the last tick that has ended
		n := int64(len(h.slots))
		for t := h.next; t <= cur && t < h.next+n; t++ {
			slot := h.slots[t%n]
			kept := slot[:0]
			for _, e := range slot {
				switch {
				case e.due > cur:
					kept = append(kept, e)
				case e.s.hbDue.Load() == e.due:
					due = append(due, e)
					h.pending--
				default: // rescheduled or cancelled since
					h.pending--
				}
			}
			clear(slot[len(kept):])
			h.slots[t%n] = kept
		}
		h.next = max(h.next, cur+1)
		if h.pending == 0 {
			h.running = false
			h.mu.Unlock()
			h.start(due)
			return
		}
		h.mu.Unlock()
		due = h.start(due)
	}
}

// start runs each due heartbeat on its own goroutine, as a timer's
// function would run, and returns due emptied for reuse.
func (h *heartbeats) start(due []hbEntry) []hbEntry {
	for _, e := range due {
		go e.s.heartbeatAt(e.due)
	}
	clear(due)
	return due[:0]
}
