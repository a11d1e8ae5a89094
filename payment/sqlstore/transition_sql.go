package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"paystatus/payment"
)

// writeStatements are the statements of every change, prepared once per
// store. Changes run on database/sql directly, because inside a transaction
// GORM prepares them again on every call.
type writeStatements struct {
	loadOrder   preparedStmt // the order, and how many events carry the delivery's key
	updateOrder preparedStmt
	appendEvent preparedStmt
	insertOrder preparedStmt
	loadSeq     preparedStmt
	patchOrder  preparedStmt
}

// loadOrderQuery reads the order and whether its delivery was seen, from
// one snapshot: under Postgres's read committed, a rival commit that the
// order read sees is seen by the delivery check too, so a duplicate is
// reported as one rather than as stale.
const loadOrderQuery = "SELECT id, amount, currency, status, seq, payment_id, updated_at, (SELECT count(*) FROM payment_events WHERE dedup_key = ?) FROM orders WHERE id = ?"

// dedupKeyIndexName is the partial unique index on payment_events'
// delivery keys (createDedupIndex).
const dedupKeyIndexName = "idx_payment_events_dedup"

// eventColumns are payment_events' columns but its id, in the order that
// every INSERT of an event lists them.
const eventColumns = "order_id, seq, type, status, previous_status, source, dedup_key, payment_id, data, created_at"

// insertEvents begins every INSERT of events, the transitions' and the
// expiry's alike; their VALUES or SELECT follows.
const insertEvents = "INSERT INTO payment_events (" + eventColumns + ") "

func prepareWrites(ctx context.Context, db *sql.DB, postgres bool) (*writeStatements, error) {
	queries := []string{
		loadOrderQuery,
		"UPDATE orders SET status = ?, seq = ?, payment_id = ?, updated_at = ? WHERE id = ? AND seq = ?",
		insertEvents + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		"INSERT INTO orders (id, amount, currency, description, metadata, status, seq, payment_id, created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		"SELECT seq FROM orders WHERE id = ?",
		// A nil field of the patch keeps the column as it is.
		"UPDATE orders SET seq = ?, updated_at = ?, description = COALESCE(?, description), metadata = COALESCE(?, metadata) WHERE id = ? AND seq = ?",
	}
	stmts := make([]preparedStmt, len(queries))
	for i, q := range queries {
		if postgres {
			q = numberedPlaceholders(q)
		}
		stmt, err := db.PrepareContext(ctx, q)
		if err != nil {
			for _, prepared := range stmts[:i] {
				_ = prepared.stmt.Close()
			}
			return nil, fmt.Errorf("prepare statements: %w", err)
		}
		stmts[i] = preparedStmt{stmt: stmt, query: q}
	}
	return &writeStatements{loadOrder: stmts[0], updateOrder: stmts[1], appendEvent: stmts[2],
		insertOrder: stmts[3], loadSeq: stmts[4], patchOrder: stmts[5]}, nil
}

func (w *writeStatements) close() {
	for _, p := range []preparedStmt{w.loadOrder, w.updateOrder, w.appendEvent, w.insertOrder, w.loadSeq, w.patchOrder} {
		_ = p.stmt.Close()
	}
}

// numberedPlaceholders turns ? into $1, $2, … for Postgres. The queries it
// is given hold no string literals.
func numberedPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// translate maps a driver error to GORM's portable errors, such as
// ErrDuplicatedKey for a unique violation.
func (s *Store) translate(err error) error {
	if tr, ok := s.db.Dialector.(gorm.ErrorTranslator); ok {
		return tr.Translate(err)
	}
	return err
}

// maxConflictRetries bounds how often a change is retried after losing a
// race on the order's seq.
const maxConflictRetries = 20

// write applies a change durably: in the next group when group commit is
// on, otherwise in a transaction of its own. apply may run more than once
// (after a lost race); only its last run counts.
func (s *Store) write(ctx context.Context, apply func(context.Context, writeTx) error) error {
	if s.group != nil {
		return s.group.submit(ctx, apply)
	}
	for attempt := 0; ; attempt++ {
		err := s.writeAlone(ctx, apply)
		if errors.Is(err, errRetryLater) {
			if attempt < maxConflictRetries {
				continue
			}
			err = payment.ErrConflict
		}
		return err
	}
}

// writeAlone runs one attempt of a change in its own transaction.
//
// Waiting for the connection honours ctx. On SQLite the statements then
// run without cancellation: mattn/go-sqlite3 runs each statement under a
// cancellable context on a goroutine of its own, and database/sql adds one
// per transaction; and a local commit once started is better finished,
// since the client's retry then finds it done. On Postgres they keep ctx,
// so that a network round trip that hangs still ends with the request.
func (s *Store) writeAlone(ctx context.Context, apply func(context.Context, writeTx) error) (err error) {
	var tx writeTx
	if s.postgres {
		tx.Tx, err = s.sqlDB.BeginTx(ctx, nil)
	} else {
		if tx.conn, err = s.sqlDB.Conn(ctx); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer tx.conn.Close()
		ctx = context.WithoutCancel(ctx)
		tx.Tx, err = tx.conn.BeginTx(ctx, nil)
	}
	if err != nil {
		return fmt.Errorf("begin: %w", s.translate(err))
	}
	if err = apply(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", s.translate(err))
	}
	return nil
}

