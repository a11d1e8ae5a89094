package sqlstore

/*
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

// Resolved at link time against the copy of SQLite that mattn/go-sqlite3
// compiles in; weak, so that cgo's trial link of this package alone
// succeeds.
typedef struct sqlite3 sqlite3;
extern int sqlite3_exec(sqlite3*, const char*, void*, void*, char**) __attribute__((weak));

typedef struct { int req, resp; } sc_fds;

static int sc_full(int fd, void *buf, size_t n, int writing) {
	char *p = buf;
	while (n > 0) {
		ssize_t k = writing ? write(fd, p, n) : read(fd, p, n);
		if (k < 0 && errno == EINTR) continue;
		if (k <= 0) return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

// sc_main serves COMMIT requests: each is a connection handle read from
// req, answered with SQLite's result code on resp. It ends when req is
// closed.
static void *sc_main(void *arg) {
	sc_fds fds = *(sc_fds *)arg;
	free(arg);
	for (;;) {
		uint64_t db;
		if (sc_full(fds.req, &db, sizeof db, 0) != 0) break;
		int32_t rc = sqlite3_exec((sqlite3 *)(uintptr_t)db, "COMMIT", 0, 0, 0);
		if (sc_full(fds.resp, &rc, sizeof rc, 1) != 0) break;
	}
	close(fds.req);
	close(fds.resp);
	return 0;
}

// sc_start starts a detached commit thread with every signal blocked (a
// SIGPIPE, or a signal meant for Go, must not land on it). *go_req is the
// write end of its request pipe and *go_resp the read end of its answer
// pipe, both non-blocking for Go's poller. It returns 0 or an errno.
static int sc_start(int *go_req, int *go_resp) {
	int req[2], resp[2];
	if (pipe2(req, O_CLOEXEC) != 0) return errno;
	if (pipe2(resp, O_CLOEXEC) != 0) {
		int e = errno;
		close(req[0]); close(req[1]);
		return e;
	}
	sc_fds *fds = malloc(sizeof *fds);
	int rc = fds ? 0 : ENOMEM;
	if (rc == 0 && (fcntl(req[1], F_SETFL, O_NONBLOCK) != 0 || fcntl(resp[0], F_SETFL, O_NONBLOCK) != 0)) rc = errno;
	if (rc == 0) {
		fds->req = req[0];
		fds->resp = resp[1];
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_t t;
		rc = pthread_create(&t, &attr, sc_main, fds);
		pthread_attr_destroy(&attr);
		pthread_sigmask(SIG_SETMASK, &old, 0);
	}
	if (rc != 0) {
		free(fds);
		close(req[0]); close(req[1]); close(resp[0]); close(resp[1]);
		return rc;
	}
	*go_req = req[1];
	*go_resp = resp[0];
	return 0;
}
*/
import "C"

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"reflect"
	"syscall"

	"github.com/mattn/go-sqlite3"
)

// A commitThread runs one SQLite connection's COMMITs on a C thread of its
// own. The goroutine that asked waits on a pipe in Go's poller, so it holds
// no P while the WAL is fsynced. Inside a cgo call it would hold one, and
// with few Ps the runtime's monitor would keep handing that P to new
// threads.
//
// Requests are serial: database/sql gives a connection to one goroutine at
// a time, and that goroutine waits for each answer.
type commitThread struct {
	req  *os.File // write end: one 8-byte connection handle per COMMIT
	resp *os.File // read end: one 4-byte SQLite result code per COMMIT
}

func startCommitThread() (*commitThread, error) {
	var req, resp C.int
	if rc := C.sc_start(&req, &resp); rc != 0 {
		return nil, fmt.Errorf("start commit thread: %w", syscall.Errno(rc))
	}
	return &commitThread{
		req:  os.NewFile(uintptr(req), "sqlite-commit-request"),
		resp: os.NewFile(uintptr(resp), "sqlite-commit-answer"),
	}, nil
}

