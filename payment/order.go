package payment

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Order is a payment order. Seq counts every accepted change to it, so a
// client can tell which of two updates is newer.
type Order struct {
	ID          string
	Amount      int64
	Currency    string
	Description string
	Metadata    string // JSON object, or empty
	Status      Status
	Seq         int64
	PaymentID   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// ExpiresAt is the end of the payment window: past it, a pending or
	// processing order is moved to expired. Zero for orders stored before
	// windows existed, until the sweep gives them one.
	ExpiresAt time.Time
}

// Event is one entry of an order's append-only log of accepted changes.
// DedupKey holds "<source>:<delivery id>" for gateway deliveries (see
// Transition.DedupKey); a Store keeps it unique, so a retried delivery
// cannot change the order twice.
type Event struct {
	ID             int64
	OrderID        string
	Seq            int64
	Type           string
	Status         Status
	PreviousStatus Status
	Source         string
	DedupKey       *string
	PaymentID      string
	Data           string
	CreatedAt      time.Time
}

// Snapshot is an order's current payment status as clients see it.
type Snapshot struct {
	OrderID   string    `json:"orderId"`
	Status    Status    `json:"status"`
	Seq       int64     `json:"seq"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	PaymentID string    `json:"paymentId"`
	UpdatedAt time.Time `json:"updatedAt"`
	// ExpiresAt is the end of the payment window; nil when the order has
	// none yet.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// Snapshot returns the client-facing view of the order.
func (o *Order) Snapshot() Snapshot {
	return Snapshot{
		OrderID:   o.ID,
		Status:    o.Status,
		Seq:       o.Seq,
		Amount:    o.Amount,
		Currency:  o.Currency,
		PaymentID: o.PaymentID,
		UpdatedAt: o.UpdatedAt.UTC(),
		ExpiresAt: optionalTime(o.ExpiresAt),
	}
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// StatusChange is a committed status transition, ready to broadcast.
type StatusChange struct {
	Snapshot
	PreviousStatus Status `json:"previousStatus"`
	Source         string `json:"source"`
	// LateCapture marks a completion that arrived after the order had
	// expired (see IsLateCapture).
	LateCapture bool `json:"lateCapture,omitempty"`
	// ReceivedAt is when the request that caused the change arrived; it
	// feeds the callback-to-broadcast latency metric.
	ReceivedAt time.Time `json:"-"`
}

// OrderChange is a committed non-status change to an order.
type OrderChange struct {
	OrderID   string          `json:"orderId"`
	Seq       int64           `json:"seq"`
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

// Limits on order fields, checked before anything is stored.
const (
	MaxOrderIDLength     = 64
	MaxDescriptionLength = 500
	MaxMetadataBytes     = 8 << 10
	MaxAmount            = int64(1) << 50
)

var (
	orderIDPattern  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// ValidOrderID reports whether id has the shape of an order id, so that
// junk never reaches a query or a room name.
func ValidOrderID(id string) bool { return orderIDPattern.MatchString(id) }

// NewOrder is the input for creating an order.
type NewOrder struct {
	Amount      int64
	Currency    string
	Description string
	// TTLSeconds asks for a payment window of this many seconds; zero
	// means the configured default. It must fall within the Window's bounds.
	TTLSeconds int64
}

// normalize checks and completes the input; currency defaults to INR.
func (n *NewOrder) normalize() error {
	if n.Amount <= 0 || n.Amount > MaxAmount {
		return fmt.Errorf("%w: amount must be a positive integer in minor units", ErrInvalidOrder)
	}
	n.Currency = strings.ToUpper(strings.TrimSpace(n.Currency))
	if n.Currency == "" {
		n.Currency = "INR"
	}
	if !currencyPattern.MatchString(n.Currency) {
		return fmt.Errorf("%w: currency must be a three-letter ISO 4217 code", ErrInvalidOrder)
	}
	if len(n.Description) > MaxDescriptionLength {
		return fmt.Errorf("%w: description longer than %d bytes", ErrInvalidOrder, MaxDescriptionLength)
	}
	return nil
}

// orderIDEncoding is base32 with the "extended hex" alphabet in lower
// case, whose characters sort in the order of the bytes they encode.
var orderIDEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// newOrderID returns "ord_" and 26 characters: the creation time in
// milliseconds (48 bits) followed by 80 random bits. Ids thus sort by
// creation time, so that the indexes keyed on them (the orders' primary
// key, the events' (order_id, seq)) take new entries at their end and
// orders created together share pages, where random ids would put every
// insert, and every expiry's event, on a page of its own. The random part
// keeps ids unguessable; the time is no secret (the API shows createdAt).
func newOrderID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return "ord_" + orderIDEncoding.EncodeToString(b[:])
}
