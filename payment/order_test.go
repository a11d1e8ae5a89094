package payment

import (
	"strings"
	"testing"
	"time"
)

func TestNewOrderIDSortsByCreationTime(t *testing.T) {
	base := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	// In increasing order; each id must sort after the one before.
	steps := []struct {
		name string
		at   time.Duration
	}{
		{"start", 0},
		{"one millisecond later", time.Millisecond},
		{"across a byte of the time", 256 * time.Millisecond},
		{"one second later", time.Second},
		{"a day later", 24 * time.Hour},
		{"a decade later", 10 * 365 * 24 * time.Hour},
	}
	previous := ""
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			id := newOrderID(base.Add(st.at))
			if !ValidOrderID(id) || !strings.HasPrefix(id, "ord_") || len(id) != 30 {
				t.Fatalf("id %q: want ord_ and 26 characters", id)
			}
			if strings.Trim(id[4:], "0123456789abcdefghijklmnopqrstuv") != "" {
				t.Fatalf("id %q has characters outside the sortable alphabet", id)
			}
			if id <= previous {
				t.Fatalf("id %q sorts before %q, made earlier", id, previous)
			}
			previous = id
		})
	}
}

func TestNewOrderIDIsRandomWithinAMillisecond(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for range 1000 {
		id := newOrderID(now)
		if seen[id] {
			t.Fatalf("id %q repeated within one millisecond", id)
		}
		seen[id] = true
		// The first 9 characters hold 45 of the 48 time bits: equal for one
		// instant.
		if id[:13] != newOrderID(now)[:13] {
			t.Fatalf("ids of one instant differ in their time prefix: %q", id)
		}
	}
}
