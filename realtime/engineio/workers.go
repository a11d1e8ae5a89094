package engineio

import (
	"sync"
	"time"
)

// workers runs read events on goroutines that outlive one event, so a
// handler does not grow a fresh goroutine's stack for every event.
//
// Tasks wait in a FIFO queue. Whenever a task is queued or taken while more
// wait, a worker outside a task (waiting, or just started) is there to take
// the next, unless max workers exist: then the next to finish takes it. So
// a handler that blocks holds up the others only when max of them block at
// once (event handlers block only on storage reads, which have timeouts),
// and a burst of events does not start a goroutine per event: with one P
// the poller queues a whole epoll batch before any worker runs, and each
// worker keeps a stack and, while it reads, a read buffer.
type workers struct {
	idleTime time.Duration
	max      int
	signal   chan struct{} // capacity 1: tasks are queued

	mu    sync.Mutex
	queue []func() // guarded by mu
	free  int      // guarded by mu: workers not inside a task
	total int      // guarded by mu: workers running
}

func newWorkers(idleTime time.Duration, max int) *workers {
	return &workers{idleTime: idleTime, max: max, signal: make(chan struct{}, 1)}
}

func (w *workers) run(task func()) {
	w.mu.Lock()
	w.queue = append(w.queue, task)
	spawn := w.needsWorker()
	w.mu.Unlock()
	if spawn {
		go w.loop()
		return
	}
	w.notify()
}

func (w *workers) notify() {
	select {
	case w.signal <- struct{}{}:
	default: // a signal is pending; whoever takes it passes it on
	}
}

// needsWorker reports whether a worker must be started for a queued task,
// and if so counts it. Guarded by mu.
func (w *workers) needsWorker() bool {
	if w.free > 0 || w.total >= w.max {
		return false
	}
	w.free++
	w.total++
	return true
}

// loop takes tasks until it has been idle for idleTime. It is counted in
// free from before it starts.
func (w *workers) loop() {
	idle := time.NewTimer(w.idleTime)
	defer idle.Stop()
	for {
		if task := w.take(); task != nil {
			task()
			w.mu.Lock()
			w.free++
			w.mu.Unlock()
			continue
		}
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(w.idleTime)
		select {
		case <-w.signal:
		case <-idle.C:
			w.mu.Lock()
			if len(w.queue) == 0 {
				w.free--
				w.total--
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
		}
	}
}

// take removes the oldest task and counts the caller as busy; before the
// task runs, it makes sure another worker will take the rest. It returns
// nil when the queue is empty.
func (w *workers) take() func() {
	w.mu.Lock()
	if len(w.queue) == 0 {
		w.mu.Unlock()
		return nil
	}
	task := w.queue[0]
	w.queue[0] = nil
	w.queue = w.queue[1:]
	if len(w.queue) == 0 {
		w.queue = w.queue[:0:0]
	}
	w.free--
	more := len(w.queue) > 0
	spawn := more && w.needsWorker()
	w.mu.Unlock()
	switch {
	case spawn:
		go w.loop()
	case more:
		w.notify()
	}
	return task
}
