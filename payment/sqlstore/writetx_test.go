package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"paystatus/payment"
)

func TestAssignColumn(t *testing.T) {
	when := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		dest  any
		value driver.Value
		want  any // nil: the scan must fail
	}{
		{"text into string", new(string), "ord_1", "ord_1"},
		{"blob into string", new(string), []byte("ord_1"), "ord_1"},
		{"text into status", new(payment.Status), "completed", payment.StatusCompleted},
		{"integer into int64", new(int64), int64(42), int64(42)},
		{"time into time", new(time.Time), when, when},
		{"NULL into string", new(string), nil, nil},
		{"NULL into int64", new(int64), nil, nil},
		{"text into int64", new(int64), "42", nil},
		{"integer into string", new(string), int64(42), nil},
		{"text into time", new(time.Time), "2026-12-07", nil},
		{"integer into status", new(payment.Status), int64(1), nil},
		{"into an unsupported destination", new(float64), float64(1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := assignColumn(tc.dest, tc.value)
			if tc.want == nil {
				if !errors.Is(err, errUnsupportedScan) {
					t.Fatalf("got %v, want errUnsupportedScan", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch d := tc.dest.(type) {
			case *string:
				if *d != tc.want {
					t.Fatalf("got %q, want %v", *d, tc.want)
				}
			case *payment.Status:
				if *d != tc.want {
					t.Fatalf("got %q, want %v", *d, tc.want)
				}
			case *int64:
				if *d != tc.want {
					t.Fatalf("got %d, want %v", *d, tc.want)
				}
			case *time.Time:
				if !d.Equal(tc.want.(time.Time)) {
					t.Fatalf("got %v, want %v", *d, tc.want)
				}
			}
		})
	}
}

func TestNamedValues(t *testing.T) {
	key := "upi:d1"
	var noKey *string
	var c offPConn
	got, err := c.namedValues([]any{&key, noKey, payment.StatusCompleted, int64(7), "x"})
	if err != nil {
		t.Fatal(err)
	}
	want := []driver.NamedValue{
		{Ordinal: 1, Value: "upi:d1"}, {Ordinal: 2, Value: nil}, {Ordinal: 3, Value: "completed"},
		{Ordinal: 4, Value: int64(7)}, {Ordinal: 5, Value: "x"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := c.namedValues([]any{int64(1), struct{}{}}); err == nil {
		t.Fatal("a struct argument was converted")
	}
	// The connection reuses its buffer from one statement to the next.
	again, err := c.namedValues([]any{"y"})
	if err != nil || len(again) != 1 || again[0] != (driver.NamedValue{Ordinal: 1, Value: "y"}) {
		t.Fatalf("second conversion: %v, %v", again, err)
	}
	if &again[0] != &got[0] {
		t.Error("the connection's argument buffer was not reused")
	}
}

// On SQLite a change's statements run on the driver's connection: after a
// transition, that connection holds them prepared. The test fails if the
// store falls back to database/sql's statements.
func TestTransitionsRunOnTheDriverConnection(t *testing.T) {
	s := openStoreWith(t, Config{})
	if s.postgres {
		t.Skip("driver-level statements are SQLite's only; Postgres runs them through database/sql")
	}
	ctx := context.Background()
	o := newTestOrder(t, s)
	if _, err := s.ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusProcessing, Source: "upi", DeliveryID: "d1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyTransition(ctx, payment.Transition{OrderID: o.ID, To: payment.StatusProcessing, Source: "upi", DeliveryID: "d1"}); !errors.Is(err, payment.ErrDuplicateEvent) {
		t.Fatalf("a repeated delivery: got %v, want ErrDuplicateEvent", err)
	}
	if _, err := s.ApplyTransition(ctx, payment.Transition{OrderID: "ord_missing", To: payment.StatusProcessing, Source: "upi"}); !errors.Is(err, payment.ErrOrderNotFound) {
		t.Fatalf("an unknown order: got %v, want ErrOrderNotFound", err)
	}
	// The store has one SQLite connection: this holds it until Close.
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	ran, err := onSQLiteConn(conn, func(c *offPConn) error {
		for q := range c.stmts {
			kept = append(kept, q)
		}
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("the store's connection is not the commit-thread connection (ran %v, err %v)", ran, err)
	}
	for _, p := range []preparedStmt{s.stmts.insertOrder, s.stmts.loadOrder, s.stmts.updateOrder, s.stmts.appendEvent} {
		if !slices.Contains(kept, p.query) {
			t.Errorf("%q was not prepared on the driver's connection; kept: %q", p.query, kept)
		}
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Order(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != payment.StatusProcessing || got.Seq != o.Seq+1 {
		t.Fatalf("order after the transition: status %s seq %d, want processing and %d", got.Status, got.Seq, o.Seq+1)
	}
}

// A connection of another driver runs the statements through database/sql.
func TestWriteTxFallsBackOnOtherConnections(t *testing.T) {
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "plain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	insert, err := db.PrepareContext(ctx, "INSERT INTO t (id, n) VALUES (?, ?)")
	if err != nil {
		t.Fatal(err)
	}
	defer insert.Close()
	load, err := db.PrepareContext(ctx, "SELECT n FROM t WHERE id = ?")
	if err != nil {
		t.Fatal(err)
	}
	defer load.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sqlTx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sqlTx.Rollback()
	tx := writeTx{Tx: sqlTx, conn: conn}
	if n, err := tx.exec(ctx, preparedStmt{stmt: insert, query: "INSERT INTO t (id, n) VALUES (?, ?)"}, "a", int64(5)); err != nil || n != 1 {
		t.Fatalf("exec: %d rows, %v", n, err)
	}
	var n int64
	if err := tx.queryRow(ctx, preparedStmt{stmt: load, query: "SELECT n FROM t WHERE id = ?"}, []any{&n}, "a"); err != nil || n != 5 {
		t.Fatalf("queryRow: %d, %v", n, err)
	}
	if err := tx.queryRow(ctx, preparedStmt{stmt: load, query: "SELECT n FROM t WHERE id = ?"}, []any{&n}, "b"); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("queryRow of no row: %v, want sql.ErrNoRows", err)
	}
}

// A connection keeps at most maxConnStmts statements; past that, each
// statement is prepared for its one use and still runs.
func TestDriverConnectionStatementsAreBounded(t *testing.T) {
	s := openStoreWith(t, Config{})
	if s.postgres {
		t.Skip("driver-level statements are SQLite's only")
	}
	ctx := context.Background()
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ran, err := onSQLiteConn(conn, func(c *offPConn) error {
		for i := range maxConnStmts + 8 {
			var got int64
			if err := c.queryRow(ctx, fmt.Sprintf("SELECT %d + ?", i), []any{int64(1)}, []any{&got}); err != nil {
				return err
			}
			if got != int64(i+1) {
				return fmt.Errorf("statement %d returned %d", i, got)
			}
		}
		if len(c.stmts) > maxConnStmts {
			return fmt.Errorf("%d statements kept, bound %d", len(c.stmts), maxConnStmts)
		}
		if err := c.queryRow(ctx, "SELECT 1, 2", nil, []any{new(int64)}); err == nil {
			return errors.New("two columns scanned into one destination")
		}
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("ran %v: %v", ran, err)
	}
}
