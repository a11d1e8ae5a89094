package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"paystatus/payment"
)

var _ payment.LifecycleStore = (*Store)(nil)

// The statuses in these queries are literals, not parameters: SQLite and
// Postgres use a partial index only when they can see that the query's
// WHERE implies the index's, which a bound value hides from the planner.
const (
	openStatuses     = "('pending', 'processing')"
	terminalStatuses = "('completed', 'failed', 'expired', 'refunded')"

	// dueOrdersQuery serves the sweep from idx_orders_open_deadline alone:
	// terminal orders are not in that index, so however much history the
	// table holds, the sweep reads only open orders past their deadline.
	dueOrdersQuery = "SELECT id, amount, currency, status, seq, payment_id, expires_at FROM orders" +
		" WHERE status IN " + openStatuses + " AND expires_at <= ? ORDER BY expires_at LIMIT ?"
	expireOrderStmt = "UPDATE orders SET status = ?, seq = ?, updated_at = ? WHERE id = ? AND seq = ?"
	expireEventStmt = insertEvents + "VALUES (?, ?, 'status', ?, ?, ?, NULL, ?, '', ?)"

	// purgeCandidatesQuery walks idx_orders_created_at from the oldest
	// order. Retention is longer than the longest payment window, so the
	// orders it passes over are terminal ones, which it takes.
	purgeCandidatesQuery = "SELECT id FROM orders WHERE created_at < ? AND status IN " + terminalStatuses +
		" ORDER BY created_at LIMIT ?"
	countCreatedQuery     = "SELECT count(*) FROM orders WHERE created_at >= ?"
	assignDeadlinesStmt   = "UPDATE orders SET expires_at = ? WHERE status IN " + openStatuses + " AND expires_at IS NULL"
	openDeadlineIndexName = "idx_orders_open_deadline"
	createdAtIndexName    = "idx_orders_created_at"
)

// createIndexes adds the indexes of the order lifecycle.
//
// idx_orders_open_deadline holds only open orders, so it stays as small as
// the number of orders awaiting payment, and a completion removes its entry.
// The cost: a status change rewrites the entry (SQLite) and, on Postgres,
// cannot be a HOT update, since status is in the index's predicate.
// idx_orders_created_at is written once per order and never changes.
func createIndexes(db *gorm.DB) error {
	for _, ddl := range []string{
		"CREATE INDEX IF NOT EXISTS " + openDeadlineIndexName + " ON orders (expires_at) WHERE status IN " + openStatuses,
		"CREATE INDEX IF NOT EXISTS " + createdAtIndexName + " ON orders (created_at)",
	} {
		if err := db.Exec(ddl).Error; err != nil {
			return fmt.Errorf("create index: %w", err)
		}
	}
	return nil
}

func (s *Store) query(q string) string {
	if s.postgres {
		return numberedPlaceholders(q)
	}
	return q
}

// ExpireDue implements payment.LifecycleStore. Each order's move is
// checked by the status machine and guarded on its seq, and one that lost
// a race (a callback, or another node's sweep) is skipped, as is one whose
// write fails (reported with ErrExpirySkipped beside the changes
// committed). On Postgres the candidates are locked with SKIP LOCKED, so
// two nodes sweeping at once take different orders.
//
// With group commit on, the expiries go through the group committer in
// chunks of at most GroupExpiryMax orders, as background ops: a chunk takes
// a group of its own when no callback is waiting, and joins one only after
// giving way for a while (group.go). A chunk that finds a callback queued
// after one of its steps of expiryStep orders stops there, and the callback
// joins its transaction, so a callback waits behind at most a step of
// expiries and a commit. Otherwise the batch is one transaction of its own.
func (s *Store) ExpireDue(ctx context.Context, now time.Time, limit int, dst []payment.StatusChange) ([]payment.StatusChange, error) {
	if limit <= 0 {
		return dst, nil
	}
	now = now.UTC()
	if s.group == nil {
		return s.expireAlone(ctx, now, limit, dst)
	}
	changes, base := slices.Grow(dst, limit), len(dst)
	var failed []error
	for len(changes)-base < limit {
		chunk := min(limit-(len(changes)-base), s.expiryChunk)
		var got []payment.StatusChange
		var bad []error
		var yielded bool
		err := s.group.submitBackground(ctx, func(ctx context.Context, tx writeTx) error {
			// apply may run again after a lost race: only its last run counts.
			var err error
			got, bad, yielded, err = s.expireChunk(ctx, tx.Tx, now, chunk, s.giveWay, changes)
			return retryable(err)
		})
		if errors.Is(err, errRetryLater) {
			err = payment.ErrConflict
		}
		if err != nil {
			return changes, errors.Join(s.skipped(failed), fmt.Errorf("expire due orders: %w", s.translate(err)))
		}
		expired := len(got) - len(changes)
		changes = got
		failed = append(failed, bad...)
		if expired < chunk && !yielded {
			break // nothing more is due, or what is left failed
		}
	}
	return changes, s.skipped(failed)
}

