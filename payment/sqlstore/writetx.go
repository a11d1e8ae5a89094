package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"time"

	"paystatus/payment"
)

// A preparedStmt is one of a store's write statements: prepared on the
// pool for database/sql, and kept as text for preparing on a SQLite
// connection of this package's own.
type preparedStmt struct {
	stmt  *sql.Stmt
	query string // with the placeholders of the store's database
}

// A writeTx is the transaction a change runs in. The transaction itself
// (BEGIN, savepoints, COMMIT) is database/sql's. On SQLite, conn is the
// connection it runs on, and the change's prepared statements go straight
// to the driver's connection, in the same SQLite transaction: that skips
// database/sql's statement wrappers, argument conversions and scanning.
type writeTx struct {
	*sql.Tx
	conn *sql.Conn // nil on Postgres: every statement goes through Tx
}

// exec runs p with args and returns how many rows it changed.
func (w writeTx) exec(ctx context.Context, p preparedStmt, args ...any) (int64, error) {
	if w.conn != nil {
		var n int64
		ran, err := onSQLiteConn(w.conn, func(c *offPConn) (err error) {
			n, err = c.exec(ctx, p.query, args)
			return err
		})
		if ran {
			return n, err
		}
	}
	res, err := w.StmtContext(ctx, p.stmt).ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryRow runs p with args and scans the first row into dest, as
// sql.Row.Scan does; with no row it returns sql.ErrNoRows.
func (w writeTx) queryRow(ctx context.Context, p preparedStmt, dest []any, args ...any) error {
	if w.conn != nil {
		ran, err := onSQLiteConn(w.conn, func(c *offPConn) error {
			return c.queryRow(ctx, p.query, args, dest)
		})
		if ran {
			return err
		}
	}
	return w.StmtContext(ctx, p.stmt).QueryRowContext(ctx, args...).Scan(dest...)
}

// onSQLiteConn runs f on conn's driver connection if it is an offPConn,
// and reports whether f ran. conn may be inside a transaction: SQLite's
// transactions belong to the connection, so f's statements are in it.
func onSQLiteConn(conn *sql.Conn, f func(*offPConn) error) (ran bool, err error) {
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*offPConn)
		if !ok {
			return nil
		}
		ran = true
		return f(c)
	})
	return ran, err
}

// maxConnStmts bounds the statements a connection keeps prepared. Only the
// store's fixed write statements are prepared this way, so the bound is
// never reached in practice; past it a statement is prepared for one use.
const maxConnStmts = 32

// prepared returns the connection's statement for query, prepared on first
// use, and whether it is kept (false: the caller closes it). Guarded by the
// connection: database/sql lends it to one goroutine at a time.
func (c *offPConn) prepared(ctx context.Context, query string) (*connStmt, bool, error) {
	if st, ok := c.stmts[query]; ok {
		return st, true, nil
	}
	ds, err := c.SQLiteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, false, err
	}
	exec, okExec := ds.(driver.StmtExecContext)
	queryer, okQuery := ds.(driver.StmtQueryContext)
	if !okExec || !okQuery {
		_ = ds.Close()
		return nil, false, fmt.Errorf("prepare %q: the driver's statement lacks context methods", query)
	}
	st := &connStmt{stmt: ds, exec: exec, query: queryer}
	if len(c.stmts) >= maxConnStmts {
		return st, false, nil
	}
	if c.stmts == nil {
		c.stmts = make(map[string]*connStmt)
	}
	c.stmts[query] = st
	return st, true, nil
}

// connStmt is a statement prepared on one driver connection.
type connStmt struct {
	stmt  driver.Stmt
	exec  driver.StmtExecContext
	query driver.StmtQueryContext
}

// closeStmts finalizes the connection's kept statements.
func (c *offPConn) closeStmts() {
	for q, st := range c.stmts {
		_ = st.stmt.Close()
		delete(c.stmts, q)
	}
}

func (c *offPConn) exec(ctx context.Context, query string, args []any) (int64, error) {
	st, kept, err := c.prepared(ctx, query)
	if err != nil {
		return 0, err
	}
	if !kept {
		defer st.stmt.Close()
	}
	values, err := c.namedValues(args)
	if err != nil {
		return 0, err
	}
	defer clear(values)
	res, err := st.exec.ExecContext(ctx, values)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c *offPConn) queryRow(ctx context.Context, query string, args, dest []any) error {
	st, kept, err := c.prepared(ctx, query)
	if err != nil {
		return err
	}
	if !kept {
		defer st.stmt.Close()
	}
	values, err := c.namedValues(args)
	if err != nil {
		return err
	}
	defer clear(values)
	rows, err := st.query.QueryContext(ctx, values)
	if err != nil {
		return err
	}
	defer rows.Close() // resets the statement, ending its read
	if len(rows.Columns()) != len(dest) {
		return fmt.Errorf("scan: %d columns into %d destinations", len(rows.Columns()), len(dest))
	}
	row := make([]driver.Value, len(dest))
	if err := rows.Next(row); err != nil {
		if errors.Is(err, io.EOF) {
			return sql.ErrNoRows
		}
		return err
	}
	for i, v := range row {
		if err := assignColumn(dest[i], v); err != nil {
			return fmt.Errorf("scan column %d: %w", i, err)
		}
	}
	return nil
}

// namedValues converts args as database/sql does before it calls a driver:
// pointers are followed (nil is NULL) and named basic types become their
// base type. The result is the connection's buffer, valid until its next
// statement; the driver binds it and keeps no reference.
func (c *offPConn) namedValues(args []any) ([]driver.NamedValue, error) {
	values := c.args[:0]
	for i, a := range args {
		v, err := driver.DefaultParameterConverter.ConvertValue(a)
		if err != nil {
			clear(values)
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		values = append(values, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	c.args = values
	return values, nil
}

// assignColumn stores a SQLite column value in dest, for the destination
// types the write statements read. Like sql.Row.Scan, it refuses NULL for a
// destination that cannot hold it.
func assignColumn(dest any, v driver.Value) error {
	switch d := dest.(type) {
	case *string:
		switch s := v.(type) {
		case string:
			*d = s
			return nil
		case []byte:
			*d = string(s)
			return nil
		}
	case *payment.Status:
		if s, ok := v.(string); ok {
			*d = payment.Status(s)
			return nil
		}
	case *int64:
		if n, ok := v.(int64); ok {
			*d = n
			return nil
		}
	case *time.Time:
		if t, ok := v.(time.Time); ok {
			*d = t
			return nil
		}
	}
	return fmt.Errorf("%w: %T into %T", errUnsupportedScan, v, dest)
}
