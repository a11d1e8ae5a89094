package payment

import (
	"errors"
	"fmt"
	"testing"
)

var allStatuses = []Status{StatusPending, StatusProcessing, StatusCompleted, StatusFailed, StatusExpired, StatusRefunded}

// TestCanTransitionAllPairs checks every ordered pair of statuses, so a
// transition added or removed by accident shows up here.
func TestCanTransitionAllPairs(t *testing.T) {
	allowed := map[[2]Status]bool{
		{StatusPending, StatusProcessing}:   true,
		{StatusPending, StatusCompleted}:    true,
		{StatusPending, StatusFailed}:       true,
		{StatusPending, StatusExpired}:      true,
		{StatusProcessing, StatusCompleted}: true,
		{StatusProcessing, StatusFailed}:    true,
		{StatusProcessing, StatusExpired}:   true,
		{StatusCompleted, StatusRefunded}:   true,
	}
	for _, from := range allStatuses {
		for _, to := range allStatuses {
			t.Run(fmt.Sprintf("%s_to_%s", from, to), func(t *testing.T) {
				want := allowed[[2]Status{from, to}]
				if got := CanTransition(from, to); got != want {
					t.Fatalf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
				}
			})
		}
	}
	// Unknown statuses never move or get moved to.
	for _, s := range allStatuses {
		if CanTransition("bogus", s) || CanTransition(s, "bogus") || CanTransition(s, "") {
			t.Fatalf("transition with an unknown status allowed around %s", s)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for _, s := range allStatuses {
		got, err := ParseStatus(string(s))
		if err != nil || got != s {
			t.Fatalf("ParseStatus(%q) = %q, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "COMPLETED", " pending", "paid", "pending\x00"} {
		t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
			if _, err := ParseStatus(bad); !errors.Is(err, ErrInvalidStatus) {
				t.Fatalf("ParseStatus(%q) error = %v, want ErrInvalidStatus", bad, err)
			}
		})
	}
}

func TestTerminal(t *testing.T) {
	want := map[Status]bool{StatusPending: false, StatusProcessing: false, StatusCompleted: true, StatusFailed: true, StatusExpired: true, StatusRefunded: true}
	for s, w := range want {
		if s.Terminal() != w {
			t.Errorf("%s.Terminal() = %v, want %v", s, !w, w)
		}
	}
}

// TestSupersedes pins which late events count as stale rather than invalid:
// an order that has moved on supersedes anything at or before its stage.
func TestSupersedes(t *testing.T) {
	tests := []struct {
		order, event Status
		want         bool
	}{
		{StatusCompleted, StatusPending, true},
		{StatusCompleted, StatusProcessing, true},
		{StatusCompleted, StatusFailed, true},
		{StatusFailed, StatusCompleted, true},
		{StatusRefunded, StatusCompleted, true},
		{StatusProcessing, StatusPending, true},
		{StatusPending, StatusProcessing, false},
		{StatusProcessing, StatusCompleted, false},
		{StatusCompleted, StatusRefunded, false},
		{StatusPending, "bogus", true}, // rank -1: never a forward move
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_over_%s", tt.order, tt.event), func(t *testing.T) {
			if got := tt.order.Supersedes(tt.event); got != tt.want {
				t.Fatalf("%s.Supersedes(%s) = %v, want %v", tt.order, tt.event, got, tt.want)
			}
		})
	}
}
