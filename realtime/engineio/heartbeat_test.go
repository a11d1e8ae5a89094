package engineio

import (
	"testing"
	"time"

	"paystatus/realtime/realtimetest"
)

// wheelSession is a session that only the wheel touches: heartbeatAt on a
// closed session returns at once, so an entry that fires does nothing but
// can be observed through hbDue and the wheel's counters.
func wheelSession() *Session {
	s := &Session{}
	s.closed = true
	return s
}

func TestHeartbeatWheel(t *testing.T) {
	const d = 60 * time.Millisecond
	tests := []struct {
		name string
		// act schedules s (and may reschedule or cancel it) and returns when
		// its deadline should have fired, or zero when it must never fire.
		act func(h *heartbeats, s *Session) time.Duration
	}{
		{"fires after its delay", func(h *heartbeats, s *Session) time.Duration {
			h.schedule(s, d)
			return d
		}},
		{"a reschedule replaces the deadline", func(h *heartbeats, s *Session) time.Duration {
			h.schedule(s, d)
			h.schedule(s, 3*d)
			return 3 * d
		}},
		{"a cancelled deadline never fires", func(h *heartbeats, s *Session) time.Duration {
			h.schedule(s, d)
			h.cancel(s)
			return 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHeartbeats(50*time.Millisecond, time.Second)
			s := wheelSession()
			var fired time.Duration
			start := time.Now()
			want := tt.act(h, s)
			due := s.hbDue.Load()
			// The entry leaves the wheel when its tick has passed; hbDue
			// still holds the due tick unless it was cancelled.
			realtimetest.Eventually(t, 2*time.Second, "the wheel to drain", func() bool {
				h.mu.Lock()
				defer h.mu.Unlock()
				if h.pending == 0 && fired == 0 {
					fired = time.Since(start)
				}
				return h.pending == 0 && !h.running
			})
			if want == 0 {
				if due != 0 {
					t.Fatalf("hbDue = %d after cancel, want 0", due)
				}
				return
			}
			if fired < want {
				t.Fatalf("deadline left the wheel after %s, before its delay %s", fired, want)
			}
			if late := fired - want; late > want+200*time.Millisecond {
				t.Fatalf("deadline fired %s late", late)
			}
		})
	}
}

func TestHeartbeatWheelTick(t *testing.T) {
	tests := []struct {
		shortest time.Duration
		want     time.Duration
	}{
		{20 * time.Second, 500 * time.Millisecond},
		{time.Second, 50 * time.Millisecond},
		{5 * time.Millisecond, time.Millisecond},
	}
	for _, tt := range tests {
		if got := newHeartbeats(tt.shortest, 2*tt.shortest).tick; got != tt.want {
			t.Errorf("tick for %s = %s, want %s", tt.shortest, got, tt.want)
		}
	}
}
