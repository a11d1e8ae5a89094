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
	apply func(ctx context.Context, tx writeTx) error
	// attempts counts the groups the op was applied in; a retryable
	// failure (a lost race on Postgres) puts it back in the queue.
	attempts int
	// background marks work that may wait (expiry chunks): a group takes
	// at most one, after the interactive changes.
	background bool
	// queued is when a background op was queued: past backgroundMaxDefer
	// it joins a group even with interactive changes.
	queued time.Time

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
// maxBatch of them. A change that arrives while a group's statements run
// joins that group before its commit; one that arrives during the commit
// waits for it, then for its own group and the optional linger.
//
// Background work (expiry chunks) queues apart and takes the time that
// interactive changes leave: a group with interactive changes queued takes
// those (up to maxBatch) and no background op, unless the first background
// op has waited backgroundMaxDefer, when it joins them. So an interactive
// change usually commits without a background op, waits behind at most
// one, and background work always progresses, however busy the queue.
//
// There is no committer goroutine: the first waiting caller to take the
// leader token commits groups until its own change is done, then hands the
// token on. A lone change is thus committed by its own goroutine, with no
// hand-off to another. The queue is bounded: a change that finds it full
// waits, with its request's context, for room.
type groupCommitter struct {
	db       *sql.DB
	postgres bool
	maxBatch int
	linger   time.Duration
	// batchTimeout bounds one group's statements on Postgres, where a
	// network round trip can hang.
	batchTimeout time.Duration
	// observe, if set, is told each group's size after its commit.
	observe func(size, background int)

	slots  chan struct{} // one token per queued op: the queue's bound
	leader chan struct{} // capacity 1: held by the goroutine committing groups

	mu         sync.Mutex
	queue      []*groupOp // interactive changes; guarded by mu
	background []*groupOp // background ops, unbounded by slots; guarded by mu

	stop     chan struct{} // closed when close begins
	life     context.Context
	endLife  context.CancelFunc // called when close begins
	stopOnce sync.Once
}

func newGroupCommitter(db *sql.DB, postgres bool, cfg Config) *groupCommitter {
	life, endLife := context.WithCancel(context.Background())
	return &groupCommitter{
		life: life, endLife: endLife,
		db: db, postgres: postgres, maxBatch: cfg.GroupMax, linger: cfg.GroupWait, batchTimeout: 30 * time.Second,
		observe: cfg.observeGroup,
		slots:   make(chan struct{}, cfg.GroupQueue),
		leader:  make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
}

// submit queues apply and waits for its group's commit. If ctx ends while
// the change is still queued, it is dropped and ctx's error returned; once
// its group has started, the caller waits for the outcome, so that a
// change that commits is never reported as failed.
func (g *groupCommitter) submit(ctx context.Context, apply func(context.Context, writeTx) error) error {
	select {
	case <-g.stop:
		return errStoreClosed
	default:
	}
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stop:
		return errStoreClosed
	}
	defer func() { <-g.slots }()
	op := &groupOp{apply: apply, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, op)
	g.mu.Unlock()
	return g.await(ctx, op)
}

// submitBackground is submit for work that may wait: op joins a group only
// after the interactive changes queued before that group starts, one
// background op per group. It takes no queue slot: its callers (one sweep
// per store) wait for each op before queueing the next.
func (g *groupCommitter) submitBackground(ctx context.Context, apply func(context.Context, writeTx) error) error {
	select {
	case <-g.stop:
		return errStoreClosed
	default:
	}
	op := &groupOp{apply: apply, background: true, queued: time.Now(), done: make(chan struct{})}
	g.mu.Lock()
	g.background = append(g.background, op)
	g.mu.Unlock()
	return g.await(ctx, op)
}

// await waits for op's outcome, leading groups when no one else is.
func (g *groupCommitter) await(ctx context.Context, op *groupOp) error {
	// Once op is claimed, neither its request's end nor close may abandon
	// it: the caller must learn whether it committed. A claimed op is either
	// in a leader's group or back in the queue for a retry, where the next
	// leader (perhaps this caller) takes it.
	ctxDone, stop := ctx.Done(), g.stop
	for {
		select {
		case <-op.done:
			return op.err
		case g.leader <- struct{}{}:
			err := g.lead(ctx, op)
			<-g.leader
			return err
		case <-ctxDone:
			if op.state.CompareAndSwap(opQueued, opCancelled) {
				return ctx.Err()
			}
			ctxDone, ctx = nil, context.WithoutCancel(ctx)
		case <-stop:
			if op.state.CompareAndSwap(opQueued, opCancelled) {
				return errStoreClosed
			}
			stop = nil
		}
	}
}

