package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
)

// Config configures a DB. The zero value is ready to use.
type Config struct {
	// Logger receives the store's logs (migrations applied, retried
	// transactions). Default: discard.
	Logger *slog.Logger

	// Registerer, if set, receives the store's Prometheus collectors
	// (connection pool gauges, transaction retries). Default: no metrics.
	Registerer prometheus.Registerer

	// MaxConns is the size of the connection pool. Default: pgxpool's
	// (the larger of 4 and the number of CPUs), or pool_max_conns in the
	// DSN. The committer of CreateFile (group commit) holds one more
	// connection of its own.
	MaxConns int32

	// NoMigrate makes Open leave the schema as it is instead of applying
	// pending migrations, for tools that manage migrations themselves. Open
	// still refuses a schema newer than this binary knows.
	NoMigrate bool

	// Schema, if set, is the PostgreSQL schema that holds filehub's tables:
	// every connection gets it as its search_path, so several filehub
	// deployments (or tests) can share one database. Open creates it if it
	// does not exist, unless NoMigrate is set. Default: the DSN's
	// search_path, usually "public".
	Schema string

	// ConnectTimeout bounds each attempt to open a connection, so that
	// requests fail fast with EUNAVAILABLE while the server is down rather
	// than hanging. Default: 3s, or connect_timeout in the DSN if shorter.
	ConnectTimeout time.Duration

	// MaxBatch is the most CreateFile calls committed together in one
	// transaction (see the package doc on group commit). Default: 64.
	MaxBatch int
}

const (
	defaultConnectTimeout = 3 * time.Second
	// commitTimeout bounds a COMMIT, which runs detached from the caller's
	// context (see tx).
	commitTimeout = 10 * time.Second
	// maxAttempts is how often tx runs a transaction that PostgreSQL
	// aborted for a deadlock or a serialization failure.
	maxAttempts = 3
)

// DB is a filehub.MetaStore and filehub.CleanupStore on PostgreSQL. It is
// safe for concurrent use, also by several processes on one database.
// Create it with Open and release it with Close.
type DB struct {
	pool *pgxpool.Pool
	// commitPool holds the committer's connection (see commit.go), apart
	// from pool: group commit must not queue behind the reads of the
	// uploads it commits, which would make every batch wait for a
	// connection. It heals like pool.
	commitPool *pgxpool.Pool
	logger     *slog.Logger
	schema     string

	closed    atomic.Bool
	closeOnce sync.Once

	// The committer goroutine's queue and lifecycle (see commit.go).
	maxBatch   int
	creates    chan *createJob
	quit       chan struct{} // closed by Close: the committer stops
	committers sync.WaitGroup

	retries       prometheus.Counter // nil without a Registerer, like the others
	batchSize     prometheus.Histogram
	batchDuration prometheus.Histogram
	batchReruns   prometheus.Counter
	unreg         func()
}

var _ filehub.MetaStore = (*DB)(nil)

// Open connects to the PostgreSQL database at dsn (a postgres:// URL or a
// key=value string, as libpq accepts), applies pending migrations unless
// cfg.NoMigrate is set, and returns the store.
//
// Open returns EINVALID for a malformed DSN, and EUNAVAILABLE if the server
// cannot be reached within cfg.ConnectTimeout, a migration fails, or the
// schema is newer than the newest migration this binary knows (a newer
// filehub wrote it; running an older one against it could corrupt data).
func Open(ctx context.Context, dsn string, cfg Config) (*DB, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The error may quote the DSN, password included: keep it out of
		// the message and the cause.
		return nil, filehub.Errorf(filehub.EINVALID, "malformed PostgreSQL DSN")
	}
	timeout := cfg.ConnectTimeout
	if timeout <= 0 {
		timeout = defaultConnectTimeout
	}
	if pc.ConnConfig.ConnectTimeout <= 0 || pc.ConnConfig.ConnectTimeout > timeout {
		pc.ConnConfig.ConnectTimeout = timeout
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	if cfg.Schema != "" {
		pc.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{cfg.Schema}.Sanitize()
	}
	// Idle connections are checked before use (pgxpool pings those idle for
	// more than a second), and a connection that failed is discarded, so
	// after an outage the pool heals by itself; a quick health check also
	// drops dead idle connections early.
	pc.HealthCheckPeriod = 15 * time.Second

	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, mapError(ctx, "connect", err)
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	cpc := pc.Copy()
	cpc.MaxConns, cpc.MinConns = committers, 0
	commitPool, err := pgxpool.NewWithConfig(ctx, cpc)
	if err != nil {
		pool.Close()
		return nil, mapError(ctx, "connect", err)
	}
	db := &DB{pool: pool, commitPool: commitPool, logger: cfg.Logger, schema: cfg.Schema, maxBatch: cfg.MaxBatch,
		creates: make(chan *createJob), quit: make(chan struct{})}
	fail := func(err error) (*DB, error) {
		pool.Close()
		commitPool.Close()
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		return fail(mapError(ctx, "connect", err))
	}
	if cfg.Schema != "" && !cfg.NoMigrate {
		if err := db.createSchema(ctx); err != nil {
			return fail(err)
		}
	}
	if err := db.checkVersion(ctx); err != nil {
		return fail(err)
	}
	if !cfg.NoMigrate {
		if err := db.Migrate(ctx); err != nil {
			return fail(err)
		}
	}
	if cfg.Registerer != nil {
		if err := db.registerMetrics(cfg.Registerer); err != nil {
			return fail(filehub.WrapError(filehub.EINTERNAL, "register postgres metrics", err))
		}
	}
	db.committers.Add(committers)
	for range committers {
		go db.committer()
	}
	return db, nil
}