func (s *Store) skipped(failed []error) error {
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", payment.ErrExpirySkipped, errors.Join(failed...))
}

// expireAlone expires up to limit due orders in a transaction of its own.
func (s *Store) expireAlone(ctx context.Context, now time.Time, limit int, dst []payment.StatusChange) (changes []payment.StatusChange, err error) {
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return dst, fmt.Errorf("begin expiry: %w", s.translate(err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	changes, failed, _, err := s.expireChunk(ctx, tx, now, limit, nil, slices.Grow(dst, limit))
	if err != nil {
		return dst, err
	}
	if err = tx.Commit(); err != nil {
		return dst, fmt.Errorf("commit expiry: %w", s.translate(err))
	}
	return changes, s.skipped(failed)
}

// expiryStep is how many orders a grouped chunk expires between two looks
// at the committer's queue: a callback that arrives while a chunk runs
// waits for at most this many before the chunk gives way and the callback
// joins its transaction.
const expiryStep = 16

// expireChunk expires up to limit due orders on tx, appending their changes
// to dst, which it may overwrite past its length. failed holds the orders
// whose write failed and was rolled back; err, a failure that leaves tx's
// expiries unusable. If giveWay is set, the chunk goes expiryStep orders
// at a time and stops early, with yielded set, once giveWay reports true:
// the orders it left are still due, for the next chunk.
func (s *Store) expireChunk(ctx context.Context, tx *sql.Tx, now time.Time, limit int, giveWay func() bool, dst []payment.StatusChange) (changes []payment.StatusChange, failed []error, yielded bool, err error) {
	tr := payment.Transition{To: payment.StatusExpired, Source: payment.SourceExpiry}
	dueOrders := tx.StmtContext(ctx, s.expiry.dueOrders)
	changes, base := dst, len(dst)
	left := func() int { return limit - (len(changes) - base) } // orders this chunk may still expire
	step := limit
	if giveWay != nil {
		step = expiryStep
	}
	// The steps' due orders, one step at a time, in a buffer that later
	// chunks reuse; it is cleared on return, so it keeps no order alive.
	pooled := dueBufs.Get().(*[]payment.Order)
	buf := (*pooled)[:0]
	defer func() {
		clear(buf[:cap(buf)])
		*pooled = buf[:0]
		dueBufs.Put(pooled)
	}()
	// Each step reads only the orders it expires, so a chunk that gives way
	// has read nothing that the next chunk must read again.
	for left() > 0 {
		want := min(step, left())
		due, err := loadDue(ctx, dueOrders, now, want, buf[:0])
		if err != nil {
			return nil, nil, false, err
		}
		batch := due[:0] // filtered in place: only len(due) is used after
		for _, o := range due {
			tr.OrderID = o.ID
			if payment.CheckTransition(o, tr) == nil {
				batch = append(batch, o)
			}
		}
		buf = due
		got, ok := s.expireBatch(ctx, tx, batch, tr.Source, now, changes)
		if !ok {
			break
		}
		expired := len(got) - len(changes)
		changes = got
		if len(due) < want || expired == 0 {
			return changes, nil, false, nil // nothing more is due
		}
		if left() > 0 && giveWay != nil && giveWay() {
			return changes, nil, true, nil
		}
	}
	if left() == 0 {
		return changes, nil, false, nil
	}
	// A batch failed: go order by order over twice as many as are left, so
	// that orders whose write fails (they stay first in line) do not take
	// the whole chunk: the sweep moves on past up to limit of them.
	due, err := loadDue(ctx, dueOrders, now, 2*left(), nil)
	if err != nil {
		return nil, nil, false, err
	}
	update, err := tx.PrepareContext(ctx, s.query(expireOrderStmt))
	if err != nil {
		return nil, nil, false, fmt.Errorf("prepare expiry: %w", err)
	}
	defer update.Close()
	insert, err := tx.PrepareContext(ctx, s.query(expireEventStmt))
	if err != nil {
		return nil, nil, false, fmt.Errorf("prepare expiry event: %w", err)
	}
	defer insert.Close()
	for _, o := range due {
		if left() == 0 {
			break
		}
		tr.OrderID = o.ID
		if payment.CheckTransition(o, tr) != nil {
			continue
		}
		change, ok, err := s.expireOne(ctx, tx, update, insert, o, tr.Source, now)
		if err != nil {
			failed = append(failed, fmt.Errorf("order %s: %w", o.ID, err))
			continue
		}
		if ok {
			changes = append(changes, change)
		}
	}
	return changes, failed, false, nil
}

// expireBatch expires orders, all read by this transaction (which holds
// their rows: SQLite's write lock, or Postgres's FOR UPDATE), with one
// UPDATE and one INSERT under one savepoint. If anything fails, or the
// UPDATE does not move every order, it rolls back to the savepoint and
// reports !ok: the caller then goes order by order, so that one bad order
// cannot hold up the others. The changes are appended to dst.
func (s *Store) expireBatch(ctx context.Context, tx *sql.Tx, orders []payment.Order, source string, now time.Time, dst []payment.StatusChange) ([]payment.StatusChange, bool) {
	if len(orders) == 0 {
		return dst, true
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT expire_batch"); err != nil {
		return nil, false
	}
	changes, ok := func() ([]payment.StatusChange, bool) {
		changes := dst
		for _, o := range orders {
			previous := o.Status
			o.Status, o.Seq, o.UpdatedAt = payment.StatusExpired, o.Seq+1, now
			changes = append(changes, payment.StatusChange{Snapshot: o.Snapshot(), PreviousStatus: previous, Source: source})
		}
		ids := string(batchIDs(make([]byte, 0, 32*len(orders)), orders))
		// Statements made from tx close with it. Every order must be
		// written by both, or none is (the savepoint).
		for _, st := range []struct {
			stmt       *sql.Stmt
			first, now any
		}{{s.expiry.insert, source, now}, {s.expiry.update, string(payment.StatusExpired), now}} {
			res, err := tx.StmtContext(ctx, st.stmt).ExecContext(ctx, st.first, st.now, ids)
			if err != nil {
				return nil, false
			}
			if n, err := res.RowsAffected(); err != nil || n != int64(len(orders)) {
				return nil, false
			}
		}
		return changes, true
	}()
	if !ok {
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT expire_batch"); err != nil {
			return nil, false
		}
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT expire_batch"); err != nil {
		return nil, false
	}
	return changes, ok
}

// Batch expiry statements. The INSERT runs first and copies each event's
// fields from its order's row, which still holds the previous status. Both
// take the batch's ids as one JSON array (batchIDs), so one pair of
// statements serves every batch size, and a batch binds three values
// whatever its size: the source or the new status, the time, the ids.
const (
	expireBatchUpdate = "UPDATE orders SET status = ?, seq = seq + 1, updated_at = ? WHERE status IN " + openStatuses + " AND %s"
	expireBatchInsert = insertEvents + "SELECT id, seq + 1, 'status', '" + string(payment.StatusExpired) + "', status, %s, NULL, payment_id, '', %s" +
		" FROM orders WHERE status IN " + openStatuses + " AND %s"
)

// batchStatements returns the batch expiry's UPDATE and INSERT, with ?
// placeholders, for SQLite or Postgres.
func batchStatements(postgres bool) (update, insert string) {
	ids, source, at := "id IN (SELECT value FROM json_each(?))", "?", "?"
	if postgres {
		// Postgres gives a bare parameter in a SELECT list the type text.
		// Against IN (a set-returning function), whose size it cannot
		// know, it plans a hash join over every open order; against
		// = ANY(an array), a lookup in the primary key per id.
		ids = "id = ANY(ARRAY(SELECT json_array_elements_text(CAST(? AS json))))"
		source, at = "CAST(? AS text)", "CAST(? AS timestamptz)"
	}
	return fmt.Sprintf(expireBatchUpdate, ids), fmt.Sprintf(expireBatchInsert, source, at, ids)
}

// batchIDs appends the orders' ids to buf as a JSON array of strings.
func batchIDs(buf []byte, orders []payment.Order) []byte {
	buf = append(buf, '[')
	for i, o := range orders {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, o.ID)
	}
	return append(buf, ']')
}

