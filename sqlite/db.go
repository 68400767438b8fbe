package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/filehub/filehub"
)

// Config configures a DB. The zero value is ready to use.
type Config struct {
	// Logger receives the store's logs (migrations applied, failed write
	// batches). Default: discard.
	Logger *slog.Logger

	// Registerer, if set, receives the store's Prometheus collectors (write
	// batch sizes and commit durations). Default: no metrics.
	Registerer prometheus.Registerer

	// BusyTimeout is how long a statement waits for a lock held by another
	// process (such as `filehub keys create`) before failing with
	// EUNAVAILABLE. Default: 5s.
	BusyTimeout time.Duration

	// MaxBatch is the most write requests committed together in one
	// transaction (see the package doc on group commit). Default: 64.
	MaxBatch int

	// MaxReaders is the size of the read connection pool. Default: the
	// larger of 4 and GOMAXPROCS.
	MaxReaders int

	// NoMigrate makes Open leave the schema as it is instead of applying
	// pending migrations, for tools that manage migrations themselves. Open
	// still refuses a schema newer than this binary knows.
	NoMigrate bool
}

// Defaults of Config.
const (
	defaultBusyTimeout = 5 * time.Second
	defaultMaxBatch    = 64
	minReaders         = 4
)

// DB is a filehub.MetaStore on a SQLite database file. It is safe for
// concurrent use. Create it with Open and release it with Close.
type DB struct {
	path   string
	logger *slog.Logger

	// wdb has exactly one connection, used only by the writer goroutine and
	// by migrations; rdb is the read pool.
	wdb, rdb *sql.DB

	maxBatch int
	jobs     chan *job     // unbuffered: a send succeeds only if the writer takes it
	quit     chan struct{} // closed by Close
	stopped  chan struct{} // closed when the writer goroutine has returned

	// stmts are the writer's prepared statements; see prepareStmts.
	stmts map[string]*sql.Stmt
	// rstmts are the read pool's prepared statements, by query; see
	// readQuery.
	rstmts sync.Map // string -> *sql.Stmt

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	metrics *metrics
}

var _ filehub.MetaStore = (*DB)(nil)

// Open opens (creating if needed) the SQLite database at path, applies
// pending migrations unless cfg.NoMigrate is set, and starts the writer.
//
// Open returns an EUNAVAILABLE error if the file cannot be opened or
// migrated, or if its schema is newer than the newest migration this binary
// knows (a newer filehub wrote it; running an older one against it could
// corrupt data).
func Open(ctx context.Context, path string, cfg Config) (*DB, error) {
	if path == "" {
		return nil, filehub.Errorf(filehub.EINVALID, "no database path given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, filehub.WrapError(filehub.EINVALID, "bad database path", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = defaultBusyTimeout
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	if cfg.MaxReaders <= 0 {
		cfg.MaxReaders = max(minReaders, runtime.GOMAXPROCS(0))
	}

	wdb, err := sql.Open("sqlite", dsn(abs, cfg.BusyTimeout, true))
	if err != nil {
		return nil, unavailable("open database", err)
	}
	// One write connection, kept open for the DB's lifetime.
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)

	rdb, err := sql.Open("sqlite", dsn(abs, cfg.BusyTimeout, false))
	if err != nil {
		wdb.Close()
		return nil, unavailable("open database", err)
	}
	rdb.SetMaxOpenConns(cfg.MaxReaders)
	rdb.SetMaxIdleConns(cfg.MaxReaders)
	rdb.SetConnMaxLifetime(0)
	rdb.SetConnMaxIdleTime(0)

	db := &DB{
		path:     abs,
		logger:   cfg.Logger,
		wdb:      wdb,
		rdb:      rdb,
		maxBatch: cfg.MaxBatch,
		jobs:     make(chan *job),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	fail := func(err error) (*DB, error) {
		rdb.Close()
		wdb.Close()
		return nil, err
	}
	// Open the write connection first: it switches the file to WAL mode,
	// which the readers rely on.
	if err := wdb.PingContext(ctx); err != nil {
		return fail(mapError(ctx, "open database", err))
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
		m, err := newMetrics(cfg.Registerer)
		if err != nil {
			return fail(filehub.WrapError(filehub.EINTERNAL, "register sqlite metrics", err))
		}
		db.metrics = m
	}
	go db.writer()
	return db, nil
}

// dsn returns the driver's data source name for the file at abs. The file:
// URI form lets any character appear in the path (it is percent-encoded).
func dsn(abs string, busy time.Duration, write bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busy.Milliseconds(), 10))
	if write {
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "FULL")
		q.Set("_foreign_keys", "1")
		// Take the write lock at BEGIN, so a transaction never has to be
		// upgraded from read to write half-way (which cannot wait on the
		// busy timeout and fails with SQLITE_BUSY at once).
		q.Set("_txlock", "immediate")
	} else {
		q.Set("_query_only", "1")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String()
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Ping checks that the database answers a query on the read pool and that
// the writer is running. It returns EUNAVAILABLE otherwise.
func (db *DB) Ping(ctx context.Context) error {
	if db.closed.Load() {
		return errClosed
	}
	var one int
	if err := db.rdb.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return mapError(ctx, "ping", err)
	}
	return nil
}

