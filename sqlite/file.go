package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/paging"
)

// fileColumns are the columns scanFile reads, in order.
const fileColumns = `id, name, size, sha256, content_type, created_at, deleted_at, purge_after, owner_key_id, content_missing`

// CreateFile records f and its file.created event; see filehub.MetaStore.
// The request joins the writer's next group commit (see the package doc) and
// returns once that batch is durable.
//
// place is called, with ctx, when no blob record existed for f.SHA256, and
// also when one existed with a reference count of zero (all its files were
// purged and the cleanup service has not removed it yet): such a revival
// clears the blob's mark, so a cleanup sweep that has not run yet skips it,
// and place makes sure the object is there even if an earlier sweep deleted
// the object but failed to commit the record's deletion. For a staged blob
// that already committed its object, place is a stat. deduplicated is true
// for a revival. If place fails, nothing is recorded and its error is
// returned unchanged. A nil place is not called.
//
// CreateFile returns EINVALID if f is incomplete or its size differs from the
// size recorded for its blob, ECONFLICT if a file with f.ID exists.
func (db *DB) CreateFile(ctx context.Context, f *filehub.File, place filehub.PlaceFunc) (deduplicated bool, err error) {
	if err := f.Validate(); err != nil {
		return false, err
	}
	snap := *f
	snap.CreatedAt = snap.CreatedAt.UTC()
	snap.DeletedAt, snap.PurgeAfter = nil, nil
	// Marshal before queueing: the writer goroutine is the bottleneck.
	snapJSON, err := json.Marshal(&snap)
	if err != nil {
		return false, filehub.WrapError(filehub.EINTERNAL, "encode file", err)
	}
	created := nanos(snap.CreatedAt)
	now := nanos(time.Now())

	err = db.write(ctx, "create file", func(wctx context.Context, tx *wtx) error {
		// Insert-or-nothing, then increment: the writer holds SQLite's write
		// lock for the whole batch, so nothing can slip in between, and
		// RowsAffected tells whether this request created the record.
		res, err := tx.exec(wctx, qInsertBlob, snap.SHA256, snap.Size, created)
		if err != nil {
			return mapError(wctx, "insert blob", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return mapError(wctx, "insert blob", err)
		}
		if n == 1 {
			if place != nil {
				if err := place(ctx); err != nil {
					return err
				}
			}
		} else {
			deduplicated = true
			var size, refs int64
			err := tx.queryRow(wctx, qRefBlob, snap.SHA256).Scan(&size, &refs)
			if err != nil {
				return mapError(wctx, "reference blob", err)
			}
			if size != snap.Size {
				return filehub.Errorf(filehub.EINVALID,
					"size %d does not match the stored size %d of content %s", snap.Size, size, snap.SHA256)
			}
			if refs == 1 && place != nil {
				// A revival; see the doc comment.
				if err := place(ctx); err != nil {
					return err
				}
			}
		}
		_, err = tx.exec(wctx, qInsertFile, snap.ID, snap.Name, snap.Size, snap.SHA256, snap.ContentType, created, snap.OwnerKeyID)
		if err != nil {
			if filehub.ErrorCode(mapError(wctx, "", err)) == filehub.ECONFLICT {
				return filehub.WrapError(filehub.ECONFLICT, fmt.Sprintf("file %s already exists", snap.ID), err)
			}
			return mapError(wctx, "insert file", err)
		}
		return insertEvent(wctx, tx, filehub.EventFileCreated, now, snapJSON)
	})
	if err != nil {
		return false, err
	}
	return deduplicated, nil
}

// FindFile returns the file with the given ID, soft-deleted or not. It
// returns ENOTFOUND if there is none.
func (db *DB) FindFile(ctx context.Context, id string) (*filehub.File, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	f, err := scanFile(db.rdb.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM files WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "file %s not found", id)
	}
	if err != nil {
		return nil, mapError(ctx, "find file", err)
	}
	return f, nil
}

// ListFiles returns files in creation order; see filehub.MetaStore. A limit
// of 0 means 100, a limit above 1000 is capped at 1000. The cursor is the
// base64url encoding of the position of the page's last file, so pages stay
// stable while files are added, deleted or purged. It returns EINVALID for
// a malformed cursor or a negative limit.
func (db *DB) ListFiles(ctx context.Context, filter filehub.FileFilter) ([]*filehub.File, string, error) {
	if db.closed.Load() {
		return nil, "", errClosed
	}
	limit, err := paging.Limit(filter.Limit)
	if err != nil {
		return nil, "", err
	}
	after, err := paging.DecodeCursor(filter.Cursor)
	if err != nil {
		return nil, "", err
	}
	q := `SELECT seq, ` + fileColumns + ` FROM files WHERE seq > ?`
	if !filter.IncludeDeleted {
		q += ` AND deleted_at IS NULL`
	}
	q += ` ORDER BY seq LIMIT ?`
	// One row more than asked tells whether there is a next page.
	rows, err := db.rdb.QueryContext(ctx, q, after, limit+1)
	if err != nil {
		return nil, "", mapError(ctx, "list files", err)
	}
	defer rows.Close()
	var (
		files = make([]*filehub.File, 0, min(limit, 64))
		seqs  []int64
	)
	for rows.Next() {
		var seq int64
		f, err := scanFile(rows, &seq)
		if err != nil {
			return nil, "", mapError(ctx, "list files", err)
		}
		files = append(files, f)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, "", mapError(ctx, "list files", err)
	}
	if len(files) <= limit {
		return files, "", nil
	}
	files = files[:limit]
	return files, paging.EncodeCursor(seqs[limit-1]), nil
}