// createSchema creates the configured schema if it does not exist. It looks
// first, so that a role without CREATE on the database can use a schema an
// administrator made for it.
func (db *DB) createSchema(ctx context.Context) error {
	var exists bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, db.schema).Scan(&exists)
	if err != nil {
		return mapError(ctx, "look up schema", err)
	}
	if exists {
		return nil
	}
	_, err = db.pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{db.schema}.Sanitize())
	return mapError(ctx, "create schema", err)
}

// Ping checks that the database answers a query. It returns EUNAVAILABLE
// otherwise.
func (db *DB) Ping(ctx context.Context) error {
	if db.closed.Load() {
		return errClosed
	}
	var one int
	if err := db.pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		return mapError(ctx, "ping", err)
	}
	return nil
}

// Close stops the committer (a batch being committed is finished first),
// waits for the connections in use to be released, closes every
// connection and stops the pool's background goroutines. Calling Close
// again does nothing. After Close every method returns an EUNAVAILABLE
// error.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closed.Store(true)
		close(db.quit)
		db.committers.Wait()
		db.commitPool.Close()
		db.pool.Close()
		if db.unreg != nil {
			db.unreg()
		}
	})
	return nil
}

// errClosed is returned by every method after Close.
var errClosed = filehub.Errorf(filehub.EUNAVAILABLE, "metadata store is closed")

// tx runs fn in a transaction and commits it. fn's error is returned as it
// is (fn maps database errors itself) and rolls the transaction back.
//
// SQL runs under the caller's ctx: a caller that gives up rolls its own
// transaction back and nothing else. COMMIT is the exception: once it is
// sent, abandoning it would leave the caller not knowing whether the change
// is durable, so it runs detached from ctx (bounded by commitTimeout).
//
// A transaction PostgreSQL aborted for a deadlock or a serialization failure
// is run again, up to maxAttempts times in all; fn must therefore be
// idempotent in its side effects, which place and delete callbacks are (a
// place of a present object is a stat, a delete of a missing one is a
// no-op).
func (db *DB) tx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	if db.closed.Load() {
		return errClosed
	}
	for attempt := 1; ; attempt++ {
		err := db.tx1(ctx, op, fn)
		if err == nil || attempt == maxAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		db.logger.Warn("postgres: transaction retried", "op", op, "attempt", attempt, "err", err)
		if db.retries != nil {
			db.retries.Inc()
		}
	}
}

func (db *DB) tx1(ctx context.Context, op string, fn func(tx pgx.Tx) error) (err error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return mapError(ctx, op, err)
	}
	defer func() {
		if p := recover(); p != nil {
			// A panic in a callback fails this request alone, as in sqlite.
			err = filehub.WrapError(filehub.EINTERNAL, "internal error", fmt.Errorf("postgres: %s panicked: %v", op, p))
		}
		if err != nil {
			// The transaction may already be gone with its connection; then
			// there is nothing to roll back.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
			_ = tx.Rollback(rctx)
			cancel()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := tx.Commit(cctx); err != nil {
		return mapError(cctx, op+": commit", err)
	}
	return nil
}

// lockContent takes the transaction-level advisory lock of content sum.
// Every transaction that creates, revives, dereferences, sweeps or flags a
// blob record, or deletes an orphan object, takes it first: it serializes
// them per content across every process on the database, which is what the
// sweep argument of docs/cleanup.md needs (a row lock cannot cover a record
// that does not exist yet, as in DeleteOrphanObject), and, being taken
// first, it orders their row locks so they cannot deadlock. A create batch
// takes several, in ascending key order (see runCreates1).
func lockContent(ctx context.Context, tx pgx.Tx, sum string) error {
	_, err := tx.Exec(ctx, qLockContent, contentLockClass, contentLockKey(sum))
	return mapError(ctx, "lock content", err)
}

// contentLockClass is the first key of lockContent's advisory locks, so
// they do not collide with other users of advisory locks on the database
// (goose's migration lock uses the one-bigint form, a separate key space).
const contentLockClass int32 = 0x66680001

func (db *DB) registerMetrics(reg prometheus.Registerer) error {
	stat := func(name, help string, f func(*pgxpool.Stat) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "filehub", Subsystem: "postgres", Name: name, Help: help,
		}, func() float64 { return f(db.pool.Stat()) })
	}
	db.retries = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "filehub", Subsystem: "postgres", Name: "tx_retries_total",
		Help: "Transactions run again after a deadlock or serialization failure.",
	})
	db.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "filehub", Subsystem: "postgres", Name: "create_batch_size",
		Help:    "CreateFile calls committed together in one transaction (group commit).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	})
	db.batchDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "filehub", Subsystem: "postgres", Name: "create_batch_duration_seconds",
		Help:    "Time to run and commit one batch of CreateFile calls.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
	})
	db.batchReruns = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "filehub", Subsystem: "postgres", Name: "create_batch_reruns_total",
		Help: "Create batches run again without the calls that failed on their own.",
	})
	cs := []prometheus.Collector{
		stat("pool_conns", "Open connections in the pool.", func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }),
		stat("pool_acquired_conns", "Connections in use.", func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }),
		stat("pool_max_conns", "Maximum size of the pool.", func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "filehub", Subsystem: "postgres", Name: "pool_empty_acquire_total",
			Help: "Acquires that had to wait for a connection.",
		}, func() float64 { return float64(db.pool.Stat().EmptyAcquireCount()) }),
		db.retries, db.batchSize, db.batchDuration, db.batchReruns,
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, c := range cs[:i] {
				reg.Unregister(c)
			}
			db.retries, db.batchSize, db.batchDuration, db.batchReruns = nil, nil, nil, nil
			return err
		}
	}
	db.unreg = func() {
		for _, c := range cs {
			reg.Unregister(c)
		}
	}
	return nil
}

// errNoRows reports whether err says a query returned no row.
func errNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
