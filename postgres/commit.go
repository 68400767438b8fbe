package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/filehub/filehub"
)

// Group commit of CreateFile; see "Group commit" in the package doc.

const (
	// defaultMaxBatch is Config.MaxBatch's default, as in sqlite.
	defaultMaxBatch = 64
	// batchTimeout bounds the statements of one create batch, which run
	// detached from every caller's context (one caller giving up must not
	// roll back the others). The files service bounds its commits by the
	// same time.
	batchTimeout = 10 * time.Second
	// committers is how many committer goroutines run batches at once.
	// One: with two, the queue splits into smaller batches that still
	// commit one after the other (the events counter row), and small
	// uploads ran 10-20% slower in side-by-side runs.
	committers = 1
)

// createJob is one CreateFile call queued for the committer.
type createJob struct {
	// ctx is the caller's context: checked before the job runs and handed
	// to place, never used for SQL.
	ctx   context.Context
	file  filehub.File // the record to insert, times in UTC
	event []byte       // the file.created event's snapshot
	place filehub.PlaceFunc
	lock  int32 // the content lock key (contentLockKey of file.SHA256)

	// Set by the committer; final once done is closed.
	dedup bool
	err   error
	done  chan struct{}

	refs int64 // the blob's reference count after this job, per attempt
}

// errJobsFailed tells commitCreates that runCreates1 rolled back because
// some jobs failed on their own (their err is set), so that the others are
// run again without them.
var errJobsFailed = errors.New("postgres: jobs of the batch failed")

// committer is the goroutine that runs queued CreateFile calls in batches:
// it takes one job, then every job queued meanwhile (up to maxBatch), and
// commits them together while the next ones queue.
func (db *DB) committer() {
	defer db.committers.Done()
	batch := make([]*createJob, 0, db.maxBatch)
	for {
		select {
		case <-db.quit:
			return
		case j := <-db.creates:
			batch = append(batch[:0], j)
		}
	gather:
		for len(batch) < db.maxBatch {
			select {
			case j := <-db.creates:
				batch = append(batch, j)
			default:
				break gather
			}
		}
		db.commitCreates(batch)
		clear(batch) // let the jobs be collected
	}
}

// commitCreates commits the jobs of one batch and reports each job's
// result once the outcome is final. A job that fails on its own (a
// conflicting ID, a size mismatch, a failed place) is taken out and the
// others run again in a new transaction, so that it fails alone; every
// run takes out at least one job, so this ends. Anything else (the
// database unreachable, a COMMIT that failed) fails every job left.
func (db *DB) commitCreates(batch []*createJob) {
	start := time.Now()
	live := make([]*createJob, 0, len(batch))
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.err = fmt.Errorf("postgres: create file: %w", err)
			continue
		}
		live = append(live, j)
	}
	// One lock order for every batch (see runCreates1). Stable, so that
	// the events of one content follow the order of the calls.
	slices.SortStableFunc(live, func(a, b *createJob) int { return cmp.Compare(a.lock, b.lock) })
	runs := 0
	for len(live) > 0 {
		runs++
		err := db.runCreates(live)
		if errors.Is(err, errJobsFailed) {
			n := len(live)
			live = slices.DeleteFunc(live, func(j *createJob) bool { return j.err != nil })
			if len(live) < n {
				continue
			}
			// Not expected; without it the loop would not end.
			err = filehub.WrapError(filehub.EINTERNAL, "metadata store error", errors.New("postgres: create batch failed without a failed job"))
		}
		for _, j := range live {
			j.err = err
		}
		break
	}
	if db.batchSize != nil {
		db.batchSize.Observe(float64(len(batch)))
		db.batchDuration.Observe(time.Since(start).Seconds())
		if runs > 1 {
			db.batchReruns.Add(float64(runs - 1))
		}
	}
	for _, j := range batch {
		close(j.done)
	}
}

