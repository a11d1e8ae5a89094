package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"paystatus/payment"
)

// A groupOp is one change that waits to be committed together with others.
// apply runs it on the group's transaction; if it fails, everything it
// wrote is rolled back and the other changes of the group still commit.
type groupOp struct {
	apply func(ctx context.Context, tx *sql.Tx) error
	// attempts counts the groups the op was applied in; a retryable
	// failure (a lost race on Postgres) puts it back in the queue.
	attempts int

	state atomic.Int32  // opQueued, opTaken or opCancelled
	done  chan struct{} // closed once err is final
	err   error         // written by the committer before done is closed
}

const (
	opQueued int32 = iota
	opTaken
	opCancelled
)

// groupCommitter applies queued changes in groups: one transaction and one
// commit, which on SQLite with synchronous=FULL is one fsync, for all the
// changes that arrived while the previous group was committing, up to
// maxBatch of them. A change waits for at most the group in flight, its own
// group, and the optional linger.
//
// The queue is bounded: a change that finds it full waits, with its
// request's context, for room.
type groupCommitter struct {
	db       *sql.DB
	postgres bool
	maxBatch int
	linger   time.Duration
	// batchTimeout bounds one group's statements on Postgres, where a
	// network round trip can hang.
	batchTimeout time.Duration
	// observe, if set, is told each group's size after its commit.
	observe func(size int)

	slots chan struct{} // one token per queued op: the queue's bound

	mu    sync.Mutex
	queue []*groupOp // guarded by mu
	wake  chan struct{}

	// life ends when close begins; it bounds only the wait for a
	// connection, so the group in flight still commits.
	life     context.Context
	endLife  context.CancelFunc
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newGroupCommitter(db *sql.DB, postgres bool, cfg Config) *groupCommitter {
	g := &groupCommitter{
		db: db, postgres: postgres, maxBatch: cfg.GroupMax, linger: cfg.GroupWait, batchTimeout: 30 * time.Second,
		observe: cfg.observeGroup,
		slots:   make(chan struct{}, cfg.GroupQueue),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}), done: make(chan struct{}),
	}
	g.life, g.endLife = context.WithCancel(context.Background())
	go g.run()
	return g
}

// submit queues apply and waits for its group's commit. If ctx ends while
// the change is still queued, it is dropped and ctx's error returned; once
// its group has started, the caller waits for the outcome, so that a
// change that commits is never reported as failed.
func (g *groupCommitter) submit(ctx context.Context, apply func(context.Context, *sql.Tx) error) error {
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stop:
		return errStoreClosed
	}
	op := &groupOp{apply: apply, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, op)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	select {
	case <-op.done:
		<-g.slots
		return op.err
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opCancelled) {
			<-g.slots
			return ctx.Err()
		}
		<-op.done
		<-g.slots
		return op.err
	case <-g.stop:
		if op.state.CompareAndSwap(opQueued, opCancelled) {
			<-g.slots
			return errStoreClosed
		}
		<-op.done
		<-g.slots
		return op.err
	}
}

func (g *groupCommitter) run() {
	defer close(g.done)
	for {
		select {
		case <-g.stop:
			g.failQueued(errStoreClosed)
			return
		case <-g.wake:
		}
		for g.pending() {
			if !g.commitOne() {
				break
			}
		}
	}
}

// pending reports whether the queue holds anything, cancelled ops included.
func (g *groupCommitter) pending() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue) > 0
}

// take claims up to maxBatch queued ops, in arrival order, dropping
// cancelled ones.
func (g *groupCommitter) take() []*groupOp {
	g.mu.Lock()
	defer g.mu.Unlock()
	var batch []*groupOp
	i := 0
	for ; i < len(g.queue) && len(batch) < g.maxBatch; i++ {
		if op := g.queue[i]; op.state.Load() == opTaken || op.state.CompareAndSwap(opQueued, opTaken) {
			batch = append(batch, op)
		}
	}
	n := copy(g.queue, g.queue[i:])
	clear(g.queue[n:])
	g.queue = g.queue[:n]
	return batch
}

// requeue puts ops back at the front of the queue, still claimed.
func (g *groupCommitter) requeue(ops []*groupOp) {
	if len(ops) == 0 {
		return
	}
	g.mu.Lock()
	g.queue = append(ops, g.queue...)
	g.mu.Unlock()
}

