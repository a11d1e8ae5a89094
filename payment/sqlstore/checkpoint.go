package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
)

// sqliteDriverName is go-sqlite3 with SQLite's automatic checkpoints turned
// off on every connection: the store's walCheckpointer does them instead.
//
// An automatic checkpoint runs inside the commit that crosses 1,000 WAL
// pages and, with synchronous=NORMAL, waits for two fsyncs there. In the
// benchmark's end-to-end scenario (1,000 callbacks/s) that was one commit in
// about 70 taking 2.5 ms on average (up to 9 ms) with every callback behind
// it queued, and it set the p99.
const sqliteDriverName = "sqlite3-paystatus"

var registerDriverOnce sync.Once

// registerSQLiteDriver registers sqliteDriverName with database/sql, once,
// when a SQLite store is first opened.
func registerSQLiteDriver() {
	registerDriverOnce.Do(func() {
		sql.Register(sqliteDriverName, &sqlite3.SQLiteDriver{
			ConnectHook: func(conn *sqlite3.SQLiteConn) error {
				_, err := conn.Exec("PRAGMA wal_autocheckpoint=0", nil)
				return err
			},
		})
	})
}

// checkpointOptions tune the walCheckpointer; zero means the default.
type checkpointOptions struct {
	// Every is the time between checkpoint passes. Default 50 ms.
	//
	// A pass's page writes and fsync run in the kernel on the server's CPU,
	// where (on a kernel without preemption) a request waits them out, so
	// many small passes hold it up less than a few large ones. In seven
	// interleaved pairs of the benchmark's end-to-end scenario, callback to
	// receipt p99 was 0.53–0.86 ms at 50 ms (median 0.67) against
	// 0.73–0.94 ms at 200 ms (median 0.88), for no more server CPU; 1 s
	// was worse still (up to 21 ms at the maximum).
	Every time.Duration
	// CatchUpFrames is the WAL length, in pages, past which a pass runs on
	// the writer's connection instead of beside it. Default 32,768 (128 MiB
	// of WAL with 4 KiB pages; at 1,000 callbacks/s, one such pass every
	// five seconds).
	CatchUpFrames int
}

func (o *checkpointOptions) fillDefaults() {
	if o.Every <= 0 {
		o.Every = 50 * time.Millisecond
	}
	if o.CatchUpFrames <= 0 {
		o.CatchUpFrames = 32768
	}
}

// walCheckpointer copies a SQLite database's WAL back into the database file
// away from the writer, so that writers do not wait for the copy and its
// fsyncs. Its passes run beside the writer on a thread of their own (see
// checkpointThread).
//
// SQLite can only start the WAL over once a checkpoint has copied every
// frame in it, and under a steady stream of commits a pass beside the writer
// never finds the WAL without a newer frame, so the WAL would grow without
// bound. When it passes CatchUpFrames, a pass runs on the writer's
// connection (the store's pool holds one), between two transactions, where
// nothing can be appended until it is done; the next commit then starts the
// WAL over. That pass costs writers one wait per CatchUpFrames pages instead
// of one per 1,000.
type walCheckpointer struct {
	opts   checkpointOptions
	beside *checkpointThread
	writer *sql.DB // the store's pool

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// startCheckpointer starts checkpointing the SQLite database at path, whose
// writers use the pool writer.
func startCheckpointer(path string, writer *sql.DB, opts checkpointOptions) (*walCheckpointer, error) {
	opts.fillDefaults()
	beside, err := startCheckpointThread(path, opts.Every)
	if err != nil {
		return nil, err
	}
	c := &walCheckpointer{opts: opts, beside: beside, writer: writer, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

// run watches the thread's passes and catches up on the writer's
// connection when the WAL has grown past CatchUpFrames.
func (c *walCheckpointer) run() {
	defer close(c.done)
	ticker := time.NewTicker(c.opts.Every)
	defer ticker.Stop()
	var caughtUpAt int64 // the thread's pass count at the last catch-up
	for {
		select {
		case <-c.stop:
			return
		case <-ticker.C:
			// Only a pass made after the last catch-up tells how long the
			// WAL is now. A failed pass (another process checkpointing, a
			// full disk) is retried on the next tick; SQLite checkpoints
			// again on close.
			st, passes, err := c.beside.last()
			if err == nil && passes > caughtUpAt && st.Frames > c.opts.CatchUpFrames {
				_, _ = c.catchUp(context.Background())
				caughtUpAt = passes
			}
		}
	}
}

// walState is what one checkpoint pass saw: the WAL's length in pages and
// how many of them are now in the database file.
type walState struct {
	Frames       int
	Checkpointed int
}

// pass runs one checkpoint beside the writer now and, if the WAL has grown
// past CatchUpFrames, one on the writer's connection.
func (c *walCheckpointer) pass(ctx context.Context) (walState, error) {
	st, err := c.beside.passNow()
	if err == nil && st.Frames > c.opts.CatchUpFrames {
		st, err = c.catchUp(ctx)
	}
	return st, err
}

// catchUp runs a pass on the writer's connection. It blocks in C for the
// pass's fsyncs; the Go runtime hands its P to other goroutines meanwhile,
// and nothing here changes process-wide settings.
func (c *walCheckpointer) catchUp(ctx context.Context) (walState, error) {
	return passiveCheckpoint(ctx, c.writer)
}

// passiveCheckpoint runs PRAGMA wal_checkpoint(PASSIVE) on db. PASSIVE never
// waits for a lock, so neither pass can hold up the other or a writer in
// SQLite's busy handler.
func passiveCheckpoint(ctx context.Context, db *sql.DB) (walState, error) {
	var busy int
	var st walState
	err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &st.Frames, &st.Checkpointed)
	if err != nil {
		return walState{}, fmt.Errorf("wal checkpoint: %w", err)
	}
	return st, nil
}

// close stops the passes and the thread. Safe to call more than once.
func (c *walCheckpointer) close() error {
	var err error
	c.stopOnce.Do(func() {
		close(c.stop)
		<-c.done
		err = c.beside.stop()
	})
	return err
}