// lead commits groups, holding the leader token, until op is done, and
// returns op's outcome.
func (g *groupCommitter) lead(ctx context.Context, op *groupOp) error {
	for {
		select {
		case <-op.done:
			return op.err
		default:
		}
		select {
		case <-g.stop:
			if op.state.CompareAndSwap(opQueued, opCancelled) {
				return errStoreClosed
			}
			g.failQueued(errStoreClosed)
			<-op.done
			return op.err
		default:
		}
		if err := g.commitOne(ctx); err != nil {
			// The leader's request ended, or the store closed, while it waited
			// for a connection; nothing was claimed. If op was claimed before
			// (it is back in the queue for a retry), keep leading until it is
			// done.
			if op.state.CompareAndSwap(opQueued, opCancelled) {
				return err
			}
			ctx = context.WithoutCancel(ctx)
		}
	}
}

// backgroundMaxDefer is how long a background op gives way to interactive
// changes before it joins their group.
const backgroundMaxDefer = 10 * time.Millisecond

// take claims up to maxBatch queued interactive ops, in arrival order,
// dropping cancelled ones. It adds one background op when there are no
// interactive ops, or when the first background op has waited
// backgroundMaxDefer: that one joins even a full group, so that a steady
// stream of interactive changes cannot starve it.
func (g *groupCommitter) take() []*groupOp {
	g.mu.Lock()
	defer g.mu.Unlock()
	batch := claim(&g.queue, nil, g.maxBatch)
	if len(batch) > 0 && len(g.background) > 0 && time.Since(g.background[0].queued) < backgroundMaxDefer {
		return batch
	}
	return claim(&g.background, batch, len(batch)+1)
}

// claim moves ops from the front of *queue to batch until batch holds
// limit, skipping cancelled ones.
func claim(queue *[]*groupOp, batch []*groupOp, limit int) []*groupOp {
	q := *queue
	i := 0
	for ; i < len(q) && len(batch) < limit; i++ {
		if op := q[i]; op.state.Load() == opTaken || op.state.CompareAndSwap(opQueued, opTaken) {
			batch = append(batch, op)
		}
	}
	n := copy(q, q[i:])
	clear(q[n:])
	*queue = q[:n]
	return batch
}

// requeue puts ops back at the front of their queues, still claimed.
func (g *groupCommitter) requeue(ops []*groupOp) {
	if len(ops) == 0 {
		return
	}
	var interactive, background []*groupOp
	for _, op := range ops {
		if op.background {
			background = append(background, op)
		} else {
			interactive = append(interactive, op)
		}
	}
	g.mu.Lock()
	g.queue = append(interactive, g.queue...)
	g.background = append(background, g.background...)
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

// commitOne commits one group. It returns an error only when waitCtx (the
// leader's request) or the store ended while it waited for a connection;
// a failure of the group itself is reported to the group's ops.
func (g *groupCommitter) commitOne(waitCtx context.Context) error {
	// The connection is taken before any op is claimed: while it is busy
	// (another node's writer, a checkpoint), queued ops can still give up
	// with their requests.
	conn, err := g.conn(waitCtx)
	if err != nil {
		if waitCtx.Err() != nil {
			return waitCtx.Err()
		}
		if g.life.Err() != nil {
			return errStoreClosed
		}
		// The database refused a connection: every queued op learns it.
		for _, op := range g.take() {
			g.finish(op, fmt.Errorf("begin: %w", err))
		}
		return nil
	}
	defer conn.Close()
	g.lingerForMore()
	batch := g.take()
	if len(batch) == 0 {
		return nil
	}
	// Statements run detached from any one request: the group is shared, and
	// a commit once started is better finished. On Postgres a timeout still
	// bounds a round trip that hangs.
	ctx := context.Background()
	if g.postgres {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.batchTimeout)
		defer cancel()
	}
	batch, errs, commitErr := g.applyGroup(ctx, conn, batch)
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
		background := 0
		for _, op := range batch {
			if op.background {
				background++
			}
		}
		g.observe(len(batch), background)
	}
	g.requeue(retry)
	return nil
}