// appendJSONString appends s as a JSON string. For printable ASCII without
// quotes or backslashes (every id this server makes), Go's quoting is
// JSON's; anything else goes through encoding/json.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(buf, b...)
		}
	}
	return strconv.AppendQuote(buf, s)
}

// expiryStatements are the sweep's statements, prepared once per store: the
// due orders' query and the batch UPDATE and INSERT. Preparing a batch's
// statements for every chunk was a large share of its cost
// (docs/performance.md, round 10).
type expiryStatements struct {
	dueOrders, update, insert *sql.Stmt
	closeOnce                 sync.Once
}

func prepareExpiry(ctx context.Context, db *sql.DB, query func(string) string, postgres bool) (*expiryStatements, error) {
	due := dueOrdersQuery
	if postgres {
		due += " FOR UPDATE SKIP LOCKED"
	}
	updateSQL, insertSQL := batchStatements(postgres)
	e := &expiryStatements{}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{{&e.dueOrders, due}, {&e.update, updateSQL}, {&e.insert, insertSQL}} {
		stmt, err := db.PrepareContext(ctx, query(p.sql))
		if err != nil {
			e.close()
			return nil, fmt.Errorf("prepare expiry statements: %w", err)
		}
		*p.stmt = stmt
	}
	return e, nil
}

