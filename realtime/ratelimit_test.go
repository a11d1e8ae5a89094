package realtime

import (
	"sync"
	"testing"
	"time"
)

func TestEventLimiterBurstThenRate(t *testing.T) {
	l := newEventLimiter(10)
	now := l.last
	allowed := 0
	for range 100 {
		if ok, _ := l.allow(now); ok {
			allowed++
		}
	}
	if allowed != 20 {
		t.Fatalf("burst allowed %d events, want 20 (twice the rate)", allowed)
	}
	// Half a second refills five tokens at 10/s.
	now = now.Add(500 * time.Millisecond)
	allowed = 0
	for range 100 {
		if ok, _ := l.allow(now); ok {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("after 0.5 s allowed %d events, want 5", allowed)
	}
	// A long pause refills only up to the burst.
	now = now.Add(time.Hour)
	allowed = 0
	for range 100 {
		if ok, _ := l.allow(now); ok {
			allowed++
		}
	}
	if allowed != 20 {
		t.Fatalf("after a pause allowed %d events, want the burst of 20", allowed)
	}
}

func TestEventLimiterLogsAtMostOncePerSecond(t *testing.T) {
	l := newEventLimiter(1)
	now := l.last
	for range 2 {
		if ok, _ := l.allow(now); !ok {
			t.Fatal("burst refused")
		}
	}
	logs := 0
	for i := range 100 {
		// 100 dropped events spread over 0.99 s: only the first logs.
		ok, shouldLog := l.allow(now.Add(time.Duration(i) * 9 * time.Millisecond / 10))
		if ok {
			continue
		}
		if shouldLog {
			logs++
		}
	}
	if logs != 1 {
		t.Fatalf("logged %d times in under a second, want 1", logs)
	}
	// Drain whatever trickled in, then a second later the next drop logs.
	later := now.Add(1500 * time.Millisecond)
	for {
		ok, shouldLog := l.allow(later)
		if !ok {
			if !shouldLog {
				t.Fatal("no log line for drops a second after the last one")
			}
			break
		}
	}
}

func TestEventLimiterClockGoingBackwards(t *testing.T) {
	l := newEventLimiter(5)
	now := l.last
	for range 10 {
		l.allow(now)
	}
	// An earlier time must not mint tokens.
	if ok, _ := l.allow(now.Add(-time.Hour)); ok {
		t.Fatal("a step back in time refilled the bucket")
	}
}

func TestEventLimiterConcurrent(t *testing.T) {
	l := newEventLimiter(50)
	now := l.last
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if ok, _ := l.allow(now); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 100 {
		t.Fatalf("concurrent callers got %d tokens, want the burst of 100", allowed)
	}
}

// newEventLimiter builds a limiter the way socketOpened readies the one in
// socketState.
func newEventLimiter(perSecond int) *eventLimiter {
	l := &eventLimiter{}
	l.init(perSecond)
	return l
}