// SoftDeleteFile marks a live file deleted; see filehub.MetaStore. It
// records who deleted it and why (filehub.ActorFromContext and
// ReasonFromContext of ctx) in the file and in an audit entry, in the same
// transaction. It returns ENOTFOUND if no live file has that ID and
// EINVALID if at or purgeAfter is zero.
func (db *DB) SoftDeleteFile(ctx context.Context, id string, at, purgeAfter time.Time) (*filehub.File, error) {
	if at.IsZero() || purgeAfter.IsZero() {
		return nil, filehub.Errorf(filehub.EINVALID, "deletion and purge times are required")
	}
	actor, reason := filehub.ActorFromContext(ctx), filehub.ReasonFromContext(ctx)
	var f *filehub.File
	err := db.write(ctx, "delete file", func(wctx context.Context, tx *wtx) error {
		var err error
		f, err = scanFile(tx.queryRow(wctx,
			`UPDATE files SET deleted_at = ?, purge_after = ?, deleted_by = ?, delete_reason = ?
			 WHERE id = ? AND deleted_at IS NULL RETURNING `+fileColumns,
			nanos(at), nanos(purgeAfter), actor, reason, id))
		if errors.Is(err, sql.ErrNoRows) {
			return filehub.Errorf(filehub.ENOTFOUND, "file %s not found", id)
		}
		if err != nil {
			return mapError(wctx, "delete file", err)
		}
		if err := insertAudit(wctx, tx, fileAudit(ctx, filehub.AuditFileDeleted, f, at)); err != nil {
			return err
		}
		return insertFileEvent(wctx, tx, filehub.EventFileDeleted, f)
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// RestoreFile undoes a soft delete; see filehub.MetaStore. Like
// SoftDeleteFile it appends an audit entry with the actor and reason of
// ctx. It returns ENOTFOUND if no soft-deleted file has that ID.
func (db *DB) RestoreFile(ctx context.Context, id string) (*filehub.File, error) {
	var f *filehub.File
	err := db.write(ctx, "restore file", func(wctx context.Context, tx *wtx) error {
		var err error
		f, err = scanFile(tx.queryRow(wctx,
			`UPDATE files SET deleted_at = NULL, purge_after = NULL, deleted_by = NULL, delete_reason = NULL
			 WHERE id = ? AND deleted_at IS NOT NULL RETURNING `+fileColumns, id))
		if errors.Is(err, sql.ErrNoRows) {
			return filehub.Errorf(filehub.ENOTFOUND, "deleted file %s not found", id)
		}
		if err != nil {
			return mapError(wctx, "restore file", err)
		}
		if err := insertAudit(wctx, tx, fileAudit(ctx, filehub.AuditFileRestored, f, time.Now())); err != nil {
			return err
		}
		return insertFileEvent(wctx, tx, filehub.EventFileRestored, f)
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// PurgeFile removes the file record for good; see filehub.MetaStore. Like
// SoftDeleteFile it appends an audit entry with the actor and reason of
// ctx. It returns the file as it was, and ENOTFOUND if there is no such
// file.
func (db *DB) PurgeFile(ctx context.Context, id string) (*filehub.File, error) {
	now := time.Now()
	audit := fileAudit(ctx, filehub.AuditFilePurged, nil, now)
	return db.purge(ctx, nil, id, `DELETE FROM files WHERE id = ? RETURNING `+fileColumns, []any{id}, now, audit,
		func(context.Context, *wtx) error { return filehub.Errorf(filehub.ENOTFOUND, "file %s not found", id) })
}

// purge runs del (a DELETE ... RETURNING fileColumns statement with args),
// dereferences the file's blob (unreferenced since `at` when its count drops
// to zero), appends audit for the file and records a file.purged event, in
// one write request. notFound gives the error when del deletes nothing. A
// non-nil fence is checked first (the cleanup's purge of expired trash).
func (db *DB) purge(ctx context.Context, fence *filehub.Fence, id, del string, args []any, at time.Time, audit filehub.AuditEntry,
	notFound func(ctx context.Context, tx *wtx) error) (*filehub.File, error) {
	var f *filehub.File
	err := db.write(ctx, "purge file", func(wctx context.Context, tx *wtx) error {
		if fence != nil {
			if err := checkFence(wctx, tx, *fence); err != nil {
				return err
			}
		}
		var err error
		f, err = scanFile(tx.queryRow(wctx, del, args...))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(wctx, tx)
		}
		if err != nil {
			return mapError(wctx, "purge file", err)
		}
		// The right-hand sides see the values before the update.
		_, err = tx.exec(wctx,
			`UPDATE blobs SET ref_count = ref_count - 1,
			   unreferenced_since = CASE WHEN ref_count = 1 THEN ? ELSE unreferenced_since END
			 WHERE sha256 = ?`, nanos(at), f.SHA256)
		if err != nil {
			return mapError(wctx, "dereference blob", err)
		}
		a := audit
		a.TargetKind, a.Target, a.Bytes = filehub.TargetFile, f.ID, f.Size
		if err := insertAudit(wctx, tx, a); err != nil {
			return err
		}
		return insertFileEvent(wctx, tx, filehub.EventFilePurged, f)
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// FindBlob returns the blob record for sum. It returns ENOTFOUND if there
// is none.
func (db *DB) FindBlob(ctx context.Context, sum string) (*filehub.Blob, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	b, err := scanBlob(db.readQueryRow(ctx, `SELECT `+blobColumns+` FROM blobs WHERE sha256 = ?`, sum))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "content %s not found", sum)
	}
	if err != nil {
		return nil, mapError(ctx, "find blob", err)
	}
	return b, nil
}

// ListEvents returns up to limit events with ID > afterID, in ID order. A
// limit of 0 or less means 100, a limit above 1000 is capped at 1000.
func (db *DB) ListEvents(ctx context.Context, afterID int64, limit int) ([]*filehub.Event, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	if limit <= 0 {
		limit = paging.DefaultLimit
	}
	limit = min(limit, paging.MaxLimit)
	rows, err := db.readQuery(ctx,
		`SELECT id, type, time, file, run FROM events WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, mapError(ctx, "list events", err)
	}
	defer rows.Close()
	var events []*filehub.Event
	for rows.Next() {
		var (
			e    filehub.Event
			at   int64
			file []byte
			run  []byte
		)
		if err := rows.Scan(&e.ID, &e.Type, &at, &file, &run); err != nil {
			return nil, mapError(ctx, "list events", err)
		}
		e.Time = fromNanos(at)
		if file != nil {
			e.File = new(filehub.File)
			if err := json.Unmarshal(file, e.File); err != nil {
				return nil, filehub.WrapError(filehub.EINTERNAL, "decode event",
					fmt.Errorf("event %d: %w", e.ID, err))
			}
		}
		if run != nil {
			e.Run = new(filehub.CleanupRun)
			if err := json.Unmarshal(run, e.Run); err != nil {
				return nil, filehub.WrapError(filehub.EINTERNAL, "decode event",
					fmt.Errorf("event %d: %w", e.ID, err))
			}
		}
		events = append(events, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(ctx, "list events", err)
	}
	return events, nil
}

// insertFileEvent records an event of type typ with a snapshot of f.
func insertFileEvent(ctx context.Context, tx *wtx, typ string, f *filehub.File) error {
	b, err := json.Marshal(f)
	if err != nil {
		return filehub.WrapError(filehub.EINTERNAL, "encode file", err)
	}
	return insertEvent(ctx, tx, typ, nanos(time.Now()), b)
}

func insertEvent(ctx context.Context, tx *wtx, typ string, at int64, file []byte) error {
	// The snapshot is stored as TEXT so that SQLite's JSON functions and
	// people with the sqlite3 shell can read it.
	_, err := tx.exec(ctx, qInsertEvent, typ, at, string(file))
	return mapError(ctx, "insert event", err)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanFile reads fileColumns, preceded by the columns in lead, if any.
func scanFile(s scanner, lead ...any) (*filehub.File, error) {
	var (
		f                   filehub.File
		created             int64
		deleted, purgeAfter sql.NullInt64
	)
	dest := append(lead, &f.ID, &f.Name, &f.Size, &f.SHA256, &f.ContentType,
		&created, &deleted, &purgeAfter, &f.OwnerKeyID, &f.ContentMissing)
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	f.CreatedAt = fromNanos(created)
	f.DeletedAt = nullTime(deleted)
	f.PurgeAfter = nullTime(purgeAfter)
	return &f, nil
}

// nanos is how times are stored: Unix nanoseconds, which are UTC by
// definition and compare as integers.
func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

func nullNanos(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: nanos(*t), Valid: true}
}
