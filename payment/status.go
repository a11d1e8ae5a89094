package payment

import "fmt"

// Status is the payment state of an order.
type Status string

const (
	StatusPending    Status = "pending"
	StatusProcessing Status = "processing"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
	StatusExpired    Status = "expired"
	StatusRefunded   Status = "refunded"
)

// transitions lists, for each status, the statuses it may move to.
var transitions = map[Status][]Status{
	StatusPending:    {StatusProcessing, StatusCompleted, StatusFailed, StatusExpired},
	StatusProcessing: {StatusCompleted, StatusFailed, StatusExpired},
	StatusCompleted:  {StatusRefunded},
}

// ParseStatus validates a status name.
func ParseStatus(s string) (Status, error) {
	st := Status(s)
	switch st {
	case StatusPending, StatusProcessing, StatusCompleted, StatusFailed, StatusExpired, StatusRefunded:
		return st, nil
	}
	return "", fmt.Errorf("%w: %q", ErrInvalidStatus, s)
}

// CanTransition reports whether an order in status from may move to status to.
func CanTransition(from, to Status) bool {
	for _, next := range transitions[from] {
		if next == to {
			return true
		}
	}
	return false
}

// Terminal reports whether no further payment outcome is expected. Completed
// is terminal for the buyer even though a refund may follow later.
func (s Status) Terminal() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusExpired, StatusRefunded:
		return true
	}
	return false
}

// rank orders statuses along the payment's life, so that an event that
// arrives after a later one can be recognised as stale rather than invalid.
func (s Status) rank() int {
	switch s {
	case StatusPending:
		return 0
	case StatusProcessing:
		return 1
	case StatusCompleted, StatusFailed, StatusExpired:
		return 2
	case StatusRefunded:
		return 3
	}
	return -1
}

// Supersedes reports whether an order in status s has already moved past
// target, as completed has past a late PENDING.
func (s Status) Supersedes(target Status) bool {
	return target.rank() <= s.rank()
}
