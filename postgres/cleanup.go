package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/paging"
)

// blobColumns are the columns scanBlob reads, in order.
const blobColumns = `sha256, size, ref_count, created_at, unreferenced_since, marked_at, missing_since`

func scanBlob(s scanner) (*filehub.Blob, error) {
	var b filehub.Blob
	if err := s.Scan(&b.SHA256, &b.Size, &b.RefCount, &b.CreatedAt, &b.UnreferencedSince, &b.MarkedAt, &b.MissingSince); err != nil {
		return nil, err
	}
	b.CreatedAt = b.CreatedAt.UTC()
	b.UnreferencedSince = utcPtr(b.UnreferencedSince)
	b.MarkedAt = utcPtr(b.MarkedAt)
	b.MissingSince = utcPtr(b.MissingSince)
	return &b, nil
}

// fileAudit returns an audit entry for action on f (nil: filled in later) at
// `at`, by the actor and for the reason of ctx.
func fileAudit(ctx context.Context, action string, f *filehub.File, at time.Time) filehub.AuditEntry {
	a := filehub.AuditEntry{
		Time:       at,
		Actor:      filehub.ActorFromContext(ctx),
		Action:     action,
		TargetKind: filehub.TargetFile,
		Reason:     filehub.ReasonFromContext(ctx),
	}
	if f != nil {
		a.Target, a.Bytes = f.ID, f.Size
	}
	return a
}

// insertAudit appends a in tx. Its id is the next value of the 'audit'
// counter row, for the reason event ids are (see the package doc); a
// transaction that also appends an event appends its audit entries first,
// so the two counter rows are always locked in the same order.
func insertAudit(ctx context.Context, tx pgx.Tx, a filehub.AuditEntry) error {
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	if a.Actor == "" {
		a.Actor = filehub.ActorSystem
	}
	if err := a.Validate(); err != nil {
		return err
	}
	var run *int64
	if a.RunID != 0 {
		run = &a.RunID
	}
	_, err := tx.Exec(ctx, `WITH n AS (UPDATE log_counters SET last = last + 1 WHERE name = 'audit' RETURNING last)
		INSERT INTO audit_log (id, time, actor, action, target_kind, target, bytes, reason, run_id)
		SELECT last, $1, $2, $3, $4, $5, $6, $7, $8 FROM n`,
		a.Time, a.Actor, a.Action, a.TargetKind, a.Target, a.Bytes, a.Reason, run)
	return mapError(ctx, "append audit entry", err)
}

// ListExpiredTrash returns soft-deleted files due for purging; see
// filehub.TrashPurger. A limit of 0 or less means all.
func (db *DB) ListExpiredTrash(ctx context.Context, before time.Time, limit int) ([]*filehub.File, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	var lim *int
	if limit > 0 {
		lim = &limit // NULL is no limit
	}
	rows, err := db.pool.Query(ctx, `SELECT `+fileColumns+` FROM files
		WHERE purge_after IS NOT NULL AND purge_after <= $1 AND deleted_at IS NOT NULL
		ORDER BY purge_after, id LIMIT $2`, before, lim)
	if err != nil {
		return nil, mapError(ctx, "list expired trash", err)
	}
	defer rows.Close()
	var out []*filehub.File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, mapError(ctx, "list expired trash", err)
		}
		out = append(out, f)
	}
	return out, mapError(ctx, "list expired trash", rows.Err())
}

