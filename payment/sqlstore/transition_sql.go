package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"paystatus/payment"
)

// transitionStatements are the statements of a status transition, prepared
// once per store. The transition runs on database/sql directly: inside a
// transaction GORM prepared them again on every call, which a CPU profile of
// the benchmark showed as about a tenth of the server's time.
type transitionStatements struct {
	loadOrder   *sql.Stmt // the order, and how many events carry the delivery's key
	updateOrder *sql.Stmt
	appendEvent *sql.Stmt
}

func prepareTransition(ctx context.Context, db *sql.DB, postgres bool) (*transitionStatements, error) {
	queries := []string{
		// The order and whether its delivery was seen, from one snapshot: under
		// Postgres's read committed, a rival commit that the order read sees is
		// seen by the delivery check too, so a duplicate is reported as one
		// rather than as stale.
		"SELECT id, amount, currency, status, seq, payment_id, updated_at, (SELECT count(*) FROM payment_events WHERE dedup_key = ?) FROM orders WHERE id = ?",
		"UPDATE orders SET status = ?, seq = ?, payment_id = ?, updated_at = ? WHERE id = ? AND seq = ?",
		"INSERT INTO payment_events (order_id, seq, type, status, previous_status, source, dedup_key, payment_id, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	}
	stmts := make([]*sql.Stmt, len(queries))
	for i, q := range queries {
		if postgres {
			q = numberedPlaceholders(q)
		}
		stmt, err := db.PrepareContext(ctx, q)
		if err != nil {
			for _, prepared := range stmts[:i] {
				_ = prepared.Close()
			}
			return nil, fmt.Errorf("prepare transition: %w", err)
		}
		stmts[i] = stmt
	}
	return &transitionStatements{loadOrder: stmts[0], updateOrder: stmts[1], appendEvent: stmts[2]}, nil
}

func (t *transitionStatements) close() {
	for _, stmt := range []*sql.Stmt{t.loadOrder, t.updateOrder, t.appendEvent} {
		_ = stmt.Close()
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

// beginTransition starts a transition's transaction and returns the context
// its statements run under, and a release to call after commit or rollback.
// Waiting for the connection honours ctx either way. On SQLite the
// statements then run without cancellation: mattn/go-sqlite3 runs each
// statement under a cancellable context on a goroutine of its own, and
// database/sql adds one per transaction, six per transition; and a local
// commit once started is better finished, since the gateway's retry then
// finds it done. On Postgres they keep ctx, so that a network round trip
// that hangs still ends with the request.
func (s *Store) beginTransition(ctx context.Context) (*sql.Tx, context.Context, func(), error) {
	if s.postgres {
		tx, err := s.sqlDB.BeginTx(ctx, nil)
		return tx, ctx, func() {}, err
	}
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	stmtCtx := context.WithoutCancel(ctx)
	tx, err := conn.BeginTx(stmtCtx, nil)
	if err != nil {
		_ = conn.Close()
		return nil, nil, nil, err
	}
	return tx, stmtCtx, func() { _ = conn.Close() }, nil
}

// runTransition applies one attempt of a transition in its own transaction.
func (s *Store) runTransition(ctx context.Context, tr payment.Transition, dedup *string) (change payment.StatusChange, err error) {
	tx, ctx, release, err := s.beginTransition(ctx)
	if err != nil {
		return payment.StatusChange{}, fmt.Errorf("begin: %w", s.translate(err))
	}
	defer release()
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var o payment.Order
	var seen int64
	err = tx.StmtContext(ctx, s.stmts.loadOrder).QueryRowContext(ctx, dedup, tr.OrderID).
		Scan(&o.ID, &o.Amount, &o.Currency, &o.Status, &o.Seq, &o.PaymentID, &o.UpdatedAt, &seen)
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
	res, err := tx.StmtContext(ctx, s.stmts.updateOrder).ExecContext(ctx, string(tr.To), o.Seq+1, paymentID, now, o.ID, o.Seq)
	if err != nil {
		return payment.StatusChange{}, fmt.Errorf("update order: %w", s.translate(err))
	}
	if n, rerr := res.RowsAffected(); rerr != nil || n == 0 {
		err = payment.ErrConflict
		return payment.StatusChange{}, err
	}
	previous := o.Status
	o.Status, o.Seq, o.PaymentID, o.UpdatedAt = tr.To, o.Seq+1, paymentID, now
	_, err = tx.StmtContext(ctx, s.stmts.appendEvent).ExecContext(ctx,
		o.ID, o.Seq, "status", string(tr.To), string(previous), tr.Source, dedup, paymentID, "", now)
	if err != nil {
		if translated := s.translate(err); errors.Is(translated, gorm.ErrDuplicatedKey) {
			err = translated
			return payment.StatusChange{}, err
		}
		return payment.StatusChange{}, fmt.Errorf("append event: %w", err)
	}
	if err = tx.Commit(); err != nil {
		return payment.StatusChange{}, fmt.Errorf("commit: %w", s.translate(err))
	}
	return payment.StatusChange{Snapshot: o.Snapshot(), PreviousStatus: previous, Source: tr.Source}, nil
}
