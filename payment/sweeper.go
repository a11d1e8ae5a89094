package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// LifecycleStore is what the end of an order's life needs from storage,
// beside Store: expiring orders past their window, purging old terminal
// ones, and counting recent creations. sqlstore.Store implements it.
type LifecycleStore interface {
	// ExpireDue moves up to limit orders that are pending or processing and
	// whose deadline is at or before now to expired, oldest deadline first,
	// each with the next seq and a status event. Each move is guarded on
	// the seq read, so with several nodes sweeping one database exactly one
	// applies it. It returns the changes it committed. An order whose write
	// fails is left as it was and reported with ErrExpirySkipped, beside the
	// changes committed for the others. It must not scan orders that are
	// terminal. The changes are appended to dst, which a sweep reuses from
	// one batch to the next.
	ExpireDue(ctx context.Context, now time.Time, limit int, dst []StatusChange) ([]StatusChange, error)
	// AssignMissingDeadlines gives every open order that has no deadline
	// (stored by a version without payment windows) the deadline given,
	// and returns how many it changed.
	AssignMissingDeadlines(ctx context.Context, deadline time.Time) (int64, error)
	// PurgeTerminal deletes up to limit orders in a terminal status that
	// were created before cutoff, with their events, and returns how many
	// orders it deleted.
	PurgeTerminal(ctx context.Context, cutoff time.Time, limit int) (int, error)
	// CountCreatedSince counts the orders created at or after since.
	CountCreatedSince(ctx context.Context, since time.Time) (int64, error)
}

// SweepObserver is told what the sweep does, for metrics. Its methods must
// not block.
type SweepObserver interface {
	OrderExpired(StatusChange)
	OrdersPurged(n int)
	SweepFailed(op string)
}

// SweepConfig tunes the Sweeper. Zero fields mean the defaults.
type SweepConfig struct {
	// Every is the pause between sweeps for due orders (1 s). An order
	// expires within about this long after its deadline.
	Every time.Duration
	// Batch is how many orders one store call expires before they are
	// announced (50). Without group commit it is one transaction; with
	// it, the store splits it into chunks that share groups with other
	// changes.
	Batch int
	// Retention is how long a terminal order is kept after its creation
	// (30 days); negative keeps orders forever.
	Retention time.Duration
	// PurgeEvery is the pause between purges of expired history (1 min).
	PurgeEvery time.Duration
	// PurgeBatch is how many orders one purge transaction deletes (100).
	PurgeBatch int
	Observer   SweepObserver
	Logger     *slog.Logger
}

// Sweep defaults.
const (
	DefaultSweepEvery     = time.Second
	DefaultSweepBatch     = 50
	DefaultRetention      = 30 * 24 * time.Hour
	DefaultPurgeEvery     = time.Minute
	DefaultPurgeBatch     = 100
	maxSweepBatch         = 10000
	sweepOperationTimeout = 30 * time.Second
)

