package payment

import (
	"fmt"
	"time"
)

// Payment window defaults: how long a new order stays payable, and the
// bounds a per-order ttl must fall within.
const (
	DefaultOrderTTL    = 15 * time.Minute
	DefaultMinOrderTTL = time.Minute
	DefaultMaxOrderTTL = 24 * time.Hour
)

// Window is the payment window policy. Zero fields mean the defaults;
// Validate fills them in and refuses inconsistent bounds.
type Window struct {
	// TTL is the window of an order that asks for none.
	TTL time.Duration
	// Min and Max bound a window an order asks for.
	Min time.Duration
	Max time.Duration
}

// Validate returns the window with defaults filled in, or an error that
// names the bad setting. The default TTL is clamped into explicit bounds,
// so setting only Max below 15 minutes is not an error.
func (w Window) Validate() (Window, error) {
	if w.Min < 0 || w.Max < 0 || w.TTL < 0 {
		return w, fmt.Errorf("%w: payment window durations must be positive", ErrInvalidWindow)
	}
	if w.Min == 0 {
		w.Min = DefaultMinOrderTTL
		if w.TTL > 0 {
			w.Min = min(w.Min, w.TTL)
		}
	}
	if w.Max == 0 {
		w.Max = max(DefaultMaxOrderTTL, w.TTL, w.Min)
	}
	if w.Min < time.Second {
		return w, fmt.Errorf("%w: minimum window %s is under a second", ErrInvalidWindow, w.Min)
	}
	if w.Min > w.Max {
		return w, fmt.Errorf("%w: minimum window %s is longer than the maximum %s", ErrInvalidWindow, w.Min, w.Max)
	}
	if w.TTL == 0 {
		w.TTL = min(max(DefaultOrderTTL, w.Min), w.Max)
	}
	if w.TTL < w.Min || w.TTL > w.Max {
		return w, fmt.Errorf("%w: default window %s is outside %s to %s", ErrInvalidWindow, w.TTL, w.Min, w.Max)
	}
	return w, nil
}

// Deadline is when an order created at now with the requested window (zero
// for the default) stops being payable. A request outside the bounds is
// ErrInvalidOrder. w must have been validated.
func (w Window) Deadline(now time.Time, requested time.Duration) (time.Time, error) {
	if requested == 0 {
		return now.Add(w.TTL), nil
	}
	if requested < w.Min || requested > w.Max {
		return time.Time{}, fmt.Errorf("%w: ttlSeconds must be between %d and %d", ErrInvalidOrder,
			int64(w.Min/time.Second), int64(w.Max/time.Second))
	}
	return now.Add(requested), nil
}

// IsLateCapture reports whether a move is a late capture: a completion that
// reaches an order the sweep already expired. The status machine keeps
// expired terminal; only a transition that carries proof of payment
// (Transition.Captured) may take this one step out of it, because the
// buyer's money has moved and must not be lost.
func IsLateCapture(from, to Status) bool {
	return from == StatusExpired && to == StatusCompleted
}

// Expiry is the source of the transitions the expiry sweep makes.
const SourceExpiry = "expiry"

// lateCaptureData is the Data of a late capture's event, so the log tells
// a merchant which completions came after the window closed.
const lateCaptureData = `{"lateCapture":true}`

// EventData is the Data a Store logs with a status event moving an order
// from previous by tr.
func EventData(previous Status, tr Transition) string {
	if IsLateCapture(previous, tr.To) {
		return lateCaptureData
	}
	return ""
}
