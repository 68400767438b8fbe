package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/paging"
)

// fileColumns are the columns scanFile reads, in order.
const fileColumns = `id, name, size, sha256, content_type, created_at, deleted_at, purge_after, owner_key_id, content_missing`

// CreateFile records f and its file.created event; see
// filehub.MetaStore. It returns once the record is committed.
//
// Calls are group-committed (see the package doc): CreateFile queues f for
// the store's committer, which records the calls queued meanwhile in one
// transaction. The transaction takes each content's advisory lock (see
// lockContent) before touching its record, so concurrent creates of one
// content, in this process or another, run one after the other: the first
// inserts the blob record and calls place, the others find it and
// increment its count. place is also called, with ctx, when the record
// existed with a reference count of zero (a revival, which also clears the
// blob's mark; see sqlite.DB.CreateFile for why). If place fails, nothing
// is recorded for f and its error is returned unchanged; the other calls
// of the batch are not affected. A nil place is not called.
//
// CreateFile returns EINVALID if f is incomplete or its size differs from the
// size recorded for its blob, ECONFLICT if a file with f.ID exists.
func (db *DB) CreateFile(ctx context.Context, f *filehub.File, place filehub.PlaceFunc) (deduplicated bool, err error) {
	if err := f.Validate(); err != nil {
		return false, err
	}
	if db.closed.Load() {
		return false, errClosed
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("postgres: create file: %w", err)
	}
	j, err := newCreateJob(ctx, f, place)
	if err != nil {
		return false, err
	}
	select {
	case db.creates <- j:
	case <-ctx.Done():
		return false, fmt.Errorf("postgres: create file: waiting for the committer: %w", ctx.Err())
	case <-db.quit:
		return false, errClosed
	}
	<-j.done
	if j.err != nil {
		return false, j.err
	}
	return j.dedup, nil
}

// newCreateJob returns the committer's job for CreateFile(ctx, f, place).
func newCreateJob(ctx context.Context, f *filehub.File, place filehub.PlaceFunc) (*createJob, error) {
	snap := *f
	snap.CreatedAt = snap.CreatedAt.UTC()
	snap.DeletedAt, snap.PurgeAfter = nil, nil
	snapJSON, err := json.Marshal(&snap)
	if err != nil {
		return nil, filehub.WrapError(filehub.EINTERNAL, "encode file", err)
	}
	return &createJob{ctx: ctx, file: snap, event: snapJSON, place: place,
		lock: contentLockKey(snap.SHA256), done: make(chan struct{})}, nil
}

// FindFile returns the file with the given ID, soft-deleted or not. It
// returns ENOTFOUND if there is none.
func (db *DB) FindFile(ctx context.Context, id string) (*filehub.File, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	f, err := scanFile(db.pool.QueryRow(ctx, `SELECT `+fileColumns+` FROM files WHERE id = $1`, id))
	if errNoRows(err) {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "file %s not found", id)
	}
	if err != nil {
		return nil, mapError(ctx, "find file", err)
	}
	return f, nil
}

