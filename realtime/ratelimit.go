package realtime

import (
	"sync"
	"time"
)

// eventLimiter is a token bucket that bounds how many events one socket may
// send, so a flooding client cannot monopolise the server.
type eventLimiter struct {
	mu       sync.Mutex
	rate     float64   // tokens per second
	burst    float64   // bucket size
	tokens   float64   // guarded by mu
	last     time.Time // guarded by mu
	lastWarn time.Time // guarded by mu
}

// init readies a limiter held by value (in socketState), before first use.
func (l *eventLimiter) init(perSecond int) {
	l.rate, l.burst, l.tokens, l.last = float64(perSecond), float64(2*perSecond), float64(2*perSecond), time.Now()
}

// allow takes a token; shouldLog is true at most once a second while
// events are being dropped.
func (l *eventLimiter) allow(now time.Time) (ok, shouldLog bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens += now.Sub(l.last).Seconds() * l.rate
	if l.tokens > l.burst {
		l.tokens = l.burst
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true, false
	}
	if now.Sub(l.lastWarn) >= time.Second {
		l.lastWarn = now
		return false, true
	}
	return false, false
}
