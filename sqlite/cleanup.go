package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/paging"
)

// DB is also the cleanup service's store: every capability of it.
var (
	_ filehub.AuditLog        = (*DB)(nil)
	_ filehub.EventAppender   = (*DB)(nil)
	_ filehub.CleanupRunStore = (*DB)(nil)
	_ filehub.SettingsStore   = (*DB)(nil)
	_ filehub.LeaseStore      = (*DB)(nil)
	_ filehub.TrashPurger     = (*DB)(nil)
	_ filehub.BlobSweeper     = (*DB)(nil)
	_ filehub.CleanupStore    = (*DB)(nil)
)

// blobColumns are the columns scanBlob reads, in order.
const blobColumns = `sha256, size, ref_count, created_at, unreferenced_since, marked_at, missing_since`

func scanBlob(s scanner) (*filehub.Blob, error) {
	var (
		b                      filehub.Blob
		created                int64
		unref, marked, missing sql.NullInt64
	)
	if err := s.Scan(&b.SHA256, &b.Size, &b.RefCount, &created, &unref, &marked, &missing); err != nil {
		return nil, err
	}
	b.CreatedAt = fromNanos(created)
	b.UnreferencedSince = nullTime(unref)
	b.MarkedAt = nullTime(marked)
	b.MissingSince = nullTime(missing)
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

func insertAudit(ctx context.Context, tx *wtx, a filehub.AuditEntry) error {
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	if a.Actor == "" {
		a.Actor = filehub.ActorSystem
	}
	if err := a.Validate(); err != nil {
		return err
	}
	run := sql.NullInt64{Int64: a.RunID, Valid: a.RunID != 0}
	_, err := tx.exec(ctx, `INSERT INTO audit_log (time, actor, action, target_kind, target, bytes, reason, run_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		nanos(a.Time), a.Actor, a.Action, a.TargetKind, a.Target, a.Bytes, a.Reason, run)
	return mapError(ctx, "append audit entry", err)
}

// ListExpiredTrash returns soft-deleted files due for purging; see
// filehub.TrashPurger. A limit of 0 or less means all.
func (db *DB) ListExpiredTrash(ctx context.Context, before time.Time, limit int) ([]*filehub.File, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := db.rdb.QueryContext(ctx, `SELECT `+fileColumns+` FROM files
		WHERE purge_after IS NOT NULL AND purge_after <= ? AND deleted_at IS NOT NULL
		ORDER BY purge_after, id LIMIT ?`, nanos(before), limit)
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
		`DELETE FROM files WHERE id = ? AND deleted_at IS NOT NULL AND purge_after <= ? RETURNING `+fileColumns,
		[]any{id, nanos(at)}, at, audit,
		func(wctx context.Context, tx *wtx) error {
			// Tell "gone" from "restored or postponed" for the report.
			var n int
			err := tx.queryRow(wctx, `SELECT count(*) FROM files WHERE id = ?`, id).Scan(&n)
			if err != nil {
				return mapError(wctx, "purge file", err)
			}
			if n > 0 {
				return filehub.Errorf(filehub.ECONFLICT, "file %s is no longer due for purging", id)
			}
			return filehub.Errorf(filehub.ENOTFOUND, "file %s not found", id)
		})
}

// ListBlobs returns a page of blob records in SHA256 order; see
// filehub.BlobSweeper. A limit of 0 or less means 1000; there is no upper
// cap, so scans can take large pages.
func (db *DB) ListBlobs(ctx context.Context, after string, limit int) ([]*filehub.Blob, error) {
	return db.listBlobs(ctx, `SELECT `+blobColumns+` FROM blobs WHERE sha256 > ? ORDER BY sha256 LIMIT ?`, after, limit)
}

// ListUnreferencedBlobs returns a page of blobs unreferenced since before;
// see filehub.BlobSweeper.
//
// INDEXED BY: left to itself, SQLite answers the query from the sum order
// (the table's key) to spare a sort for the ORDER BY, and looks at every
// blob from after on until it has a page: about 0.3 s per 100,000 blobs for
// 100 results. The partial index holds only the unreferenced blobs, so the
// sort it needs is of those alone (under 1 ms for the same 100).
func (db *DB) ListUnreferencedBlobs(ctx context.Context, before time.Time, after string, limit int) ([]*filehub.Blob, error) {
	return db.listBlobs(ctx, `SELECT `+blobColumns+` FROM blobs INDEXED BY blobs_unreferenced_since
		WHERE unreferenced_since IS NOT NULL AND unreferenced_since <= ? AND ref_count = 0 AND sha256 > ?
		ORDER BY sha256 LIMIT ?`, nanos(before), after, limit)
}

func (db *DB) listBlobs(ctx context.Context, q string, args ...any) ([]*filehub.Blob, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	if limit := args[len(args)-1].(int); limit <= 0 {
		args[len(args)-1] = paging.MaxLimit
	}
	rows, err := db.rdb.QueryContext(ctx, q, args...)
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
	err := db.rdb.QueryRowContext(ctx, `SELECT count(*) FROM blobs`).Scan(&n)
	return n, mapError(ctx, "count blobs", err)
}

// MarkBlobs marks unreferenced blobs for the sweep; see
// filehub.BlobSweeper.
func (db *DB) MarkBlobs(ctx context.Context, sums []string, at time.Time) (int64, error) {
	var marked int64
	err := db.write(ctx, "mark blobs", func(wctx context.Context, tx *wtx) error {
		marked = 0
		for _, sum := range sums {
			res, err := tx.exec(wctx, `UPDATE blobs SET marked_at = ?
				WHERE sha256 = ? AND ref_count = 0 AND marked_at IS NULL`, nanos(at), sum)
			if err != nil {
				return mapError(wctx, "mark blob", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return mapError(wctx, "mark blob", err)
			}
			marked += n
		}
		return nil
	})
	return marked, err
}

// SweepBlob deletes a marked, still unreferenced blob and its object; see
// filehub.BlobSweeper. del runs in the writer, inside the transaction that
// deletes the record: a concurrent CreateFile of the same content runs
// entirely before it (and the re-check sees its reference) or entirely
// after it (and finds no record, so it inserts one and places the object
// again from its staged copy). If del succeeds but the commit fails, the
// record stays without its object; the next CreateFile of the content
// revives it and, being a revival, calls place.
func (db *DB) SweepBlob(ctx context.Context, f filehub.Fence, sum string, before time.Time, del func(ctx context.Context) error,
	audit filehub.AuditEntry) (swept bool, err error) {
	if err := filehub.CheckFenceArg(f); err != nil {
		return false, err
	}
	err = db.write(ctx, "sweep blob", func(wctx context.Context, tx *wtx) error {
		swept = false
		if err := checkFence(wctx, tx, f); err != nil {
			return err
		}
		var size int64
		err := tx.queryRow(wctx, `SELECT size FROM blobs WHERE sha256 = ? AND ref_count = 0
			AND marked_at IS NOT NULL AND unreferenced_since IS NOT NULL AND unreferenced_since <= ?`,
			sum, nanos(before)).Scan(&size)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return mapError(wctx, "sweep blob", err)
		}
		if _, err := tx.exec(wctx, `DELETE FROM blobs WHERE sha256 = ?`, sum); err != nil {
			return mapError(wctx, "sweep blob", err)
		}
		if err := del(ctx); err != nil {
			return err
		}
		a := audit
		a.TargetKind, a.Target, a.Bytes = filehub.TargetBlob, sum, size
		if err := insertAudit(wctx, tx, a); err != nil {
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
// filehub.BlobSweeper. The check and del run in the writer, so an upload
// that records the same content either commits first (and the object is
// kept) or after (and its place callback re-creates the object).
func (db *DB) DeleteOrphanObject(ctx context.Context, f filehub.Fence, sum string, del func(ctx context.Context) error,
	audit filehub.AuditEntry) (deleted bool, err error) {
	if err := filehub.CheckFenceArg(f); err != nil {
		return false, err
	}
	err = db.write(ctx, "delete orphan object", func(wctx context.Context, tx *wtx) error {
		deleted = false
		if err := checkFence(wctx, tx, f); err != nil {
			return err
		}
		var n int
		if err := tx.queryRow(wctx, `SELECT count(*) FROM blobs WHERE sha256 = ?`, sum).Scan(&n); err != nil {
			return mapError(wctx, "delete orphan object", err)
		}
		if n > 0 {
			return nil
		}
		if err := del(ctx); err != nil {
			return err
		}
		a := audit
		a.TargetKind, a.Target = filehub.TargetBlob, sum
		if err := insertAudit(wctx, tx, a); err != nil {
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
	err = db.write(ctx, "flag missing object", func(wctx context.Context, tx *wtx) error {
		changed = false
		var (
			size    int64
			missing sql.NullInt64
		)
		err := tx.queryRow(wctx, `SELECT size, missing_since FROM blobs WHERE sha256 = ?`, sum).Scan(&size, &missing)
		if errors.Is(err, sql.ErrNoRows) {
			return filehub.Errorf(filehub.ENOTFOUND, "content %s not found", sum)
		}
		if err != nil {
			return mapError(wctx, "flag missing object", err)
		}
		if missing.Valid == !at.IsZero() {
			return nil
		}
		flag := 0
		if !at.IsZero() {
			flag = 1
		}
		if _, err := tx.exec(wctx, `UPDATE blobs SET missing_since = ? WHERE sha256 = ?`, nullNanos(optTime(at)), sum); err != nil {
			return mapError(wctx, "flag missing object", err)
		}
		if _, err := tx.exec(wctx, `UPDATE files SET content_missing = ? WHERE sha256 = ?`, flag, sum); err != nil {
			return mapError(wctx, "flag files", err)
		}
		a := audit
		a.TargetKind, a.Target, a.Bytes = filehub.TargetBlob, sum, size
		if err := insertAudit(wctx, tx, a); err != nil {
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

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// AppendAudit appends entries to the audit log in one transaction.
func (db *DB) AppendAudit(ctx context.Context, entries ...filehub.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return db.write(ctx, "append audit", func(wctx context.Context, tx *wtx) error {
		for _, a := range entries {
			if err := insertAudit(wctx, tx, a); err != nil {
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
	q := `SELECT id, time, actor, action, target_kind, target, bytes, reason, run_id FROM audit_log WHERE id > ?`
	args := []any{filter.AfterID}
	if !filter.Since.IsZero() {
		q += ` AND time >= ?`
		args = append(args, nanos(filter.Since))
	}
	if filter.Action != "" {
		q += ` AND action = ?`
		args = append(args, filter.Action)
	}
	if filter.RunID != 0 {
		q += ` AND run_id = ?`
		args = append(args, filter.RunID)
	}
	q += ` ORDER BY id LIMIT ?`
	args = append(args, limit)
	rows, err := db.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapError(ctx, "list audit", err)
	}
	defer rows.Close()
	var out []*filehub.AuditEntry
	for rows.Next() {
		var (
			a   filehub.AuditEntry
			at  int64
			run sql.NullInt64
		)
		if err := rows.Scan(&a.ID, &at, &a.Actor, &a.Action, &a.TargetKind, &a.Target, &a.Bytes, &a.Reason, &run); err != nil {
			return nil, mapError(ctx, "list audit", err)
		}
		a.Time, a.RunID = fromNanos(at), run.Int64
		out = append(out, &a)
	}
	return out, mapError(ctx, "list audit", rows.Err())
}

// AppendEvent records e in the event log and sets its ID.
func (db *DB) AppendEvent(ctx context.Context, e *filehub.Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	var file, run sql.NullString
	if e.File != nil {
		b, err := json.Marshal(e.File)
		if err != nil {
			return filehub.WrapError(filehub.EINTERNAL, "encode event", err)
		}
		file = sql.NullString{String: string(b), Valid: true}
	}
	if e.Run != nil {
		r := *e.Run
		r.Report = nil // events carry the summary only
		b, err := json.Marshal(&r)
		if err != nil {
			return filehub.WrapError(filehub.EINTERNAL, "encode event", err)
		}
		run = sql.NullString{String: string(b), Valid: true}
	}
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	var id int64
	err := db.write(ctx, "append event", func(wctx context.Context, tx *wtx) error {
		return mapError(wctx, "append event", tx.queryRow(wctx,
			`INSERT INTO events (type, time, file, run) VALUES (?, ?, ?, ?) RETURNING id`,
			e.Type, nanos(at), file, run).Scan(&id))
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
		r        filehub.CleanupRun
		started  int64
		finished sql.NullInt64
		report   sql.NullString
		counts   = make([]filehub.CleanupCounts, len(countedKinds))
	)
	dest := []any{&r.ID, &r.Trigger, &r.Actor, &r.DryRun, &started, &finished, &r.Status, &r.BytesFreed, &r.Errors, &report}
	for i := range counts {
		c := &counts[i]
		dest = append(dest, &c.Scanned, &c.Found, &c.Deleted, &c.Bytes)
	}
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	r.StartedAt = fromNanos(started)
	r.FinishedAt = nullTime(finished)
	if report.Valid {
		r.Report = json.RawMessage(report.String)
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
	var report sql.NullString
	if run.Report != nil {
		report = sql.NullString{String: string(run.Report), Valid: true}
	}
	v := []any{run.Status, nullNanos(run.FinishedAt), run.BytesFreed, run.Errors, report}
	for _, k := range countedKinds {
		c := run.Counts[k]
		v = append(v, c.Scanned, c.Found, c.Deleted, c.Bytes)
	}
	return v
}

var setRunColumns = func() string {
	cols := []string{"status = ?", "finished_at = ?", "bytes_freed = ?", "errors = ?", "report = ?"}
	for _, k := range countedKinds {
		for _, c := range runCounterColumns(k) {
			cols = append(cols, c+" = ?")
		}
	}
	return strings.Join(cols, ", ")
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
	err := db.write(ctx, "insert cleanup run", func(wctx context.Context, tx *wtx) error {
		_, err := tx.exec(wctx, `UPDATE cleanup_runs SET status = ?, finished_at = ? WHERE status = ?`,
			filehub.RunInterrupted, nanos(run.StartedAt), filehub.RunRunning)
		if err != nil {
			return mapError(wctx, "interrupt stale runs", err)
		}
		err = tx.queryRow(wctx, `INSERT INTO cleanup_runs (trigger, actor, dry_run, started_at, status)
			VALUES (?, ?, ?, ?, ?) RETURNING id`, run.Trigger, actor, run.DryRun, nanos(run.StartedAt), run.Status).Scan(&id)
		if err != nil {
			return mapError(wctx, "insert cleanup run", err)
		}
		_, err = tx.exec(wctx, `UPDATE cleanup_runs SET `+setRunColumns+` WHERE id = ?`, append(runValues(run), id)...)
		return mapError(wctx, "insert cleanup run", err)
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
	return db.write(ctx, "finish cleanup run", func(wctx context.Context, tx *wtx) error {
		res, err := tx.exec(wctx, `UPDATE cleanup_runs SET `+setRunColumns+` WHERE id = ?`, append(runValues(run), run.ID)...)
		if err != nil {
			return mapError(wctx, "finish cleanup run", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return mapError(wctx, "finish cleanup run", err)
		} else if n == 0 {
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
	rows, err := db.rdb.QueryContext(ctx, `SELECT `+runColumns+` FROM cleanup_runs ORDER BY id DESC LIMIT ?`, min(last, paging.MaxLimit))
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
	r, err := scanRun(db.rdb.QueryRowContext(ctx, `SELECT `+runColumns+` FROM cleanup_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
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
	rows, err := db.rdb.QueryContext(ctx, `SELECT key, value FROM cleanup_settings`)
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
// filehub.SettingsStore.
func (db *DB) SetSettings(ctx context.Context, kv map[string]string, actor string, at time.Time) error {
	return db.write(ctx, "set cleanup settings", func(wctx context.Context, tx *wtx) error {
		for _, k := range slices.Sorted(maps.Keys(kv)) {
			_, err := tx.exec(wctx, `INSERT INTO cleanup_settings (key, value) VALUES (?, ?)
				ON CONFLICT (key) DO UPDATE SET value = excluded.value`, k, kv[k])
			if err != nil {
				return mapError(wctx, "set cleanup setting", err)
			}
			err = insertAudit(wctx, tx, filehub.AuditEntry{
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

// AcquireLease takes or renews a lease; see filehub.LeaseStore. The
// upsert runs in the writer, and other processes' writers are excluded by
// SQLite's write lock, so two holders can never both succeed. The
// generation grows unless the holder renews an unexpired tenure of its own.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (f filehub.Fence, ok bool, err error) {
	if name == "" || holder == "" {
		return filehub.Fence{}, false, filehub.Errorf(filehub.EINVALID, "lease name and holder are required")
	}
	f.Name = name
	err = db.write(ctx, "acquire lease", func(wctx context.Context, tx *wtx) error {
		err := tx.queryRow(wctx, `INSERT INTO leases (name, holder, expires_at, generation) VALUES (?, ?, ?, 1)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
			  generation = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > ?
			    THEN leases.generation ELSE leases.generation + 1 END
			  WHERE leases.holder = excluded.holder OR leases.expires_at <= ?
			RETURNING holder, generation`, name, holder, nanos(now.Add(ttl)), nanos(now), nanos(now)).Scan(&f.Holder, &f.Generation)
		if errors.Is(err, sql.ErrNoRows) {
			ok = false
			err := tx.queryRow(wctx, `SELECT holder, generation FROM leases WHERE name = ?`, name).Scan(&f.Holder, &f.Generation)
			return mapError(wctx, "read lease", err)
		}
		if err != nil {
			return mapError(wctx, "acquire lease", err)
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
	return db.write(ctx, "renew lease", func(wctx context.Context, tx *wtx) error {
		res, err := tx.exec(wctx, `UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND generation = ?`,
			nanos(now.Add(ttl)), f.Name, f.Holder, f.Generation)
		if err != nil {
			return mapError(wctx, "renew lease", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return mapError(wctx, "renew lease", err)
		} else if n == 0 {
			return filehub.LeaseLostError(f)
		}
		return nil
	})
}

// ReleaseLease gives up a lease held by holder. The row stays, expired and
// without a holder, so that the generation keeps growing.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	return db.write(ctx, "release lease", func(wctx context.Context, tx *wtx) error {
		_, err := tx.exec(wctx, `UPDATE leases SET holder = '', expires_at = 0 WHERE name = ? AND holder = ?`, name, holder)
		return mapError(wctx, "release lease", err)
	})
}

// Fenced calls fn in the writer once f is checked; see filehub.LeaseStore.
// The writer is SQLite's only one, so no acquisition can run until fn
// returns; the cost is that other writes wait for fn too, which is why the
// cleanup service only fences single deletions with it.
func (db *DB) Fenced(ctx context.Context, f filehub.Fence, fn func(ctx context.Context) error) error {
	if err := filehub.CheckFenceArg(f); err != nil {
		return err
	}
	return db.write(ctx, "fenced step", func(wctx context.Context, tx *wtx) error {
		if err := checkFence(wctx, tx, f); err != nil {
			return err
		}
		return fn(ctx)
	})
}

// checkFence returns ErrLeaseLost unless f is the current tenure of its
// lease. In the writer, nothing can change that before the transaction
// ends.
func checkFence(ctx context.Context, tx *wtx, f filehub.Fence) error {
	var n int
	err := tx.queryRow(ctx, `SELECT count(*) FROM leases WHERE name = ? AND holder = ? AND generation = ?`,
		f.Name, f.Holder, f.Generation).Scan(&n)
	if err != nil {
		return mapError(ctx, "check lease", err)
	}
	if n == 0 {
		return filehub.LeaseLostError(f)
	}
	return nil
}
