package payment

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Store persists orders and their event log. The payment domain decides what
// a change is and whether it is allowed (NewPendingOrder, CheckTransition,
// OrderPatch.Validate); a Store applies it atomically and durably. A Store
// is safe for concurrent use, also by several nodes sharing one database.
//
// Every method that changes data returns success only once the change is
// durable: a caller may acknowledge it to a client that will never send it
// again.
type Store interface {
	// InsertOrder stores a new order built by NewPendingOrder.
	InsertOrder(ctx context.Context, o Order) error
	// Order loads an order; ErrOrderNotFound if there is none.
	Order(ctx context.Context, id string) (Order, error)
	// Events returns an order's event log in seq order.
	Events(ctx context.Context, orderID string) ([]Event, error)
	// ApplyTransition moves an order to a new status and logs the event in
	// one transaction, checked by CheckTransition against the order as it
	// stands in that transaction. Exactly one of concurrent changes to an
	// order wins each seq. A repeated delivery key is ErrDuplicateEvent.
	ApplyTransition(ctx context.Context, tr Transition) (StatusChange, error)
	// UpdateOrder applies a validated patch, bumps seq and logs an
	// order-update event with data, in one transaction.
	UpdateOrder(ctx context.Context, orderID string, patch OrderPatch, data []byte) (OrderChange, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Dialect names the database in use, for logs.
	Dialect() string
	// Close releases the store. Safe to call more than once.
	Close() error
}

// Transition is a requested status change.
type Transition struct {
	OrderID   string
	To        Status
	PaymentID string
	Source    string
	// DeliveryID identifies a gateway delivery; a repeat of one already
	// stored is reported as ErrDuplicateEvent. Empty means no deduplication.
	DeliveryID string
	// Amount and Currency, when set, must match the order's.
	Amount   *int64
	Currency string
	// Lenient reports a move backwards (a late delivery) as ErrStaleEvent
	// instead of ErrInvalidTransition; gateways set it.
	Lenient bool
	// Captured says the request reports money taken by whoever took it (a
	// gateway, or an operator confirming one), so a completion may reach an
	// order that already expired: a late capture (see IsLateCapture).
	Captured bool
}

// DedupKey is the key a Store keeps unique across all events, so that a
// delivery is applied once: "<source>:<delivery id>", or nil when the
// transition carries no delivery id.
func (tr Transition) DedupKey() *string {
	if tr.DeliveryID == "" {
		return nil
	}
	key := tr.Source + ":" + tr.DeliveryID
	return &key
}

// CheckTransition validates a transition against the order as a Store read
// it inside the transaction that will apply it.
func CheckTransition(o Order, tr Transition) error {
	if tr.Amount != nil && *tr.Amount != o.Amount {
		return fmt.Errorf("%w: amount %d, order has %d", ErrAmountMismatch, *tr.Amount, o.Amount)
	}
	if tr.Currency != "" && !strings.EqualFold(tr.Currency, o.Currency) {
		return fmt.Errorf("%w: currency %s, order has %s", ErrAmountMismatch, tr.Currency, o.Currency)
	}
	if !CanTransition(o.Status, tr.To) && !(tr.Captured && IsLateCapture(o.Status, tr.To)) {
		if tr.Lenient && o.Status.Supersedes(tr.To) {
			return fmt.Errorf("%w: order is %s, event says %s", ErrStaleEvent, o.Status, tr.To)
		}
		return fmt.Errorf("%w: %s to %s", ErrInvalidTransition, o.Status, tr.To)
	}
	return nil
}

// OrderPatch is a general change to an order; nil fields stay as they are.
type OrderPatch struct {
	Description *string
	Metadata    []byte // JSON object, or nil
}

// Validate checks the patch's sizes.
func (p OrderPatch) Validate() error {
	if p.Description != nil && len(*p.Description) > MaxDescriptionLength {
		return fmt.Errorf("%w: description longer than %d bytes", ErrInvalidOrder, MaxDescriptionLength)
	}
	if len(p.Metadata) > MaxMetadataBytes {
		return fmt.Errorf("%w: metadata larger than %d bytes", ErrInvalidOrder, MaxMetadataBytes)
	}
	return nil
}

// NewPendingOrder checks the input and builds the pending order to store,
// with a fresh id, created at now.
func NewPendingOrder(in NewOrder, now time.Time) (Order, error) {
	if err := in.normalize(); err != nil {
		return Order{}, err
	}
	now = now.UTC()
	return Order{
		ID:          newOrderID(now),
		Amount:      in.Amount,
		Currency:    in.Currency,
		Description: in.Description,
		Status:      StatusPending,
		CreatedAt:   now,
		UpdatedAt:   now,
	}, nil
}
