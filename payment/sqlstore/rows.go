package sqlstore

import (
	"time"

	"paystatus/payment"
)

// orderRow is an order as stored in the orders table. The field names fix
// the column names, which databases made by earlier versions already have.
type orderRow struct {
	ID          string `gorm:"primaryKey;size:64"`
	Amount      int64  `gorm:"not null"`
	Currency    string `gorm:"size:3;not null"`
	Description string `gorm:"size:500"`
	Metadata    string `gorm:"type:text"`
	// Not indexed: no query selects orders by status, and every status
	// change rewrote the index's entry, one more page in each commit's WAL
	// write (see dropUnusedIndexes).
	Status    payment.Status `gorm:"size:16;not null"`
	Seq       int64          `gorm:"not null"`
	PaymentID string         `gorm:"size:128"`
	CreatedAt time.Time
	UpdatedAt time.Time
	// ExpiresAt is the end of the payment window; NULL for orders stored
	// before windows existed. Its index is partial (see createIndexes).
	ExpiresAt *time.Time
}

func (orderRow) TableName() string { return "orders" }

func newOrderRow(o payment.Order) orderRow {
	return orderRow{
		ID: o.ID, Amount: o.Amount, Currency: o.Currency, Description: o.Description, Metadata: o.Metadata,
		Status: o.Status, Seq: o.Seq, PaymentID: o.PaymentID, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
		ExpiresAt: nullableTime(o.ExpiresAt),
	}
}

func nullableTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (r orderRow) order() payment.Order {
	o := payment.Order{
		ID: r.ID, Amount: r.Amount, Currency: r.Currency, Description: r.Description, Metadata: r.Metadata,
		Status: r.Status, Seq: r.Seq, PaymentID: r.PaymentID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if r.ExpiresAt != nil {
		o.ExpiresAt = r.ExpiresAt.UTC()
	}
	return o
}

// eventRow is one row of the payment_events table. The unique index on
// dedup_key makes a retried delivery fail instead of changing the order
// twice; the one on (order_id, seq) makes two changes to one seq fail.
// dedup_key's index is partial (createDedupIndex), so the many events
// without a key (expiries, manual changes) add no entry to it.
type eventRow struct {
	ID             int64          `gorm:"primaryKey;autoIncrement"`
	OrderID        string         `gorm:"size:64;not null;uniqueIndex:idx_payment_events_order_seq"`
	Seq            int64          `gorm:"not null;uniqueIndex:idx_payment_events_order_seq"`
	Type           string         `gorm:"size:32;not null"`
	Status         payment.Status `gorm:"size:16"`
	PreviousStatus payment.Status `gorm:"size:16"`
	Source         string         `gorm:"size:32;not null"`
	DedupKey       *string        `gorm:"size:255"`
	PaymentID      string         `gorm:"size:128"`
	Data           string         `gorm:"type:text"`
	CreatedAt      time.Time
}

// TableName keeps the table name explicit for operators reading the database.
func (eventRow) TableName() string { return "payment_events" }

func (r eventRow) event() payment.Event {
	return payment.Event{
		ID: r.ID, OrderID: r.OrderID, Seq: r.Seq, Type: r.Type, Status: r.Status, PreviousStatus: r.PreviousStatus,
		Source: r.Source, DedupKey: r.DedupKey, PaymentID: r.PaymentID, Data: r.Data, CreatedAt: r.CreatedAt,
	}
}