// Close stops the writer (requests still queued fail with EUNAVAILABLE; a
// batch being written is finished first) and closes the database. Calling
// Close again returns the first call's result. After Close every method
// returns an EUNAVAILABLE error.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closed.Store(true)
		close(db.quit)
		// The writer is started only by a successful Open; a DB that
		// exists was opened.
		<-db.stopped
		db.rstmts.Range(func(_, st any) bool {
			st.(*sql.Stmt).Close()
			return true
		})
		db.closeErr = errors.Join(db.rdb.Close(), db.wdb.Close())
		if db.closeErr != nil {
			db.closeErr = unavailable("close database", db.closeErr)
		}
	})
	return db.closeErr
}

// errClosed is returned by every method after Close.
var errClosed = filehub.Errorf(filehub.EUNAVAILABLE, "metadata store is closed")

// job is one write request for the writer goroutine.
type job struct {
	// ctx is the caller's context: checked before the job runs and handed to
	// place callbacks, but never used for SQL (see the package doc).
	ctx context.Context
	// fn does the work inside the batch transaction, inside a savepoint.
	fn func(ctx context.Context, tx *wtx) error
	// err is fn's result, or the batch's if COMMIT failed; done is closed
	// once it is final.
	err  error
	done chan struct{}
}

// write runs fn in the writer goroutine's next batch and returns its result
// once the batch has committed. fn receives the writer's context for SQL and
// must use the caller's ctx (captured) only for callbacks.
func (db *DB) write(ctx context.Context, op string, fn func(ctx context.Context, tx *wtx) error) error {
	if db.closed.Load() {
		return errClosed
	}
	j := &job{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case db.jobs <- j:
	case <-ctx.Done():
		return fmt.Errorf("sqlite: %s: waiting for the writer: %w", op, ctx.Err())
	case <-db.quit:
		return errClosed
	}
	<-j.done
	return j.err
}

// writer is the single goroutine that writes; see the package doc.
func (db *DB) writer() {
	defer close(db.stopped)
	defer db.closeStmts()
	batch := make([]*job, 0, db.maxBatch)
	for {
		select {
		case <-db.quit:
			return
		case j := <-db.jobs:
			batch = append(batch[:0], j)
		}
	gather:
		for len(batch) < db.maxBatch {
			select {
			case j := <-db.jobs:
				batch = append(batch, j)
			default:
				break gather
			}
		}
		db.runBatch(batch)
		clear(batch) // let the jobs be collected
	}
}

// runBatch runs the jobs in one transaction, each in its own savepoint, and
// reports every job's result after COMMIT.
func (db *DB) runBatch(batch []*job) {
	start := time.Now()
	// Not a caller's context: cancelling one caller must not interrupt the
	// statements of the others.
	ctx := context.Background()
	finish := func(commitErr error) {
		for _, j := range batch {
			if j.err == nil && commitErr != nil {
				j.err = commitErr
			}
			close(j.done)
		}
		db.metrics.observe(len(batch), time.Since(start))
	}

	db.prepareStmts(ctx)
	sqlTx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		db.logger.Error("sqlite: begin write batch", "err", err, "batch", len(batch))
		finish(mapError(ctx, "begin transaction", err))
		return
	}
	tx := &wtx{tx: sqlTx, stmts: db.stmts}
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.err = fmt.Errorf("sqlite: write request abandoned: %w", err)
			continue
		}
		if _, err := tx.exec(ctx, qSavepoint); err != nil {
			db.abort(sqlTx, batch, err)
			finish(nil)
			return
		}
		j.err = runJob(j, tx)
		if j.err != nil {
			// Undo this job only. If that fails, SQLite has already rolled
			// back the whole transaction (as it does after some I/O errors),
			// so the batch is lost.
			if _, err := tx.exec(ctx, qRollbackTo); err != nil {
				db.abort(sqlTx, batch, err)
				finish(nil)
				return
			}
		}
		if _, err := tx.exec(ctx, qRelease); err != nil {
			db.abort(sqlTx, batch, err)
			finish(nil)
			return
		}
	}
	if err := sqlTx.Commit(); err != nil {
		db.logger.Error("sqlite: commit write batch", "err", err, "batch", len(batch))
		finish(mapError(ctx, "commit", err))
		return
	}
	finish(nil)
}