// qCreateFile references the content (inserting its blob record, or
// incrementing its count and clearing its marks) and inserts the file, in
// one statement. It returns the blob's size and new count and whether the
// record is new. The file is inserted only if the sizes agree; the caller
// rolls back otherwise. The UPDATE cannot see a row the INSERT made (one
// snapshot), hence the NOT EXISTS; with the content lock held, no other
// transaction can insert the record between the two.
const qCreateFile = `WITH ins AS (
	INSERT INTO blobs (sha256, size, ref_count, created_at) VALUES ($1, $2, 1, $3)
	ON CONFLICT (sha256) DO NOTHING
	RETURNING size, ref_count
), upd AS (
	UPDATE blobs SET ref_count = ref_count + 1, unreferenced_since = NULL, marked_at = NULL
	WHERE sha256 = $1 AND NOT EXISTS (SELECT FROM ins)
	RETURNING size, ref_count
), b AS (
	SELECT size, ref_count, true AS inserted FROM ins
	UNION ALL
	SELECT size, ref_count, false FROM upd
), f AS (
	INSERT INTO files (id, name, size, sha256, content_type, created_at, owner_key_id)
	SELECT $4, $5, $2, $1, $6, $3, $7 FROM b WHERE b.size = $2
)
SELECT size, ref_count, inserted FROM b`

// qLockContent is lockContent's statement.
const qLockContent = `SELECT pg_advisory_xact_lock($1, $2)`

// runCreates runs the jobs in one transaction and commits it, retrying
// (like tx) if PostgreSQL aborted it for a deadlock or a serialization
// failure. If some jobs failed on their own, it sets their err, rolls back
// and returns errJobsFailed.
func (db *DB) runCreates(jobs []*createJob) error {
	// No check of db.closed: Close lets the batch in flight finish, and
	// closes the connection only after the committer has stopped.
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		err := db.runCreates1(ctx, jobs)
		cancel()
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return err
		}
		db.logger.Warn("postgres: transaction retried", "op", "create file", "attempt", attempt, "err", err)
		if db.retries != nil {
			db.retries.Inc()
		}
	}
}

// runCreates1 runs the jobs, sorted by lock key, in one transaction of two
// round trips. The first begins it, takes the jobs' content locks in
// ascending key order, references their contents and inserts their files
// (qCreateFile). Then place is called for every content that has no other
// reference. The second appends the jobs' events with one statement and
// commits.
//
// Transactions that take one content lock cannot deadlock with a batch,
// and two batches cannot either, since both take their locks in the same
// order (and the events counter row, which everyone takes last, last).
//
// The statements run under ctx, which is no caller's. COMMIT, once sent,
// is seen through as in tx: a broken connection then leaves the outcome
// unknown, and every job fails with EUNAVAILABLE.
func (db *DB) runCreates1(ctx context.Context, jobs []*createJob) (err error) {
	conn, err := db.commitPool.Acquire(ctx)
	if err != nil {
		return mapError(ctx, "create file", err)
	}
	// A connection left inside the transaction (a failed ROLLBACK) is
	// destroyed by Release rather than reused.
	defer conn.Release()
	open := true
	defer func() {
		if open {
			_, _ = conn.Exec(ctx, "ROLLBACK")
		}
	}()

	b := &pgx.Batch{}
	b.Queue("BEGIN")
	locks := 0
	for i, j := range jobs {
		j.dedup, j.refs = false, 0
		if i == 0 || j.lock != jobs[i-1].lock {
			b.Queue(qLockContent, contentLockClass, j.lock)
			locks++
		}
	}
	for _, j := range jobs {
		f := &j.file
		b.Queue(qCreateFile, f.SHA256, f.Size, f.CreatedAt, f.ID, f.Name, f.ContentType, f.OwnerKeyID)
	}
	br := conn.SendBatch(ctx, b)
	_, err = br.Exec()
	if err != nil {
		err = mapError(ctx, "create file: begin", err)
	} else {
		err = readCreates(ctx, br, locks, jobs)
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = mapError(ctx, "create file", cerr)
	}
	if err != nil {
		return err
	}

	failed := false
	for _, j := range jobs {
		// A count of one: a new record, or a revival (see CreateFile).
		if j.refs == 1 && j.place != nil {
			if err := callPlace(j); err != nil {
				j.err = err
				failed = true
			}
		}
	}
	if failed {
		return errJobsFailed
	}

	b = &pgx.Batch{}
	queueCreateEvents(b, jobs)
	b.Queue("COMMIT")
	br = conn.SendBatch(ctx, b)
	_, err = br.Exec()
	if err != nil {
		br.Close()
		return mapError(ctx, "insert events", err)
	}
	open = false // COMMIT is sent: nothing to roll back, whatever happens
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return mapError(ctx, "create file: commit", err)
	}
	if tag.String() != "COMMIT" {
		return filehub.WrapError(filehub.EINTERNAL, "metadata store error",
			fmt.Errorf("create file: commit: transaction rolled back (%s)", tag))
	}
	return nil
}