// PurgeExpiredFile purges a file whose trash grace has expired; see
// filehub.TrashPurger.
func (db *DB) PurgeExpiredFile(ctx context.Context, f filehub.Fence, id string, at time.Time, audit filehub.AuditEntry) (*filehub.File, error) {
	if err := filehub.CheckFenceArg(f); err != nil {
		return nil, err
	}
	return db.purge(ctx, &f, id,
		`DELETE FROM files WHERE id = $1 AND deleted_at IS NOT NULL AND purge_after <= $2 RETURNING `+fileColumns,
		[]any{id, at}, at, audit,
		func(ctx context.Context, tx pgx.Tx) error {
			// Tell "gone" from "restored or postponed" for the report.
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM files WHERE id = $1`, id).Scan(&n); err != nil {
				return mapError(ctx, "purge file", err)
			}
			if n > 0 {
				return filehub.Errorf(filehub.ECONFLICT, "file %s is no longer due for purging", id)
			}
			return filehub.Errorf(filehub.ENOTFOUND, "file %s not found", id)
		})
}

// ListBlobs returns a page of blob records in SHA256 order; see
// filehub.BlobSweeper. A limit of 0 or less means 1000; there is no upper
// cap, so scans can take large pages. Sums compare bytewise (the column is COLLATE "C"),
// the order of the blob store's listing.
func (db *DB) ListBlobs(ctx context.Context, after string, limit int) ([]*filehub.Blob, error) {
	return db.listBlobs(ctx, `SELECT `+blobColumns+` FROM blobs WHERE sha256 > $1
		ORDER BY sha256 LIMIT $2`, after, limit)
}

// ListUnreferencedBlobs returns a page of blobs unreferenced since before;
// see filehub.BlobSweeper.
func (db *DB) ListUnreferencedBlobs(ctx context.Context, before time.Time, after string, limit int) ([]*filehub.Blob, error) {
	return db.listBlobs(ctx, `SELECT `+blobColumns+` FROM blobs
		WHERE unreferenced_since IS NOT NULL AND unreferenced_since <= $1 AND ref_count = 0 AND sha256 > $2
		ORDER BY sha256 LIMIT $3`, before, after, limit)
}

func (db *DB) listBlobs(ctx context.Context, q string, args ...any) ([]*filehub.Blob, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	if limit := args[len(args)-1].(int); limit <= 0 {
		args[len(args)-1] = paging.MaxLimit
	}
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, mapError(ctx, "list blobs", err)
	}
	defer rows.Close()
	var out []*filehub.Blob
	for rows.Next() {
		b, err := scanBlob(rows)
		if err != nil {
			return nil, mapError(ctx, "list blobs", err)
		}
		out = append(out, b)
	}
	return out, mapError(ctx, "list blobs", rows.Err())
}

// CountBlobs returns the number of blob records.
func (db *DB) CountBlobs(ctx context.Context) (int64, error) {
	if db.closed.Load() {
		return 0, errClosed
	}
	var n int64
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM blobs`).Scan(&n)
	return n, mapError(ctx, "count blobs", err)
}

// MarkBlobs marks unreferenced blobs for the sweep; see
// filehub.BlobSweeper. One statement: the condition is re-checked on each
// row after its lock is taken, so a blob referenced meanwhile is skipped.
func (db *DB) MarkBlobs(ctx context.Context, sums []string, at time.Time) (int64, error) {
	var marked int64
	err := db.tx(ctx, "mark blobs", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE blobs SET marked_at = $1
			WHERE sha256 = ANY($2) AND ref_count = 0 AND marked_at IS NULL`, at, sums)
		if err != nil {
			return mapError(ctx, "mark blobs", err)
		}
		marked = tag.RowsAffected()
		return nil
	})
	return marked, err
}

// SweepBlob deletes a marked, still unreferenced blob and its object; see
// filehub.BlobSweeper. It takes the content's advisory lock, then re-checks
// and deletes the record and calls del, all in one transaction that holds
// the lock (and the record's row lock) until it ends: a concurrent
// CreateFile of the same content, in any process, waits for the lock and
// either ran entirely before (the re-check sees its reference) or runs
// entirely after (it finds no record, inserts one and places the object
// again from its staged copy). If del succeeds but the commit fails, the
// record stays without its object; the next CreateFile of the content
// revives it and, being a revival, calls place.
func (db *DB) SweepBlob(ctx context.Context, f filehub.Fence, sum string, before time.Time, del func(ctx context.Context) error,
	audit filehub.AuditEntry) (swept bool, err error) {
	if err := filehub.CheckFenceArg(f); err != nil {
		return false, err
	}
	err = db.tx(ctx, "sweep blob", func(tx pgx.Tx) error {
		swept = false
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		if err := lockContent(ctx, tx, sum); err != nil {
			return err
		}
		var size int64
		err := tx.QueryRow(ctx, `SELECT size FROM blobs WHERE sha256 = $1 AND ref_count = 0
			AND marked_at IS NOT NULL AND unreferenced_since IS NOT NULL AND unreferenced_since <= $2
			FOR UPDATE`, sum, before).Scan(&size)
		if errNoRows(err) {
			return nil
		}
		if err != nil {
			return mapError(ctx, "sweep blob", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM blobs WHERE sha256 = $1`, sum); err != nil {
			return mapError(ctx, "sweep blob", err)
		}
		if err := del(ctx); err != nil {
			return err
		}
		a := audit
		a.TargetKind, a.Target, a.Bytes = filehub.TargetBlob, sum, size
		if err := insertAudit(ctx, tx, a); err != nil {
			return err
		}
		swept = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return swept, nil
}

// DeleteOrphanObject deletes an object that has no blob record; see
// filehub.BlobSweeper. A row lock cannot guard a record that does not
// exist, so the check and del run under the content's advisory lock: an
// upload that records the same content either commits first (the check
// sees its record and the object is kept) or waits for the lock and then
// finds no record, inserts one and re-creates the object with place.
func (db *DB) DeleteOrphanObject(ctx context.Context, f filehub.Fence, sum string, del func(ctx context.Context) error,
	audit filehub.AuditEntry) (deleted bool, err error) {
	if err := filehub.CheckFenceArg(f); err != nil {
		return false, err
	}
	err = db.tx(ctx, "delete orphan object", func(tx pgx.Tx) error {
		deleted = false
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		if err := lockContent(ctx, tx, sum); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blobs WHERE sha256 = $1)`, sum).Scan(&exists); err != nil {
			return mapError(ctx, "delete orphan object", err)
		}
		if exists {
			return nil
		}
		if err := del(ctx); err != nil {
			return err
		}
		a := audit
		a.TargetKind, a.Target = filehub.TargetBlob, sum
		if err := insertAudit(ctx, tx, a); err != nil {
			return err
		}
		deleted = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return deleted, nil
}

// SetBlobMissing records a blob's object as missing (or back); see
// filehub.BlobSweeper.
func (db *DB) SetBlobMissing(ctx context.Context, sum string, at time.Time, audit filehub.AuditEntry) (changed bool, err error) {
	err = db.tx(ctx, "flag missing object", func(tx pgx.Tx) error {
		changed = false
		if err := lockContent(ctx, tx, sum); err != nil {
			return err
		}
		var (
			size    int64
			missing *time.Time
		)
		err := tx.QueryRow(ctx, `SELECT size, missing_since FROM blobs WHERE sha256 = $1 FOR UPDATE`, sum).Scan(&size, &missing)
		if errNoRows(err) {
			return filehub.Errorf(filehub.ENOTFOUND, "content %s not found", sum)
		}
		if err != nil {
			return mapError(ctx, "flag missing object", err)
		}
		if (missing != nil) == !at.IsZero() {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE blobs SET missing_since = $1 WHERE sha256 = $2`, optTime(at), sum); err != nil {
			return mapError(ctx, "flag missing object", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE files SET content_missing = $1 WHERE sha256 = $2`, !at.IsZero(), sum); err != nil {
			return mapError(ctx, "flag files", err)
		}
		a := audit
		a.TargetKind, a.Target, a.Bytes = filehub.TargetBlob, sum, size
		if err := insertAudit(ctx, tx, a); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return changed, nil
}

// AppendAudit appends entries to the audit log in one transaction.
func (db *DB) AppendAudit(ctx context.Context, entries ...filehub.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return db.tx(ctx, "append audit", func(tx pgx.Tx) error {
		for _, a := range entries {
			if err := insertAudit(ctx, tx, a); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListAudit returns audit entries in ID order; see filehub.AuditLog. A
// limit of 0 or less means 100, above 1000 is 1000.
func (db *DB) ListAudit(ctx context.Context, filter filehub.AuditFilter) ([]*filehub.AuditEntry, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	limit, err := paging.Limit(max(filter.Limit, 0))
	if err != nil {
		return nil, err
	}
	q := `SELECT id, time, actor, action, target_kind, target, bytes, reason, run_id FROM audit_log WHERE id > $1`
	args := []any{filter.AfterID}
	arg := func(cond string, v any) {
		args = append(args, v)
		q += ` AND ` + cond + ` $` + strconv.Itoa(len(args))
	}
	if !filter.Since.IsZero() {
		arg(`time >=`, filter.Since)
	}
	if filter.Action != "" {
		arg(`action =`, filter.Action)
	}
	if filter.RunID != 0 {
		arg(`run_id =`, filter.RunID)
	}
	args = append(args, limit)
	q += ` ORDER BY id LIMIT $` + strconv.Itoa(len(args))
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, mapError(ctx, "list audit", err)
	}
	defer rows.Close()
	var out []*filehub.AuditEntry
	for rows.Next() {
		var (
			a   filehub.AuditEntry
			run *int64
		)
		if err := rows.Scan(&a.ID, &a.Time, &a.Actor, &a.Action, &a.TargetKind, &a.Target, &a.Bytes, &a.Reason, &run); err != nil {
			return nil, mapError(ctx, "list audit", err)
		}
		a.Time = a.Time.UTC()
		if run != nil {
			a.RunID = *run
		}
		out = append(out, &a)
	}
	return out, mapError(ctx, "list audit", rows.Err())
}

// AppendEvent records e in the event log and sets its ID.
func (db *DB) AppendEvent(ctx context.Context, e *filehub.Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	var file, run []byte
	if e.File != nil {
		b, err := json.Marshal(e.File)
		if err != nil {
			return filehub.WrapError(filehub.EINTERNAL, "encode event", err)
		}
		file = b
	}
	if e.Run != nil {
		r := *e.Run
		r.Report = nil // events carry the summary only
		b, err := json.Marshal(&r)
		if err != nil {
			return filehub.WrapError(filehub.EINTERNAL, "encode event", err)
		}
		run = b
	}
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	var id int64
	err := db.tx(ctx, "append event", func(tx pgx.Tx) error {
		return mapError(ctx, "append event", tx.QueryRow(ctx,
			`WITH n AS (UPDATE log_counters SET last = last + 1 WHERE name = 'events' RETURNING last)
			 INSERT INTO events (id, type, time, file, run) SELECT last, $1, $2, $3, $4 FROM n RETURNING id`,
			e.Type, at, jsonArg(file), jsonArg(run)).Scan(&id))
	})
	if err != nil {
		return err
	}
	e.ID = id
	return nil
}

// countedKinds are the kinds whose counters cleanup_runs has columns for,
// in column order.
var countedKinds = func() []string {
	var kinds []string
	for _, k := range filehub.CleanupKinds {
		if filehub.CleanupRunCounts(k) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}()

// runCounterColumns returns the counter columns of kind, in CleanupCounts
// order.
func runCounterColumns(kind string) []string {
	return []string{kind + "_scanned", kind + "_found", kind + "_deleted", kind + "_bytes"}
}

// runColumns are the columns scanRun reads, in order.
var runColumns = func() string {
	cols := []string{"id", "trigger", "actor", "dry_run", "started_at", "finished_at", "status", "bytes_freed", "errors", "report"}
	for _, k := range countedKinds {
		cols = append(cols, runCounterColumns(k)...)
	}
	return strings.Join(cols, ", ")
}()

func scanRun(s scanner) (*filehub.CleanupRun, error) {
	var (
		r      filehub.CleanupRun
		report *string
		counts = make([]filehub.CleanupCounts, len(countedKinds))
	)
	dest := []any{&r.ID, &r.Trigger, &r.Actor, &r.DryRun, &r.StartedAt, &r.FinishedAt, &r.Status, &r.BytesFreed, &r.Errors, &report}
	for i := range counts {
		c := &counts[i]
		dest = append(dest, &c.Scanned, &c.Found, &c.Deleted, &c.Bytes)
	}
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	r.StartedAt = r.StartedAt.UTC()
	r.FinishedAt = utcPtr(r.FinishedAt)
	if report != nil {
		r.Report = json.RawMessage(*report)
	}
	r.Counts = make(map[string]filehub.CleanupCounts)
	for i, k := range countedKinds {
		if counts[i] != (filehub.CleanupCounts{}) {
			r.Counts[k] = counts[i]
		}
	}
	return &r, nil
}

// runValues returns the values of the mutable run columns in the order of
// setRunColumns.
func runValues(run *filehub.CleanupRun) []any {
	var report *string
	if run.Report != nil {
		s := string(run.Report)
		report = &s
	}
	v := []any{run.Status, run.FinishedAt, run.BytesFreed, run.Errors, report}
	for _, k := range countedKinds {
		c := run.Counts[k]
		v = append(v, c.Scanned, c.Found, c.Deleted, c.Bytes)
	}
	return v
}

// setRunColumns is the SET list for runValues, as $1..$n; the run's id is
// the next parameter.
var setRunColumns, setRunIDParam = func() (string, string) {
	cols := []string{"status", "finished_at", "bytes_freed", "errors", "report"}
	for _, k := range countedKinds {
		cols = append(cols, runCounterColumns(k)...)
	}
	for i, c := range cols {
		cols[i] = fmt.Sprintf("%s = $%d", c, i+1)
	}
	return strings.Join(cols, ", "), fmt.Sprintf("$%d", len(cols)+1)
}()

// InsertRun records a new cleanup run; see filehub.CleanupRunStore.
func (db *DB) InsertRun(ctx context.Context, run *filehub.CleanupRun) error {
	if err := run.Validate(); err != nil {
		return err
	}
	actor := run.Actor
	if actor == "" {
		actor = filehub.ActorSystem
	}
	var id int64
	err := db.tx(ctx, "insert cleanup run", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE cleanup_runs SET status = $1, finished_at = $2 WHERE status = $3`,
			filehub.RunInterrupted, run.StartedAt, filehub.RunRunning)
		if err != nil {
			return mapError(ctx, "interrupt stale runs", err)
		}
		err = tx.QueryRow(ctx, `INSERT INTO cleanup_runs (trigger, actor, dry_run, started_at, status)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, run.Trigger, actor, run.DryRun, run.StartedAt, run.Status).Scan(&id)
		if err != nil {
			return mapError(ctx, "insert cleanup run", err)
		}
		_, err = tx.Exec(ctx, `UPDATE cleanup_runs SET `+setRunColumns+` WHERE id = `+setRunIDParam, append(runValues(run), id)...)
		return mapError(ctx, "insert cleanup run", err)
	})
	if err != nil {
		return err
	}
	run.ID, run.Actor = id, actor
	return nil
}

// FinishRun stores a run's final state; see filehub.CleanupRunStore.
func (db *DB) FinishRun(ctx context.Context, run *filehub.CleanupRun) error {
	if err := run.Validate(); err != nil {
		return err
	}
	return db.tx(ctx, "finish cleanup run", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE cleanup_runs SET `+setRunColumns+` WHERE id = `+setRunIDParam, append(runValues(run), run.ID)...)
		if err != nil {
			return mapError(ctx, "finish cleanup run", err)
		}
		if tag.RowsAffected() == 0 {
			return filehub.Errorf(filehub.ENOTFOUND, "cleanup run %d not found", run.ID)
		}
		return nil
	})
}

