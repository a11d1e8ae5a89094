package main

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestPacerNeverReturnsEarly(t *testing.T) {
	p := newPacer()
	defer p.close()
	for _, d := range []time.Duration{-time.Millisecond, 0, 50 * time.Microsecond, 300 * time.Microsecond, 2 * time.Millisecond} {
		t.Run(d.String(), func(t *testing.T) {
			at := time.Now().Add(d)
			p.waitUntil(at)
			if now := time.Now(); now.Before(at) {
				t.Fatalf("waitUntil returned %v before its time", at.Sub(now))
			}
			start := time.Now()
			p.sleep(d)
			if got := time.Since(start); d > 0 && got < d {
				t.Fatalf("sleep(%v) returned after %v", d, got)
			}
		})
	}
}

// The reactor's pause and the sender's wait must leave the P to other
// goroutines, like any wait in the runtime's poller.
func TestPacerLetsOtherGoroutinesRun(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	p := newPacer()
	defer p.close()
	var spins atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				spins.Add(1)
				runtime.Gosched()
			}
		}
	}()
	before := spins.Load()
	p.waitUntil(time.Now().Add(20 * time.Millisecond))
	during := spins.Load() - before
	close(stop)
	<-done
	if during == 0 {
		t.Fatal("no other goroutine ran while the pacer waited")
	}
}