// Validate fills in defaults and refuses settings that cannot work.
func (c SweepConfig) Validate() (SweepConfig, error) {
	if c.Every < 0 || c.PurgeEvery < 0 || c.Batch < 0 || c.PurgeBatch < 0 {
		return c, fmt.Errorf("%w: sweep settings must be positive", ErrInvalidWindow)
	}
	if c.Every == 0 {
		c.Every = DefaultSweepEvery
	}
	if c.Batch == 0 {
		c.Batch = DefaultSweepBatch
	}
	if c.Batch > maxSweepBatch || c.PurgeBatch > maxSweepBatch {
		return c, fmt.Errorf("%w: sweep batches are limited to %d orders", ErrInvalidWindow, maxSweepBatch)
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.PurgeEvery == 0 {
		c.PurgeEvery = DefaultPurgeEvery
	}
	if c.PurgeBatch == 0 {
		c.PurgeBatch = DefaultPurgeBatch
	}
	if c.Observer == nil {
		c.Observer = noSweepObserver{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

type noSweepObserver struct{}

func (noSweepObserver) OrderExpired(StatusChange) {}
func (noSweepObserver) OrdersPurged(int)          {}
func (noSweepObserver) SweepFailed(string)        {}

// Sweeper ends orders whose window has passed and purges old terminal
// orders. Deadlines live in the store, so a node that restarts inside a
// window still expires the order, and every node of a fleet may run one:
// the store's guarded update lets one node apply each expiry, and the
// Service announces it through the same path as any other change.
type Sweeper struct {
	cfg   SweepConfig
	store LifecycleStore
	svc   *Service
}

// NewSweeper builds a sweeper over store, announcing through svc.
func NewSweeper(store LifecycleStore, svc *Service, cfg SweepConfig) (*Sweeper, error) {
	if store == nil || svc == nil {
		return nil, errors.New("sweeper needs a store and a service")
	}
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	return &Sweeper{cfg: cfg, store: store, svc: svc}, nil
}

// Config returns the effective configuration.
func (w *Sweeper) Config() SweepConfig { return w.cfg }

// Run sweeps until ctx ends. Failures are logged and retried at the next
// tick; they never end the loop.
func (w *Sweeper) Run(ctx context.Context) error {
	w.adoptLegacyOrders(ctx)
	tick := time.NewTicker(w.cfg.Every)
	defer tick.Stop()
	nextPurge := time.Now()
	for {
		if _, err := w.ExpireDue(ctx); err != nil && ctx.Err() == nil {
			w.cfg.Observer.SweepFailed("expire")
			w.cfg.Logger.Warn("expiry sweep failed; retrying at the next tick", "error", err)
		}
		if w.cfg.Retention > 0 && !time.Now().Before(nextPurge) {
			nextPurge = time.Now().Add(w.cfg.PurgeEvery)
			if _, err := w.Purge(ctx); err != nil && ctx.Err() == nil {
				w.cfg.Observer.SweepFailed("purge")
				w.cfg.Logger.Warn("purge of old orders failed; retrying later", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// adoptLegacyOrders gives open orders stored without a deadline the
// default window, counted from now, so that they too end.
func (w *Sweeper) adoptLegacyOrders(ctx context.Context) {
	opCtx, cancel := context.WithTimeout(ctx, sweepOperationTimeout)
	defer cancel()
	n, err := w.store.AssignMissingDeadlines(opCtx, time.Now().Add(w.svc.Window().TTL))
	switch {
	case err != nil && ctx.Err() == nil:
		w.cfg.Observer.SweepFailed("adopt")
		w.cfg.Logger.Warn("could not give open orders without a deadline one", "error", err)
	case n > 0:
		w.cfg.Logger.Info("gave open orders without a deadline the default payment window", "orders", n, "window", w.svc.Window().TTL)
	}
}

// ExpireDue expires every order now past its deadline, a batch per
// transaction, announcing each change after its batch commits. It stops
// when a batch expires nothing: what is left, if anything, another node
// is expiring.
func (w *Sweeper) ExpireDue(ctx context.Context) (int, error) {
	total := 0
	var skipped error
	var buf []StatusChange // announced by value, so each batch may reuse it
	for ctx.Err() == nil {
		opCtx, cancel := context.WithTimeout(ctx, sweepOperationTimeout)
		changes, err := w.store.ExpireDue(opCtx, time.Now(), w.cfg.Batch, buf[:0])
		cancel()
		buf = changes
		// Changes reported beside an error were committed all the same.
		for _, c := range changes {
			w.svc.announceStatus(c)
			w.cfg.Observer.OrderExpired(c)
		}
		total += len(changes)
		switch {
		case errors.Is(err, ErrExpirySkipped) && len(changes) > 0:
			skipped = err // the others moved on: keep going, report it at the end
		case err != nil:
			return total, err
		}
		if len(changes) == 0 {
			break
		}
	}
	return total, skipped
}

// Purge deletes terminal orders older than the retention, a batch per
// transaction. It does nothing when orders are kept forever.
func (w *Sweeper) Purge(ctx context.Context) (int, error) {
	if w.cfg.Retention <= 0 {
		return 0, nil
	}
	total := 0
	for ctx.Err() == nil {
		opCtx, cancel := context.WithTimeout(ctx, sweepOperationTimeout)
		n, err := w.store.PurgeTerminal(opCtx, time.Now().Add(-w.cfg.Retention), w.cfg.PurgeBatch)
		cancel()
		if err != nil {
			return total, err
		}
		if n > 0 {
			w.cfg.Observer.OrdersPurged(n)
		}
		total += n
		if n < w.cfg.PurgeBatch {
			break
		}
	}
	return total, nil
}

// CreationQuota caps how many orders may be created per period. It counts
// the orders in the store, so every node of a fleet shares one cap and a
// restart forgets nothing; between counts a node adds its own creations.
// Other nodes' creations since the last count are not seen, so a fleet can
// overshoot by what they create within quotaRecount.
type CreationQuota struct {
	max    int64
	period time.Duration
	store  LifecycleStore

	mu        sync.Mutex
	counted   int64     // orders in the period at countedAt; guarded by mu
	countedAt time.Time // guarded by mu
	local     int64     // created here since countedAt; guarded by mu
}

// quotaRecount is how old a count may get before it is taken again; a
// refusal always rests on a count at most quotaRecheck old.
const (
	quotaRecount = 5 * time.Second
	quotaRecheck = time.Second
)

// NewCreationQuota allows max orders per period; max must be positive.
func NewCreationQuota(store LifecycleStore, max int64, period time.Duration) (*CreationQuota, error) {
	if store == nil || max <= 0 || period <= 0 {
		return nil, fmt.Errorf("%w: a creation quota needs a store, a positive cap and a period", ErrInvalidOrder)
	}
	return &CreationQuota{max: max, period: period, store: store}, nil
}

// Reserve takes one creation from the quota, or returns ErrQuotaExceeded.
func (q *CreationQuota) Reserve(ctx context.Context) error {
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	stale := q.countedAt.IsZero() || now.Sub(q.countedAt) >= quotaRecount
	full := q.counted+q.local >= q.max
	if stale || (full && now.Sub(q.countedAt) >= quotaRecheck) {
		n, err := q.store.CountCreatedSince(ctx, now.Add(-q.period))
		if err != nil {
			return fmt.Errorf("count recent orders: %w", err)
		}
		q.counted, q.countedAt, q.local = n, now, 0
	}
	if q.counted+q.local >= q.max {
		per := q.period.String()
		if q.period == time.Hour {
			per = "hour"
		}
		return fmt.Errorf("%w: at most %d orders may be created per %s", ErrQuotaExceeded, q.max, per)
	}
	q.local++
	return nil
}

// Max is the cap, for error messages.
func (q *CreationQuota) Max() int64 { return q.max }