// ListRuns returns the last cleanup runs, newest first. last <= 0 means 10.
func (db *DB) ListRuns(ctx context.Context, last int) ([]*filehub.CleanupRun, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	if last <= 0 {
		last = 10
	}
	rows, err := db.pool.Query(ctx, `SELECT `+runColumns+` FROM cleanup_runs ORDER BY id DESC LIMIT $1`, min(last, paging.MaxLimit))
	if err != nil {
		return nil, mapError(ctx, "list cleanup runs", err)
	}
	defer rows.Close()
	var out []*filehub.CleanupRun
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, mapError(ctx, "list cleanup runs", err)
		}
		out = append(out, r)
	}
	return out, mapError(ctx, "list cleanup runs", rows.Err())
}

// FindRun returns the cleanup run with the given ID, or ENOTFOUND.
func (db *DB) FindRun(ctx context.Context, id int64) (*filehub.CleanupRun, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	r, err := scanRun(db.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM cleanup_runs WHERE id = $1`, id))
	if errNoRows(err) {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "cleanup run %d not found", id)
	}
	if err != nil {
		return nil, mapError(ctx, "find cleanup run", err)
	}
	return r, nil
}

// Settings returns the stored cleanup settings.
func (db *DB) Settings(ctx context.Context) (map[string]string, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	rows, err := db.pool.Query(ctx, `SELECT key, value FROM cleanup_settings`)
	if err != nil {
		return nil, mapError(ctx, "read cleanup settings", err)
	}
	defer rows.Close()
	out := make(map[string]string)
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, mapError(ctx, "read cleanup settings", err)
		}
		out[k] = v
	}
	return out, mapError(ctx, "read cleanup settings", rows.Err())
}

// SetSettings stores cleanup settings and audits each; see
// filehub.SettingsStore. Keys are written in sorted order, so concurrent
// calls lock their rows in the same order.
func (db *DB) SetSettings(ctx context.Context, kv map[string]string, actor string, at time.Time) error {
	keys := slices.Sorted(maps.Keys(kv))
	return db.tx(ctx, "set cleanup settings", func(tx pgx.Tx) error {
		for _, k := range keys {
			_, err := tx.Exec(ctx, `INSERT INTO cleanup_settings (key, value) VALUES ($1, $2)
				ON CONFLICT (key) DO UPDATE SET value = excluded.value`, k, kv[k])
			if err != nil {
				return mapError(ctx, "set cleanup setting", err)
			}
		}
		// Audit last: appends hold the audit counter's lock until commit.
		for _, k := range keys {
			err := insertAudit(ctx, tx, filehub.AuditEntry{
				Time: at, Actor: actor, Action: filehub.AuditSettingChanged,
				TargetKind: filehub.TargetSetting, Target: k, Reason: fmt.Sprintf("%s=%s", k, kv[k]),
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// AcquireLease takes or renews a lease; see filehub.LeaseStore. Leases
// are rows, so they hold across processes and connections: the upsert
// takes the row's lock, and of two processes racing for a free or expired
// lease the second re-evaluates the condition against the first's row and
// fails. now comes from the caller, so the processes' clocks must agree to
// within the lease's TTL. The upsert also waits for the share locks of
// fenced steps (checkFence), so a tenure never changes under one.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (f filehub.Fence, ok bool, err error) {
	if name == "" || holder == "" {
		return filehub.Fence{}, false, filehub.Errorf(filehub.EINVALID, "lease name and holder are required")
	}
	f.Name = name
	err = db.tx(ctx, "acquire lease", func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO leases (name, holder, expires_at, generation) VALUES ($1, $2, $3, 1)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
			  generation = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > $4
			    THEN leases.generation ELSE leases.generation + 1 END
			  WHERE leases.holder = excluded.holder OR leases.expires_at <= $4
			RETURNING holder, generation`, name, holder, now.Add(ttl), now).Scan(&f.Holder, &f.Generation)
		if errNoRows(err) {
			ok = false
			err := tx.QueryRow(ctx, `SELECT holder, generation FROM leases WHERE name = $1`, name).Scan(&f.Holder, &f.Generation)
			return mapError(ctx, "read lease", err)
		}
		if err != nil {
			return mapError(ctx, "acquire lease", err)
		}
		ok = true
		return nil
	})
	if err != nil {
		return filehub.Fence{}, false, err
	}
	return f, ok, nil
}