func (e *expiryStatements) close() {
	e.closeOnce.Do(func() {
		for _, st := range []*sql.Stmt{e.dueOrders, e.update, e.insert} {
			if st != nil {
				_ = st.Close()
			}
		}
	})
}

// expireOne applies one order's expiry inside the batch, under a savepoint:
// an order whose write fails is rolled back alone, so it cannot hold up
// every other due order behind it. ok is false when the order changed
// since it was read: whoever changed it owns it.
func (s *Store) expireOne(ctx context.Context, tx *sql.Tx, update, insert *sql.Stmt, o payment.Order, source string, now time.Time) (payment.StatusChange, bool, error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT expire_one"); err != nil {
		return payment.StatusChange{}, false, fmt.Errorf("savepoint: %w", err)
	}
	change, ok, err := func() (payment.StatusChange, bool, error) {
		res, err := update.ExecContext(ctx, string(payment.StatusExpired), o.Seq+1, now, o.ID, o.Seq)
		if err != nil {
			return payment.StatusChange{}, false, fmt.Errorf("expire order: %w", s.translate(err))
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return payment.StatusChange{}, false, nil
		}
		previous := o.Status
		o.Status, o.Seq, o.UpdatedAt = payment.StatusExpired, o.Seq+1, now
		if _, err := insert.ExecContext(ctx, o.ID, o.Seq, string(o.Status), string(previous), source, o.PaymentID, now); err != nil {
			return payment.StatusChange{}, false, fmt.Errorf("append expiry event: %w", s.translate(err))
		}
		return payment.StatusChange{Snapshot: o.Snapshot(), PreviousStatus: previous, Source: source}, true, nil
	}()
	if err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT expire_one"); rerr != nil {
			return payment.StatusChange{}, false, errors.Join(err, fmt.Errorf("rollback to savepoint: %w", rerr))
		}
	}
	if _, rerr := tx.ExecContext(ctx, "RELEASE SAVEPOINT expire_one"); rerr != nil {
		return payment.StatusChange{}, false, errors.Join(err, fmt.Errorf("release savepoint: %w", rerr))
	}
	return change, ok, err
}

