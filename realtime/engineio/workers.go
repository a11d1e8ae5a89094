package engineio

import "time"

// workers runs read events on goroutines that outlive one event, so a
// handler does not grow a fresh goroutine's stack for every event. An idle
// worker is reused, and a new one starts only when none is idle, so a
// handler that blocks never holds up other connections.
type workers struct {
	tasks    chan func() // unbuffered: a send succeeds only to an idle worker
	idleTime time.Duration
}

func newWorkers(idleTime time.Duration) *workers {
	return &workers{tasks: make(chan func()), idleTime: idleTime}
}

func (w *workers) run(task func()) {
	select {
	case w.tasks <- task:
	default:
		go w.loop(task)
	}
}

func (w *workers) loop(task func()) {
	task()
	idle := time.NewTimer(w.idleTime)
	defer idle.Stop()
	for {
		select {
		case task := <-w.tasks:
			task()
			idle.Reset(w.idleTime)
		case <-idle.C:
			return
		}
	}
}