// commit runs COMMIT on the connection whose sqlite3 handle is db and
// returns SQLite's result code. delivered reports whether the thread took
// the request: if not, nothing ran and the caller may commit itself.
func (t *commitThread) commit(db uintptr) (rc int32, delivered bool, err error) {
	var buf [8]byte
	binary.NativeEndian.PutUint64(buf[:], uint64(db))
	if _, err := t.req.Write(buf[:]); err != nil {
		return 0, false, err
	}
	if _, err := io.ReadFull(t.resp, buf[:4]); err != nil {
		return 0, true, err
	}
	return int32(binary.NativeEndian.Uint32(buf[:4])), true, nil
}

// close ends the thread: it sees its request pipe closed and exits.
func (t *commitThread) close() {
	_ = t.req.Close()
	_ = t.resp.Close()
}

// sqliteConnector opens mattn/go-sqlite3 connections whose transactions
// commit on a commitThread. Every other call goes to the driver unchanged.
type sqliteConnector struct {
	dsn    string
	driver *sqlite3.SQLiteDriver
}

func (c *sqliteConnector) Driver() driver.Driver { return c.driver }

func (c *sqliteConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.driver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(*sqlite3.SQLiteConn)
	if !ok {
		return conn, nil
	}
	handle := sqliteHandle(sc)
	if handle == 0 {
		// A driver whose connection no longer holds its handle where this
		// looks: commit on the caller's goroutine, as the driver does.
		return conn, nil
	}
	thread, err := startCommitThread()
	if err != nil {
		_ = sc.Close()
		return nil, err
	}
	return &offPConn{SQLiteConn: sc, handle: handle, thread: thread}, nil
}

// sqliteHandle returns the connection's sqlite3 pointer, which the driver
// keeps unexported, or 0 if it cannot be found.
func sqliteHandle(sc *sqlite3.SQLiteConn) uintptr {
	v := reflect.ValueOf(sc).Elem().FieldByName("db")
	if !v.IsValid() || v.Kind() != reflect.Pointer {
		return 0
	}
	return v.Pointer()
}

// offPConn is a driver connection whose transactions commit on its
// commitThread; the embedded connection provides everything else.
type offPConn struct {
	*sqlite3.SQLiteConn
	handle uintptr
	thread *commitThread
	stmts  map[string]*connStmt // by query, for writeTx; guarded by the connection
	args   []driver.NamedValue  // the arguments of writeTx's statement; guarded by the connection
}

func (c *offPConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *offPConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if _, err := c.SQLiteConn.BeginTx(ctx, opts); err != nil {
		return nil, err
	}
	return offPTx{c}, nil
}

func (c *offPConn) Close() error {
	c.closeStmts()
	c.thread.close()
	return c.SQLiteConn.Close()
}

type offPTx struct{ c *offPConn }

// Commit ends the transaction as the driver's own Commit does: a failed
// COMMIT is followed by a ROLLBACK, since SQLite may leave the transaction
// open and database/sql considers it finished either way.
func (tx offPTx) Commit() error {
	rc, delivered, err := tx.c.thread.commit(tx.c.handle)
	switch {
	case !delivered:
		_, err = tx.c.SQLiteConn.ExecContext(context.Background(), "COMMIT", nil)
	case err != nil:
		// The thread took the request but its answer was lost: the outcome is
		// unknown, and the connection must not be used again.
		return fmt.Errorf("commit: %w: %w", err, driver.ErrBadConn)
	case rc != 0:
		err = sqlite3.Error{Code: sqlite3.ErrNo(rc & 0xff), ExtendedCode: sqlite3.ErrNoExtended(rc)}
	}
	if err != nil {
		_, _ = tx.c.SQLiteConn.ExecContext(context.Background(), "ROLLBACK", nil)
	}
	return err
}

func (tx offPTx) Rollback() error {
	_, err := tx.c.SQLiteConn.ExecContext(context.Background(), "ROLLBACK", nil)
	return err
}