// readCreates reads the results of runCreates1's first round trip: locks lock
// statements, then one qCreateFile per job.
func readCreates(ctx context.Context, br pgx.BatchResults, locks int, jobs []*createJob) error {
	for range locks {
		if _, err := br.Exec(); err != nil {
			return mapError(ctx, "lock content", err)
		}
	}
	failed := false
	for _, j := range jobs {
		var (
			size     int64
			inserted bool
		)
		err := br.QueryRow().Scan(&size, &j.refs, &inserted)
		switch {
		case err == nil && size != j.file.Size:
			j.err = filehub.Errorf(filehub.EINVALID,
				"size %d does not match the stored size %d of content %s", j.file.Size, size, j.file.SHA256)
			failed = true
		case err == nil:
			j.dedup = !inserted
		case errNoRows(err):
			// Not expected: with the lock held the record is either
			// inserted or updated.
			j.err = filehub.WrapError(filehub.EINTERNAL, "metadata store error",
				fmt.Errorf("create file %s: content %s neither inserted nor referenced", j.file.ID, j.file.SHA256))
			return errJobsFailed
		case jobError(err):
			// The pipeline's later statements fail with "transaction
			// aborted": this job is the one to take out.
			if filehub.ErrorCode(mapError(ctx, "", err)) == filehub.ECONFLICT {
				j.err = filehub.WrapError(filehub.ECONFLICT, fmt.Sprintf("file %s already exists", j.file.ID), err)
			} else {
				j.err = mapError(ctx, "insert file", err)
			}
			return errJobsFailed
		default:
			return mapError(ctx, "create file", err)
		}
	}
	if failed {
		return errJobsFailed
	}
	return nil
}

// jobError reports whether err is about the record a statement wrote (a
// data exception or a constraint violation, SQLSTATE classes 22 and 23),
// so that it fails that job alone.
func jobError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23"))
}

// callPlace runs j's place callback. A panic becomes an EINTERNAL error of
// this job alone, as in sqlite: unrecovered it would take the committer,
// and with it every other caller, down.
func callPlace(j *createJob) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = filehub.WrapError(filehub.EINTERNAL, "internal error", fmt.Errorf("postgres: place panicked: %v", p))
		}
	}()
	return j.place(j.ctx)
}

// queueCreateEvents queues the statement that appends the jobs'
// file.created events, in job order: the 'events' counter moves by
// len(jobs) at once and the events take the ids it passed over, so they
// stay gap-free and, the counter row being locked until COMMIT, commit in
// id order (see the package doc). Each event is announced with its own
// NOTIFY, as insertEvent does.
func queueCreateEvents(b *pgx.Batch, jobs []*createJob) {
	snaps := make([]string, len(jobs))
	for i, j := range jobs {
		snaps[i] = string(j.event)
	}
	b.Queue(`WITH n AS (
			UPDATE log_counters SET last = last + $1 WHERE name = 'events' RETURNING last
		), i AS (
			INSERT INTO events (id, type, time, file)
			SELECT n.last - $1 + e.ord, $2, $3, e.snap::jsonb
			FROM n, unnest($4::text[]) WITH ORDINALITY AS e(snap, ord)
			RETURNING id
		)
		SELECT pg_notify(`+eventChannelSQL+`, id::text) FROM i`,
		int64(len(jobs)), filehub.EventFileCreated, time.Now(), snaps)
}

// contentLockKey is the second key of content sum's advisory lock. Sums
// map to 32 bits; a collision only serializes two contents needlessly.
func contentLockKey(sum string) int32 {
	h := fnv.New32a()
	h.Write([]byte(sum))
	return int32(h.Sum32())
}
