//go:build linux

package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pacer waits until the scheduled send times of a scenario.
//
// time.Sleep is only as precise as the runtime's poller, which on Linux
// waits in epoll_pwait with a timeout in whole milliseconds: a wait shorter
// than 1 ms takes 1 ms. Pacing callbacks 1 ms apart, sends then left 0.59 ms
// after their scheduled time at the median (1.07 ms at p99), and that delay
// counted as the server's latency. A timerfd armed for the wait wakes the
// poller when it fires instead; it sits in the runtime's poller like a
// socket, so waiting on it parks only this goroutine.
type pacer struct {
	timer *os.File // nil: fall back to time.Sleep
	fd    int
}

func newPacer() *pacer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return &pacer{}
	}
	return &pacer{timer: os.NewFile(uintptr(fd), "loadgen-pacer"), fd: fd}
}

// waitUntil returns at the time at, or at once if it has passed.
func (p *pacer) waitUntil(at time.Time) { p.sleep(time.Until(at)) }

// sleep returns after d.
func (p *pacer) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if p.timer == nil || unix.TimerfdSettime(p.fd, 0, &spec, nil) != nil {
		time.Sleep(d)
		return
	}
	var expirations [8]byte
	if _, err := p.timer.Read(expirations[:]); err != nil {
		time.Sleep(d)
	}
}

func (p *pacer) close() {
	if p.timer != nil {
		_ = p.timer.Close()
	}
}