// ListFiles returns files in creation order; see filehub.MetaStore. A limit
// of 0 means 100, a limit above 1000 is capped at 1000. The cursor is the
// base64url encoding of the position of the page's last file, as in sqlite,
// so pages stay stable while files are added, deleted or purged. It returns
// EINVALID for a malformed cursor or a negative limit.
//
// Positions come from an identity column, which concurrent transactions
// may commit out of order: a file committed while a client pages may
// appear behind its cursor. Listings are not a change feed (the event log
// is), so they are not serialized like events.
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
	q := `SELECT seq, ` + fileColumns + ` FROM files WHERE seq > $1`
	if !filter.IncludeDeleted {
		q += ` AND deleted_at IS NULL`
	}
	q += ` ORDER BY seq LIMIT $2`
	// One row more than asked tells whether there is a next page.
	rows, err := db.pool.Query(ctx, q, after, limit+1)
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
	err := db.tx(ctx, "delete file", func(tx pgx.Tx) error {
		var err error
		f, err = scanFile(tx.QueryRow(ctx,
			`UPDATE files SET deleted_at = $1, purge_after = $2, deleted_by = $3, delete_reason = $4
			 WHERE id = $5 AND deleted_at IS NULL RETURNING `+fileColumns,
			at, purgeAfter, actor, reason, id))
		if errNoRows(err) {
			return filehub.Errorf(filehub.ENOTFOUND, "file %s not found", id)
		}
		if err != nil {
			return mapError(ctx, "delete file", err)
		}
		if err := insertAudit(ctx, tx, fileAudit(ctx, filehub.AuditFileDeleted, f, at)); err != nil {
			return err
		}
		return insertFileEvent(ctx, tx, filehub.EventFileDeleted, f)
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
	err := db.tx(ctx, "restore file", func(tx pgx.Tx) error {
		var err error
		f, err = scanFile(tx.QueryRow(ctx,
			`UPDATE files SET deleted_at = NULL, purge_after = NULL, deleted_by = NULL, delete_reason = NULL
			 WHERE id = $1 AND deleted_at IS NOT NULL RETURNING `+fileColumns, id))
		if errNoRows(err) {
			return filehub.Errorf(filehub.ENOTFOUND, "deleted file %s not found", id)
		}
		if err != nil {
			return mapError(ctx, "restore file", err)
		}
		if err := insertAudit(ctx, tx, fileAudit(ctx, filehub.AuditFileRestored, f, time.Now())); err != nil {
			return err
		}
		return insertFileEvent(ctx, tx, filehub.EventFileRestored, f)
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
	return db.purge(ctx, nil, id, `DELETE FROM files WHERE id = $1 RETURNING `+fileColumns, []any{id}, now, audit,
		func(context.Context, pgx.Tx) error { return filehub.Errorf(filehub.ENOTFOUND, "file %s not found", id) })
}

// purge runs del (a DELETE ... RETURNING fileColumns statement with args),
// dereferences the file's blob (unreferenced since `at` when its count drops
// to zero), appends audit for the file and records a file.purged event, in
// one transaction. notFound gives the error when del deletes nothing.
//
// The content lock is taken before the file row is touched, so purge locks
// in the same order as SetBlobMissing (content, blob, files) and the two
// cannot deadlock.
func (db *DB) purge(ctx context.Context, fence *filehub.Fence, id, del string, args []any, at time.Time, audit filehub.AuditEntry,
	notFound func(ctx context.Context, tx pgx.Tx) error) (*filehub.File, error) {
	var f *filehub.File
	err := db.tx(ctx, "purge file", func(tx pgx.Tx) error {
		if fence != nil {
			if err := checkFence(ctx, tx, *fence); err != nil {
				return err
			}
		}
		var sum string
		err := tx.QueryRow(ctx, `SELECT sha256 FROM files WHERE id = $1`, id).Scan(&sum)
		if errNoRows(err) {
			return notFound(ctx, tx)
		}
		if err != nil {
			return mapError(ctx, "purge file", err)
		}
		if err := lockContent(ctx, tx, sum); err != nil {
			return err
		}
		f, err = scanFile(tx.QueryRow(ctx, del, args...))
		if errNoRows(err) {
			return notFound(ctx, tx)
		}
		if err != nil {
			return mapError(ctx, "purge file", err)
		}
		// The right-hand sides see the values before the update.
		_, err = tx.Exec(ctx,
			`UPDATE blobs SET ref_count = ref_count - 1,
			   unreferenced_since = CASE WHEN ref_count = 1 THEN $1 ELSE unreferenced_since END
			 WHERE sha256 = $2`, at, f.SHA256)
		if err != nil {
			return mapError(ctx, "dereference blob", err)
		}
		a := audit
		a.TargetKind, a.Target, a.Bytes = filehub.TargetFile, f.ID, f.Size
		if err := insertAudit(ctx, tx, a); err != nil {
			return err
		}
		return insertFileEvent(ctx, tx, filehub.EventFilePurged, f)
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
	b, err := scanBlob(db.pool.QueryRow(ctx, `SELECT `+blobColumns+` FROM blobs WHERE sha256 = $1`, sum))
	if errNoRows(err) {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "content %s not found", sum)
	}
	if err != nil {
		return nil, mapError(ctx, "find blob", err)
	}
	return b, nil
}

// scanner is a pgx.Row or pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanFile reads fileColumns, preceded by the columns in lead, if any.
func scanFile(s scanner, lead ...any) (*filehub.File, error) {
	var f filehub.File
	dest := append(lead, &f.ID, &f.Name, &f.Size, &f.SHA256, &f.ContentType,
		&f.CreatedAt, &f.DeletedAt, &f.PurgeAfter, &f.OwnerKeyID, &f.ContentMissing)
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	f.CreatedAt = f.CreatedAt.UTC()
	f.DeletedAt = utcPtr(f.DeletedAt)
	f.PurgeAfter = utcPtr(f.PurgeAfter)
	return &f, nil
}

// utcPtr returns t in UTC; pgx returns timestamptz in the local zone.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// optTime returns nil for a zero t, so it is stored as NULL.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