// RenewLease extends a current tenure; see filehub.LeaseStore.
func (db *DB) RenewLease(ctx context.Context, f filehub.Fence, now time.Time, ttl time.Duration) error {
	if err := filehub.CheckFenceArg(f); err != nil {
		return err
	}
	return db.tx(ctx, "renew lease", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE leases SET expires_at = $1 WHERE name = $2 AND holder = $3 AND generation = $4`,
			now.Add(ttl), f.Name, f.Holder, f.Generation)
		if err != nil {
			return mapError(ctx, "renew lease", err)
		}
		if tag.RowsAffected() == 0 {
			return filehub.LeaseLostError(f)
		}
		return nil
	})
}

// ReleaseLease gives up a lease held by holder. The row stays, expired and
// without a holder, so that the generation keeps growing.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	return db.tx(ctx, "release lease", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE leases SET holder = '', expires_at = 'epoch' WHERE name = $1 AND holder = $2`, name, holder)
		return mapError(ctx, "release lease", err)
	})
}

// Fenced calls fn in a transaction holding a share lock of the current
// tenure's lease row; see filehub.LeaseStore.
func (db *DB) Fenced(ctx context.Context, f filehub.Fence, fn func(ctx context.Context) error) error {
	if err := filehub.CheckFenceArg(f); err != nil {
		return err
	}
	return db.tx(ctx, "fenced step", func(tx pgx.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		return fn(ctx)
	})
}

// checkFence returns ErrLeaseLost unless f is the current tenure of its
// lease, and otherwise share-locks the lease row until the transaction
// ends: an acquisition by another holder (an upsert of the row) waits for
// the step to commit or roll back, so no other run starts in the middle of
// it.
func checkFence(ctx context.Context, tx pgx.Tx, f filehub.Fence) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND generation = $3 FOR SHARE`,
		f.Name, f.Holder, f.Generation).Scan(&one)
	if errNoRows(err) {
		return filehub.LeaseLostError(f)
	}
	return mapError(ctx, "check lease", err)
}
