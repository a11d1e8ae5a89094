//go:build !linux

package main

import "time"

// pacer waits until scheduled send times; elsewhere than Linux it is
// time.Sleep, with the runtime's precision.
type pacer struct{}

func newPacer() *pacer { return &pacer{} }

func (p *pacer) waitUntil(at time.Time) { p.sleep(time.Until(at)) }

func (*pacer) sleep(d time.Duration) { time.Sleep(d) }

func (*pacer) close() {}