// conn waits for a connection for as long as ctx lasts and the store is
// open.
func (g *groupCommitter) conn(ctx context.Context) (*sql.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	unwatch := context.AfterFunc(g.life, cancel)
	defer unwatch()
	return g.db.Conn(ctx)
}

// applyGroup runs batch in one transaction and commits it. Before the
// commit it tops the group up with the interactive changes that arrived
// while its statements ran, so that they share its fsync instead of waiting
// for it and then for one of their own; it returns the group so extended.
// errs[i] is op i's own failure; commitErr, if set, applies to every op
// without one. A lone op runs without a savepoint: its failure rolls back
// the transaction, which then holds nothing else.
func (g *groupCommitter) applyGroup(ctx context.Context, conn *sql.Conn, batch []*groupOp) (group []*groupOp, errs []error, commitErr error) {
	errs = make([]error, len(batch))
	sqlTx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return batch, errs, fmt.Errorf("begin: %w", err)
	}
	tx := writeTx{Tx: sqlTx}
	if !g.postgres {
		tx.conn = conn
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	applied := 0
	if len(batch) == 1 {
		batch[0].attempts++
		if errs[0] = batch[0].apply(ctx, tx); errs[0] != nil {
			return batch, errs, nil
		}
		applied = 1
	} else {
		n, err := applySaved(ctx, tx, batch, errs)
		if err != nil {
			return batch, errs, err
		}
		applied = n
	}
	if applied > 0 {
		if more := g.topUp(len(batch)); len(more) > 0 {
			batch = append(batch, more...)
			errs = append(errs, make([]error, len(more))...)
			n, err := applySaved(ctx, tx, more, errs[len(errs)-len(more):])
			if err != nil {
				return batch, errs, err
			}
			applied += n
		}
	}
	if applied == 0 {
		return batch, errs, nil
	}
	if err := tx.Commit(); err != nil {
		return batch, errs, fmt.Errorf("commit: %w", err)
	}
	committed = true
	return batch, errs, nil
}

// applySaved applies ops on tx, each under a savepoint of its own, writing
// op i's failure to errs[i], and returns how many succeeded. err is a
// failure of the savepoints themselves, which leaves tx unusable.
func applySaved(ctx context.Context, tx writeTx, ops []*groupOp, errs []error) (applied int, err error) {
	for i, op := range ops {
		op.attempts++
		if _, err := tx.ExecContext(ctx, "SAVEPOINT grouped_change"); err != nil {
			return applied, fmt.Errorf("savepoint: %w", err)
		}
		if errs[i] = op.apply(ctx, tx); errs[i] != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT grouped_change"); err != nil {
				return applied, fmt.Errorf("rollback to savepoint: %w", err)
			}
		} else {
			applied++
		}
		if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT grouped_change"); err != nil {
			return applied, fmt.Errorf("release savepoint: %w", err)
		}
	}
	return applied, nil
}

// topUp claims the interactive ops queued since a group of size n was
// taken, up to maxBatch in all. Background ops never join this way.
func (g *groupCommitter) topUp(n int) []*groupOp {
	if n >= g.maxBatch {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return claim(&g.queue, nil, g.maxBatch-n)
}

// interactiveWaiting reports whether an interactive change is queued: a
// background op checks it to give way early (see Store.ExpireDue).
func (g *groupCommitter) interactiveWaiting() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue) > 0
}

func (g *groupCommitter) finish(op *groupOp, err error) {
	op.err = err
	close(op.done)
}

// failQueued ends every op still queued with err.
func (g *groupCommitter) failQueued(err error) {
	g.mu.Lock()
	queue := append(g.queue, g.background...)
	g.queue, g.background = nil, nil
	g.mu.Unlock()
	for _, op := range queue {
		if op.state.Load() == opTaken || op.state.CompareAndSwap(opQueued, opTaken) {
			g.finish(op, err)
		}
	}
}

// close fails changes that are queued and not yet in a group, after the
// group in flight. Safe to call more than once.
func (g *groupCommitter) close() {
	g.stopOnce.Do(func() {
		close(g.stop)
		g.endLife()
		g.leader <- struct{}{} // waits out a leader's group
		g.failQueued(errStoreClosed)
		<-g.leader
	})
}