// lingerForMore waits up to the linger for the queue to fill a group.
func (g *groupCommitter) lingerForMore() {
	if g.linger <= 0 {
		return
	}
	deadline := time.Now().Add(g.linger)
	for time.Now().Before(deadline) {
		g.mu.Lock()
		n := len(g.queue)
		g.mu.Unlock()
		if n >= g.maxBatch {
			return
		}
		select {
		case <-g.stop:
			return
		case <-time.After(min(time.Until(deadline), 50*time.Microsecond)):
		}
	}
}

// commitOne commits one group. It returns false when the store is closing.
func (g *groupCommitter) commitOne() bool {
	// The connection is taken before any op is claimed: while it is busy
	// (another node's writer, a checkpoint), queued ops can still give up
	// with their requests.
	ctx := context.Background()
	var cancel context.CancelFunc = func() {}
	if g.postgres {
		ctx, cancel = context.WithTimeout(ctx, g.batchTimeout)
	}
	defer cancel()
	conn, err := g.conn()
	if err != nil {
		if errors.Is(err, errStoreClosed) {
			return false
		}
		// The database refused a connection: every queued op learns it.
		for _, op := range g.take() {
			g.finish(op, fmt.Errorf("begin: %w", err))
		}
		return true
	}
	defer conn.Close()
	g.lingerForMore()
	batch := g.take()
	if len(batch) == 0 {
		return true
	}
	errs, commitErr := g.applyGroup(ctx, conn, batch)
	var retry []*groupOp
	for i, op := range batch {
		err := errs[i]
		if err == nil {
			err = commitErr
		}
		if errors.Is(err, errRetryLater) && op.attempts < maxConflictRetries {
			retry = append(retry, op)
			continue
		}
		if errors.Is(err, errRetryLater) {
			err = payment.ErrConflict
		}
		g.finish(op, err)
	}
	if commitErr == nil && g.observe != nil {
		g.observe(len(batch))
	}
	g.requeue(retry)
	return true
}

// conn waits for a connection, giving up when the store closes.
func (g *groupCommitter) conn() (*sql.Conn, error) {
	conn, err := g.db.Conn(g.life)
	if err != nil && g.life.Err() != nil {
		return nil, errStoreClosed
	}
	return conn, err
}

// applyGroup runs batch in one transaction and commits it. errs[i] is op
// i's own failure; commitErr, if set, applies to every op without one. A
// lone op runs without a savepoint: its failure rolls back the transaction,
// which holds nothing else.
func (g *groupCommitter) applyGroup(ctx context.Context, conn *sql.Conn, batch []*groupOp) (errs []error, commitErr error) {
	errs = make([]error, len(batch))
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return errs, fmt.Errorf("begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	if len(batch) == 1 {
		batch[0].attempts++
		if errs[0] = batch[0].apply(ctx, tx); errs[0] != nil {
			return errs, nil
		}
	} else {
		applied := 0
		for i, op := range batch {
			op.attempts++
			if _, err := tx.ExecContext(ctx, "SAVEPOINT grouped_change"); err != nil {
				return errs, fmt.Errorf("savepoint: %w", err)
			}
			if errs[i] = op.apply(ctx, tx); errs[i] != nil {
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT grouped_change"); err != nil {
					return errs, fmt.Errorf("rollback to savepoint: %w", err)
				}
			} else {
				applied++
			}
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT grouped_change"); err != nil {
				return errs, fmt.Errorf("release savepoint: %w", err)
			}
		}
		if applied == 0 {
			return errs, nil
		}
	}
	if err := tx.Commit(); err != nil {
		return errs, fmt.Errorf("commit: %w", err)
	}
	committed = true
	return errs, nil
}

func (g *groupCommitter) finish(op *groupOp, err error) {
	op.err = err
	close(op.done)
}

// failQueued ends every op still queued with err.
func (g *groupCommitter) failQueued(err error) {
	g.mu.Lock()
	queue := g.queue
	g.queue = nil
	g.mu.Unlock()
	for _, op := range queue {
		if op.state.Load() == opTaken || op.state.CompareAndSwap(opQueued, opTaken) {
			g.finish(op, err)
		}
	}
}

// close stops the committer after the group in flight. Safe to call more
// than once.
func (g *groupCommitter) close() {
	g.stopOnce.Do(func() {
		close(g.stop)
		g.endLife()
		<-g.done
	})
}
