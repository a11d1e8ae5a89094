//go:build !linux

package main

import "time"

// pacer waits until scheduled send times; elsewhere than Linux it is
// time.Sleep, with the runtime's precision.
type pacer struct{}

func newPacer() *pacer { return &pacer{} }

func (*pacer) waitUntil(at time.Time) {
	if d := time.Until(at); d > 0 {
		time.Sleep(d)
	}
}

func (*pacer) sleep(d time.Duration) { time.Sleep(d) }

func (*pacer) close() {}
