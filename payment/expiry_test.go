package payment

import (
	"errors"
	"testing"
	"time"
)

func TestWindowValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Window
		want Window
	}{
		{"defaults", Window{}, Window{TTL: 15 * time.Minute, Min: time.Minute, Max: 24 * time.Hour}},
		{"a short default lowers the minimum", Window{TTL: 5 * time.Second}, Window{TTL: 5 * time.Second, Min: 5 * time.Second, Max: 24 * time.Hour}},
		{"a long default raises the maximum", Window{TTL: 48 * time.Hour}, Window{TTL: 48 * time.Hour, Min: time.Minute, Max: 48 * time.Hour}},
		{"a low maximum clamps the default", Window{Max: 10 * time.Minute}, Window{TTL: 10 * time.Minute, Min: time.Minute, Max: 10 * time.Minute}},
		{"a high minimum raises the default", Window{Min: time.Hour}, Window{TTL: time.Hour, Min: time.Hour, Max: 24 * time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.Validate()
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	for _, bad := range []Window{
		{TTL: -time.Second},
		{Min: 500 * time.Millisecond},
		{Min: time.Hour, Max: time.Minute},
		{TTL: 30 * time.Second, Min: time.Minute},
		{TTL: 2 * time.Hour, Max: time.Hour},
	} {
		if _, err := bad.Validate(); !errors.Is(err, ErrInvalidWindow) {
			t.Errorf("%+v: %v, want ErrInvalidWindow", bad, err)
		}
	}
}

func TestWindowDeadline(t *testing.T) {
	w, err := Window{}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if d, err := w.Deadline(now, 0); err != nil || !d.Equal(now.Add(15*time.Minute)) {
		t.Fatalf("default: %v %v", d, err)
	}
	if d, err := w.Deadline(now, 2*time.Minute); err != nil || !d.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("requested: %v %v", d, err)
	}
	for _, bad := range []time.Duration{time.Second, 59 * time.Second, 25 * time.Hour, -time.Minute} {
		if _, err := w.Deadline(now, bad); !errors.Is(err, ErrInvalidOrder) {
			t.Errorf("%s accepted: %v", bad, err)
		}
	}
}

func TestLateCaptureIsTheOnlyWayOutOfExpired(t *testing.T) {
	for _, from := range allStatuses {
		for _, to := range allStatuses {
			want := from == StatusExpired && to == StatusCompleted
			if IsLateCapture(from, to) != want {
				t.Errorf("IsLateCapture(%s, %s) = %v", from, to, !want)
			}
		}
	}
	expired := Order{Status: StatusExpired, Amount: 100, Currency: "INR"}
	if err := CheckTransition(expired, Transition{To: StatusCompleted, Captured: true}); err != nil {
		t.Fatalf("capture refused: %v", err)
	}
	if err := CheckTransition(expired, Transition{To: StatusCompleted}); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("completion without capture: %v", err)
	}
	amount := int64(99)
	if err := CheckTransition(expired, Transition{To: StatusCompleted, Captured: true, Amount: &amount}); !errors.Is(err, ErrAmountMismatch) {
		t.Fatalf("late capture of the wrong amount: %v", err)
	}
	if got := EventData(StatusExpired, Transition{To: StatusCompleted}); got != `{"lateCapture":true}` {
		t.Fatalf("late capture event data %q", got)
	}
	if got := EventData(StatusPending, Transition{To: StatusCompleted}); got != "" {
		t.Fatalf("on-time event data %q", got)
	}
}