// dueBufs holds the buffers that expiry steps scan due orders into.
var dueBufs = sync.Pool{New: func() any { return new([]payment.Order) }}

// loadDue reads up to limit due orders, appending them to dst.
func loadDue(ctx context.Context, query *sql.Stmt, now time.Time, limit int, dst []payment.Order) ([]payment.Order, error) {
	rows, err := query.QueryContext(ctx, now, limit)
	if err != nil {
		return nil, fmt.Errorf("load due orders: %w", err)
	}
	defer rows.Close()
	due := dst
	if due == nil {
		due = make([]payment.Order, 0, min(limit, 256))
	}
	// Rows are scanned in place, and through one NullTime: Scan's pointers
	// would move a variable per row to the heap.
	var expires sql.NullTime
	for rows.Next() {
		due = append(due, payment.Order{})
		o := &due[len(due)-1]
		if err := rows.Scan(&o.ID, &o.Amount, &o.Currency, &o.Status, &o.Seq, &o.PaymentID, &expires); err != nil {
			return nil, fmt.Errorf("load due orders: %w", err)
		}
		o.ExpiresAt = expires.Time.UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load due orders: %w", err)
	}
	return due, nil
}

// AssignMissingDeadlines implements payment.LifecycleStore. Open orders
// without a deadline are NULL entries of idx_orders_open_deadline, so this
// too reads only open orders.
func (s *Store) AssignMissingDeadlines(ctx context.Context, deadline time.Time) (int64, error) {
	res, err := s.sqlDB.ExecContext(ctx, s.query(assignDeadlinesStmt), deadline.UTC())
	if err != nil {
		return 0, fmt.Errorf("assign deadlines: %w", s.translate(err))
	}
	return res.RowsAffected()
}

// PurgeTerminal implements payment.LifecycleStore: the orders and their
// events go in one transaction.
func (s *Store) PurgeTerminal(ctx context.Context, cutoff time.Time, limit int) (n int, err error) {
	if limit <= 0 {
		return 0, nil
	}
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin purge: %w", s.translate(err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	rows, err := tx.QueryContext(ctx, s.query(purgeCandidatesQuery), cutoff.UTC(), limit)
	if err != nil {
		return 0, fmt.Errorf("load old orders: %w", err)
	}
	var ids []any
	for rows.Next() {
		var id string
		if err = rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("load old orders: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err = rows.Err(); err != nil {
		return 0, fmt.Errorf("load old orders: %w", err)
	}
	if len(ids) == 0 {
		return 0, tx.Commit()
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")"
	if _, err = tx.ExecContext(ctx, s.query("DELETE FROM payment_events WHERE order_id IN "+in), ids...); err != nil {
		return 0, fmt.Errorf("purge events: %w", s.translate(err))
	}
	res, err := tx.ExecContext(ctx, s.query("DELETE FROM orders WHERE id IN "+in+" AND status IN "+terminalStatuses), ids...)
	if err != nil {
		return 0, fmt.Errorf("purge orders: %w", s.translate(err))
	}
	deleted, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge orders: %w", err)
	}
	if err = tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit purge: %w", s.translate(err))
	}
	return int(deleted), nil
}

// CountCreatedSince implements payment.LifecycleStore from
// idx_orders_created_at.
func (s *Store) CountCreatedSince(ctx context.Context, since time.Time) (int64, error) {
	var n int64
	err := s.sqlDB.QueryRowContext(ctx, s.query(countCreatedQuery), since.UTC()).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count orders: %w", err)
	}
	return n, nil
}
