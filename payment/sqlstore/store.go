// Package sqlstore is the payment domain's Store on SQL databases: an
// embedded SQLite file or a shared Postgres. It owns the schema, the SQL of
// a transition and SQLite's tuning; the payment package owns the rules.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"paystatus/payment"
)

// Store persists orders and their event log in a SQL database. It
// implements payment.Store: a change is reported done only once it is
// durable (see Config).
type Store struct {
	db       *gorm.DB
	sqlDB    *sql.DB
	stmts    *writeStatements
	expiry   *expiryStatements
	postgres bool
	// group applies changes together in one transaction; nil when group
	// commit is off.
	group *groupCommitter
	// expiryChunk is how many orders one grouped expiry op moves.
	expiryChunk int
	// giveWay tells a grouped expiry chunk to stop early: an interactive
	// change is waiting (groupCommitter.interactiveWaiting).
	giveWay   func() bool
	closeOnce sync.Once
	closeErr  error
}

var _ payment.Store = (*Store)(nil)

// maxPostgresConns caps one node's connections to Postgres.
const maxPostgresConns = 20

// GroupMode says whether changes are committed in groups.
type GroupMode string

const (
	// GroupAuto groups on SQLite, where each commit is an fsync the store
	// waits for, and not on Postgres, whose concurrent commits already
	// share WAL flushes (see docs/storage.md). The default.
	GroupAuto GroupMode = "auto"
	GroupOn   GroupMode = "on"
	GroupOff  GroupMode = "off"
)

// Config is the store's configuration; zero fields mean their defaults.
type Config struct {
	// URL is a postgres:// or postgresql:// URL, or a SQLite file path
	// (optionally sqlite://path), created with its folder if missing.
	URL string
	// GroupCommit is auto (default), on or off.
	GroupCommit GroupMode
	// GroupMax caps the changes in one group; zero means DefaultGroupMax.
	GroupMax int
	// GroupWait is how long a group's first change waits for others to
	// join it before the group starts (default 0: a group holds what
	// arrived while the previous one committed). Validation refuses more
	// than MaxGroupWait.
	GroupWait time.Duration
	// GroupExpiryMax caps the expiries in one group (default 32): a
	// callback waits behind at most this many, and shares its group with
	// at most this many when the sweep has given way to callbacks for long.
	GroupExpiryMax int
	// GroupQueue bounds the changes waiting for a group (default 4096); a
	// change that finds it full waits with its request's context.
	GroupQueue int
	// SQLiteVFS names the SQLite VFS to open the file through; empty is
	// SQLite's default. Tests use it to trace fsyncs.
	SQLiteVFS string

	// synchronous overrides PRAGMA synchronous on SQLite, for the test that
	// shows a weaker setting is caught. Empty means FULL.
	synchronous string
	// observeGroup, if set, is told each committed group's size and how
	// many of its ops are background ones.
	observeGroup func(size, background int)
}

const (
	// DefaultGroupMax is Config.GroupMax's default.
	DefaultGroupMax = 64
	// MaxGroupWait bounds Config.GroupWait: a longer linger would be a delay
	// added to every acknowledgement, not a grouping window.
	MaxGroupWait = 10 * time.Millisecond
)

func (c Config) withDefaults() (Config, error) {
	switch c.GroupCommit {
	case "":
		c.GroupCommit = GroupAuto
	case GroupAuto, GroupOn, GroupOff:
	default:
		return c, fmt.Errorf("%w: group commit %q is not auto, on or off", ErrConfig, c.GroupCommit)
	}
	if c.GroupMax < 0 || c.GroupQueue < 0 || c.GroupWait < 0 || c.GroupExpiryMax < 0 {
		return c, fmt.Errorf("%w: negative group commit setting", ErrConfig)
	}
	if c.GroupWait > MaxGroupWait {
		return c, fmt.Errorf("%w: group commit wait %s is above %s", ErrConfig, c.GroupWait, MaxGroupWait)
	}
	if c.GroupMax == 0 {
		c.GroupMax = DefaultGroupMax
	}
	if c.GroupExpiryMax == 0 {
		c.GroupExpiryMax = 32
	}
	if c.GroupQueue == 0 {
		c.GroupQueue = 4096
	}
	switch c.synchronous {
	case "":
		c.synchronous = "FULL"
	case "OFF", "NORMAL", "FULL", "EXTRA":
	default:
		return c, fmt.Errorf("%w: synchronous %q", ErrConfig, c.synchronous)
	}
	return c, nil
}