// retryable maps a lost race to errRetryLater: the seq guard matched no
// row, or Postgres chose this transaction as a deadlock or serialization
// victim (possible when groups on two nodes lock the same orders).
func retryable(err error) error {
	if errors.Is(err, payment.ErrConflict) {
		return errRetryLater
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01") {
		return errRetryLater
	}
	return err
}

// InsertOrder stores a new order.
func (s *Store) InsertOrder(ctx context.Context, o payment.Order) error {
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		_, err := tx.exec(ctx, s.stmts.insertOrder,
			o.ID, o.Amount, o.Currency, o.Description, o.Metadata, string(o.Status), o.Seq, o.PaymentID, o.CreatedAt.UTC(), o.UpdatedAt.UTC(), nullableTime(o.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create order: %w", s.translate(err))
	}
	return nil
}

// ApplyTransition moves an order to a new status. The order row and its
// event are written in one transaction; a guarded update on seq makes
// concurrent changes serialise, so exactly one wins each transition.
func (s *Store) ApplyTransition(ctx context.Context, tr payment.Transition) (payment.StatusChange, error) {
	if !payment.ValidOrderID(tr.OrderID) {
		return payment.StatusChange{}, payment.ErrOrderNotFound
	}
	dedup := tr.DedupKey()
	var change payment.StatusChange
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		c, err := s.applyTransition(ctx, tx, tr, dedup)
		change = c
		return retryable(err)
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		// Another delivery of the same event committed first.
		return payment.StatusChange{}, payment.ErrDuplicateEvent
	}
	if err != nil {
		return payment.StatusChange{}, err
	}
	return change, nil
}

// applyTransition runs one attempt of a transition on tx.
func (s *Store) applyTransition(ctx context.Context, tx writeTx, tr payment.Transition, dedup *string) (payment.StatusChange, error) {
	var o payment.Order
	var seen int64
	err := tx.queryRow(ctx, s.stmts.loadOrder,
		[]any{&o.ID, &o.Amount, &o.Currency, &o.Status, &o.Seq, &o.PaymentID, &o.UpdatedAt, &seen}, dedup, tr.OrderID)
	if errors.Is(err, sql.ErrNoRows) {
		return payment.StatusChange{}, payment.ErrOrderNotFound
	}
	if err != nil {
		return payment.StatusChange{}, fmt.Errorf("load order: %w", err)
	}
	if dedup != nil && seen > 0 {
		return payment.StatusChange{}, payment.ErrDuplicateEvent
	}
	if err = payment.CheckTransition(o, tr); err != nil {
		return payment.StatusChange{}, err
	}
	now := time.Now().UTC()
	paymentID := o.PaymentID
	if tr.PaymentID != "" {
		paymentID = tr.PaymentID
	}
	n, err := tx.exec(ctx, s.stmts.updateOrder, string(tr.To), o.Seq+1, paymentID, now, o.ID, o.Seq)
	if err != nil {
		return payment.StatusChange{}, fmt.Errorf("update order: %w", s.translate(err))
	}
	if n == 0 {
		return payment.StatusChange{}, payment.ErrConflict
	}
	previous := o.Status
	o.Status, o.Seq, o.PaymentID, o.UpdatedAt = tr.To, o.Seq+1, paymentID, now
	_, err = tx.exec(ctx, s.stmts.appendEvent,
		o.ID, o.Seq, "status", string(tr.To), string(previous), tr.Source, dedup, paymentID, payment.EventData(previous, tr), now)
	if err != nil {
		if translated := s.translate(err); errors.Is(translated, gorm.ErrDuplicatedKey) {
			return payment.StatusChange{}, translated
		}
		return payment.StatusChange{}, fmt.Errorf("append event: %w", err)
	}
	return payment.StatusChange{Snapshot: o.Snapshot(), PreviousStatus: previous, Source: tr.Source,
		LateCapture: payment.IsLateCapture(previous, tr.To)}, nil
}

// UpdateOrder applies a patch, bumps seq and logs an order-update event.
func (s *Store) UpdateOrder(ctx context.Context, orderID string, patch payment.OrderPatch, data []byte) (payment.OrderChange, error) {
	if !payment.ValidOrderID(orderID) {
		return payment.OrderChange{}, payment.ErrOrderNotFound
	}
	if err := patch.Validate(); err != nil {
		return payment.OrderChange{}, err
	}
	var metadata *string
	if patch.Metadata != nil {
		m := string(patch.Metadata)
		metadata = &m
	}
	var change payment.OrderChange
	err := s.write(ctx, func(ctx context.Context, tx writeTx) error {
		var seq int64
		err := tx.queryRow(ctx, s.stmts.loadSeq, []any{&seq}, orderID)
		if errors.Is(err, sql.ErrNoRows) {
			return payment.ErrOrderNotFound
		}
		if err != nil {
			return fmt.Errorf("load order: %w", err)
		}
		now := time.Now().UTC()
		n, err := tx.exec(ctx, s.stmts.patchOrder, seq+1, now, patch.Description, metadata, orderID, seq)
		if err != nil {
			return retryable(fmt.Errorf("update order: %w", err))
		}
		if n == 0 {
			return errRetryLater
		}
		_, err = tx.exec(ctx, s.stmts.appendEvent,
			orderID, seq+1, "order-update", "", "", "api", nil, "", string(data), now)
		if err != nil {
			return retryable(fmt.Errorf("append event: %w", err))
		}
		change = payment.OrderChange{OrderID: orderID, Seq: seq + 1, Type: "updated", Data: data, UpdatedAt: now}
		return nil
	})
	if err != nil {
		return payment.OrderChange{}, err
	}
	return change, nil
}