// runJob runs j.fn. A panic (in a place callback, say) becomes an
// EINTERNAL error of this job alone: unrecovered, it would take the writer,
// and with it every other caller, down.
func runJob(j *job, tx *wtx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = filehub.WrapError(filehub.EINTERNAL, "internal error", fmt.Errorf("sqlite: write request panicked: %v", p))
		}
	}()
	return j.fn(j.ctx, tx)
}

// Statements every write batch runs many times; the writer prepares them
// once (see prepareStmts). All other statements are prepared per use.
const (
	qSavepoint   = `SAVEPOINT w`
	qRelease     = `RELEASE w`
	qRollbackTo  = `ROLLBACK TO w`
	qInsertBlob  = `INSERT INTO blobs (sha256, size, ref_count, created_at) VALUES (?, ?, 1, ?) ON CONFLICT (sha256) DO NOTHING`
	qRefBlob     = `UPDATE blobs SET ref_count = ref_count + 1, unreferenced_since = NULL, marked_at = NULL WHERE sha256 = ? RETURNING size, ref_count`
	qInsertFile  = `INSERT INTO files (id, name, size, sha256, content_type, created_at, owner_key_id) VALUES (?, ?, ?, ?, ?, ?, ?)`
	qInsertEvent = `INSERT INTO events (type, time, file) VALUES (?, ?, ?)`
)

// prepareStmts prepares the hot statements on the write connection, which
// saves parsing them for every request (a fifth of the writer's time in
// profiles). It runs between batches, when the connection is free, and
// retries at the next batch if it fails (when a NoMigrate store has no
// schema yet). Only the writer goroutine touches db.stmts.
func (db *DB) prepareStmts(ctx context.Context) {
	if db.stmts != nil {
		return
	}
	stmts := make(map[string]*sql.Stmt)
	hot := []string{qSavepoint, qRelease, qRollbackTo, qInsertBlob, qRefBlob, qInsertFile, qInsertEvent}
	for _, q := range append(hot, wsSessionStmts...) {
		st, err := db.wdb.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range stmts {
				st.Close()
			}
			return
		}
		stmts[q] = st
	}
	db.stmts = stmts
}

// readStmt returns the read pool's prepared form of q, preparing it at
// first use: the reads of every upload (FindBlob, the API key) and of the
// event pollers (ListEvents) otherwise spent a large part of their time
// parsing their SQL. database/sql prepares it again once on each pooled
// connection it is used on. It returns nil if preparing fails (a NoMigrate
// store without its schema yet): the caller runs q unprepared, and the next
// call tries again.
func (db *DB) readStmt(ctx context.Context, q string) *sql.Stmt {
	if st, ok := db.rstmts.Load(q); ok {
		return st.(*sql.Stmt)
	}
	st, err := db.rdb.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	if prev, loaded := db.rstmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt)
	}
	return st
}

// readQuery runs q on the read pool, prepared (readStmt).
func (db *DB) readQuery(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := db.readStmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return db.rdb.QueryContext(ctx, q, args...)
}

// readQueryRow runs q for one row on the read pool, prepared (readStmt).
func (db *DB) readQueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := db.readStmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return db.rdb.QueryRowContext(ctx, q, args...)
}

func (db *DB) closeStmts() {
	for _, st := range db.stmts {
		st.Close()
	}
	db.stmts = nil
}

// wtx is the batch transaction as jobs see it: it runs the prepared form of
// the hot statements and prepares all others on the fly. A prepared
// statement stays valid across schema changes: SQLite re-prepares it.
type wtx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (t *wtx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st, ok := t.stmts[q]; ok {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

func (t *wtx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st, ok := t.stmts[q]; ok {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

// abort rolls tx back after a failure that breaks the whole batch and fails
// every job that has not failed on its own.
func (db *DB) abort(tx *sql.Tx, batch []*job, cause error) {
	db.logger.Error("sqlite: write batch aborted", "err", cause, "batch", len(batch))
	_ = tx.Rollback() // the transaction may already be gone; cause says why
	err := mapError(context.Background(), "write batch", cause)
	for _, j := range batch {
		if j.err == nil {
			j.err = err
		}
	}
}

// metrics are the store's Prometheus collectors.
type metrics struct {
	batchSize     prometheus.Histogram
	batchDuration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "filehub",
			Subsystem: "sqlite",
			Name:      "write_batch_size",
			Help:      "Write requests committed together in one transaction (group commit).",
			Buckets:   []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "filehub",
			Subsystem: "sqlite",
			Name:      "write_batch_duration_seconds",
			Help:      "Time to run and commit one write batch.",
			Buckets:   prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
	}
	for _, c := range []prometheus.Collector{m.batchSize, m.batchDuration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(n int, d time.Duration) {
	if m == nil {
		return
	}
	m.batchSize.Observe(float64(n))
	m.batchDuration.Observe(d.Seconds())
}