// Open opens the database named by url with the default configuration.
func Open(ctx context.Context, url string) (*Store, error) {
	return New(ctx, Config{URL: url})
}

// New opens the database cfg names. Migrations run before it returns.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// Several processes opening a fresh SQLite file together race to switch
	// it to WAL, and the loser gets SQLITE_BUSY straight away: busy_timeout
	// does not cover that step. Retrying is safe because nothing was written.
	deadline := time.Now().Add(sqliteOpenRetryFor)
	for backoff := 5 * time.Millisecond; ; backoff = min(2*backoff, 200*time.Millisecond) {
		s, err := openStore(ctx, cfg)
		if err == nil || !isSQLiteBusy(err) || time.Now().After(deadline) {
			return s, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("open database: %w", ctx.Err())
		case <-time.After(backoff):
		}
	}
}

// sqliteOpenRetryFor bounds how long Open retries a busy SQLite file.
const sqliteOpenRetryFor = 10 * time.Second

// isSQLiteBusy reports whether err is SQLite's "database is locked".
func isSQLiteBusy(err error) bool {
	var sqliteErr sqlite3.Error
	return errors.As(err, &sqliteErr) && (sqliteErr.Code == sqlite3.ErrBusy || sqliteErr.Code == sqlite3.ErrLocked)
}

// IsPostgresURL reports whether url selects Postgres.
func IsPostgresURL(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

func openStore(ctx context.Context, cfg Config) (*Store, error) {
	var dialector gorm.Dialector
	var sqliteDSN string
	var sqlitePool *sql.DB
	isPostgres := IsPostgresURL(cfg.URL)
	if isPostgres {
		dialector = postgres.Open(cfg.URL)
	} else {
		path := strings.TrimPrefix(cfg.URL, "sqlite://")
		if path == "" {
			return nil, errors.New("empty database path")
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("create database folder: %w", err)
			}
		}
		// Immediate transactions take the write lock at BEGIN, so concurrent
		// writers queue on busy_timeout instead of failing mid-transaction.
		// synchronous=FULL makes every commit wait for the WAL's fsync: in
		// WAL mode NORMAL syncs only at checkpoints, so an acknowledged
		// change could be lost with the machine.
		sqliteDSN = "file:" + path + "?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate&_synchronous=" + cfg.synchronous
		vfs, err := walWrites(cfg.SQLiteVFS)
		if err != nil {
			return nil, err
		}
		sqliteDSN += "&vfs=" + vfs
		// SQLite's automatic checkpoints (every 1,000 WAL pages, inside the
		// commit that crosses them) keep the WAL bounded; with durable commits
		// they held up writers less than a checkpoint thread beside them did
		// (docs/storage.md).
		// Commits run on a C thread of the connection's own (commitoffp.go).
		sqlitePool = sql.OpenDB(&sqliteConnector{dsn: sqliteDSN, driver: &sqlite3.SQLiteDriver{ConnectHook: tuneSQLiteConn}})
		dialector = sqlite.New(sqlite.Config{Conn: sqlitePool})
	}
	db, err := gorm.Open(dialector, &gorm.Config{Logger: logger.Discard, TranslateError: true, PrepareStmt: true})
	if err != nil {
		if sqlitePool != nil {
			_ = sqlitePool.Close()
		}
		return nil, fmt.Errorf("open database: %w", err)
	}
	if sqlDB, err := db.DB(); err == nil {
		if isPostgres {
			// Postgres's max_connections is shared by every node; a bounded pool
			// makes a burst of requests queue here instead of being refused.
			sqlDB.SetMaxOpenConns(maxPostgresConns)
			sqlDB.SetMaxIdleConns(maxPostgresConns / 2)
		} else {
			// SQLite has one writer. One connection makes writers queue in Go's
			// pool rather than spin on busy_timeout, which a burst can outlast,
			// failing callbacks with "database is locked".
			sqlDB.SetMaxOpenConns(1)
		}
	}
	s := &Store{db: db, postgres: isPostgres}
	if isPostgres {
		if err := checkSynchronousCommit(ctx, db); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	if s.sqlDB, err = db.DB(); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	if s.stmts, err = prepareWrites(ctx, s.sqlDB, isPostgres); err != nil {
		_ = s.Close()
		return nil, err
	}
	if cfg.GroupCommit == GroupOn || (cfg.GroupCommit == GroupAuto && !isPostgres) {
		s.group = newGroupCommitter(s.sqlDB, isPostgres, cfg)
		s.expiryChunk = cfg.GroupExpiryMax
		s.giveWay = s.group.interactiveWaiting
	}
	if s.expiry, err = prepareExpiry(ctx, s.sqlDB, s.query, isPostgres); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// tuneSQLiteConn keeps statement journals in memory. Every grouped change
// and expiry chunk runs under a savepoint, whose journal of original pages
// would otherwise spill to a temporary file: a write(2) per page and per
// page number, on top of the WAL's own. It holds only this transaction's
// pages and is dropped at its end.
func tuneSQLiteConn(conn *sqlite3.SQLiteConn) error {
	if _, err := conn.Exec("PRAGMA temp_store = MEMORY", nil); err != nil {
		return fmt.Errorf("set temp_store: %w", err)
	}
	return nil
}

// checkSynchronousCommit refuses a Postgres session whose commits return
// before their WAL is flushed: synchronous_commit=off, set for the server,
// the database, the role or in the URL, would let an acknowledged change be
// lost with the server.
func checkSynchronousCommit(ctx context.Context, db *gorm.DB) error {
	var setting string
	if err := db.WithContext(ctx).Raw("SHOW synchronous_commit").Scan(&setting).Error; err != nil {
		return fmt.Errorf("read synchronous_commit: %w", err)
	}
	if strings.EqualFold(setting, "off") {
		return fmt.Errorf("%w: Postgres synchronous_commit is off, so a commit could be acknowledged before it is durable", ErrConfig)
	}
	return nil
}

// migrate creates or updates the schema. On Postgres an advisory lock makes
// nodes that start together take turns.
func (s *Store) migrate(ctx context.Context) error {
	db := s.db.WithContext(ctx)
	if !s.postgres {
		// The immediate transaction holds SQLite's write lock, so processes
		// opening one file together do not both try CREATE TABLE.
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := createEventsTable(tx); err != nil {
				return err
			}
			if err := tx.AutoMigrate(&orderRow{}, &eventRow{}); err != nil {
				return err
			}
			rebuilt, err := dropEventsAutoincrement(tx)
			if err != nil {
				return err
			}
			if rebuilt { // the rebuilt table has no indexes yet
				if err := tx.AutoMigrate(&eventRow{}); err != nil {
					return err
				}
			}
			if err := createIndexes(tx); err != nil {
				return err
			}
			if err := createDedupIndex(tx); err != nil {
				return err
			}
			return dropUnusedIndexes(tx)
		})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte("paystatus-migrate"))
	key := int64(h.Sum64() >> 1)
	return db.Connection(func(conn *gorm.DB) error {
		if err := conn.Exec("SELECT pg_advisory_lock(?)", key).Error; err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer conn.Exec("SELECT pg_advisory_unlock(?)", key)
		if err := conn.AutoMigrate(&orderRow{}, &eventRow{}); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if err := createIndexes(conn); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if err := createDedupIndex(conn); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if err := dropUnusedIndexes(conn); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		return nil
	})
}

// dropUnusedIndexes removes indexes that earlier versions created and that
// no query uses. AutoMigrate adds indexes but never drops one.
//
// idx_orders_status: no query reads it, yet every status change rewrote its
// entry inside the transition's transaction.
// idx_payment_events_dedup_key: the full index on dedup_key, replaced by
// the partial dedupKeyIndexName, which migrate creates first so that keys
// stay unique throughout.
func dropUnusedIndexes(db *gorm.DB) error {
	for _, name := range []string{"idx_orders_status", "idx_payment_events_dedup_key"} {
		if err := db.Exec("DROP INDEX IF EXISTS " + name).Error; err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
	}
	return nil
}

// sqliteEventsTable is payment_events on SQLite, as GORM would declare it
// but without AUTOINCREMENT: id is still the rowid, and a new event takes
// the largest id plus one. AUTOINCREMENT also never reuses the id of a
// deleted event, which nothing here needs, at the cost of a write to
// sqlite_sequence in every transaction that inserts an event: one more page
// in each commit's WAL write. Postgres keeps its sequence, whose writes are
// not per transaction.
const sqliteEventsTable = "CREATE TABLE IF NOT EXISTS payment_events (`id` integer PRIMARY KEY, `order_id` text NOT NULL, `seq` integer NOT NULL," +
	" `type` text NOT NULL, `status` text, `previous_status` text, `source` text NOT NULL, `dedup_key` text, `payment_id` text," +
	" `data` text, `created_at` datetime)"

// createEventsTable creates payment_events on SQLite, if it is missing,
// before AutoMigrate would create it with AUTOINCREMENT.
func createEventsTable(tx *gorm.DB) error {
	if err := tx.Exec(sqliteEventsTable).Error; err != nil {
		return fmt.Errorf("create payment_events: %w", err)
	}
	return nil
}

// dropEventsAutoincrement rebuilds a SQLite payment_events table made by
// an earlier version with AUTOINCREMENT, keeping every event and its id,
// and reports whether it did. The old table's indexes go with it: the
// caller creates them again. It runs inside the migration's transaction,
// so a crash leaves the old table as it was.
func dropEventsAutoincrement(tx *gorm.DB) (bool, error) {
	var ddl string
	if err := tx.Raw("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'payment_events'").Scan(&ddl).Error; err != nil {
		return false, fmt.Errorf("read payment_events: %w", err)
	}
	if !strings.Contains(strings.ToUpper(ddl), "AUTOINCREMENT") {
		return false, nil
	}
	const columns = "id, " + eventColumns
	for _, stmt := range []string{
		"ALTER TABLE payment_events RENAME TO payment_events_autoincrement",
		sqliteEventsTable,
		"INSERT INTO payment_events (" + columns + ") SELECT " + columns + " FROM payment_events_autoincrement",
		"DROP TABLE payment_events_autoincrement",
		"DELETE FROM sqlite_sequence WHERE name IN ('payment_events', 'payment_events_autoincrement')",
	} {
		if err := tx.Exec(stmt).Error; err != nil {
			return false, fmt.Errorf("rebuild payment_events without AUTOINCREMENT: %w", err)
		}
	}
	return true, nil
}

// createDedupIndex makes delivery keys unique. It is partial: most events
// have no key, and a full index would take an entry, and a page write, for
// each of them. A lookup by key (dedup_key = ?) implies the index's
// condition, so both SQLite and Postgres serve it from this index.
func createDedupIndex(db *gorm.DB) error {
	ddl := "CREATE UNIQUE INDEX IF NOT EXISTS " + dedupKeyIndexName + " ON payment_events (dedup_key) WHERE dedup_key IS NOT NULL"
	if err := db.Exec(ddl).Error; err != nil {
		return fmt.Errorf("create %s: %w", dedupKeyIndexName, err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Close waits for the group in flight, fails changes still queued, and
// closes the database. Safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.group != nil {
			s.group.close()
		}
		if s.stmts != nil {
			s.stmts.close()
		}
		if s.expiry != nil {
			s.expiry.close()
		}
		sqlDB, err := s.db.DB()
		if err != nil {
			s.closeErr = err
			return
		}
		s.closeErr = sqlDB.Close()
	})
	return s.closeErr
}

// Dialect names the database in use, for logs.
func (s *Store) Dialect() string { return s.db.Dialector.Name() }

// Order loads an order by id.
func (s *Store) Order(ctx context.Context, id string) (payment.Order, error) {
	if !payment.ValidOrderID(id) {
		return payment.Order{}, payment.ErrOrderNotFound
	}
	var row orderRow
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return payment.Order{}, payment.ErrOrderNotFound
	}
	if err != nil {
		return payment.Order{}, fmt.Errorf("load order: %w", err)
	}
	return row.order(), nil
}

// Events returns an order's event log in sequence order.
func (s *Store) Events(ctx context.Context, orderID string) ([]payment.Event, error) {
	var rows []eventRow
	err := s.db.WithContext(ctx).Where("order_id = ?", orderID).Order("seq").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("load events: %w", err)
	}
	events := make([]payment.Event, len(rows))
	for i, row := range rows {
		events[i] = row.event()
	}
	return events, nil
}
