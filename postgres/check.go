package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/paging"
)

var _ filehub.Checker = (*DB)(nil)

// ListBlobRefs returns a page of blob records with their files; see
// filehub.Checker. One statement, so one snapshot: the LEFT JOIN keeps
// blobs no file points at.
func (db *DB) ListBlobRefs(ctx context.Context, after string, limit int) ([]*filehub.BlobRefs, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	if limit <= 0 {
		limit = paging.MaxLimit
	}
	rows, err := db.pool.Query(ctx, `SELECT b.sha256, b.size, b.ref_count, b.created_at, b.unreferenced_since,
			b.marked_at, b.missing_since, f.id, f.size, f.deleted_at IS NOT NULL
		FROM (SELECT `+blobColumns+` FROM blobs WHERE sha256 > $1 ORDER BY sha256 LIMIT $2) b
		LEFT JOIN files f ON f.sha256 = b.sha256
		ORDER BY b.sha256, f.id`, after, limit)
	if err != nil {
		return nil, mapError(ctx, "list blob references", err)
	}
	defer rows.Close()
	var out []*filehub.BlobRefs
	for rows.Next() {
		var (
			id      *string
			size    *int64
			deleted *bool
		)
		b, err := scanBlob(scanFunc(func(dest ...any) error {
			return rows.Scan(append(dest, &id, &size, &deleted)...)
		}))
		if err != nil {
			return nil, mapError(ctx, "list blob references", err)
		}
		if n := len(out); n == 0 || out[n-1].SHA256 != b.SHA256 {
			out = append(out, &filehub.BlobRefs{Blob: *b})
		}
		if id != nil {
			last := out[len(out)-1]
			last.Files = append(last.Files, filehub.FileRef{ID: *id, Size: *size, Deleted: deleted != nil && *deleted})
		}
	}
	return out, mapError(ctx, "list blob references", rows.Err())
}

// scanFunc adapts a function to scanner, to scan extra columns after a
// blob's.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// RepairRefCount recounts a blob's references under the content's lock and
// the blob's row lock; see filehub.Checker. Uploads and purges change the
// count relatively (ref_count ± 1) under the same row lock, so one that
// commits after the recount still moves the count by exactly one.
func (db *DB) RepairRefCount(ctx context.Context, sum string, at time.Time, audit filehub.AuditEntry) (before, after int64, err error) {
	err = db.tx(ctx, "repair reference count", func(tx pgx.Tx) error {
		if err := lockContent(ctx, tx, sum); err != nil {
			return err
		}
		var size int64
		err := tx.QueryRow(ctx, `SELECT size, ref_count FROM blobs WHERE sha256 = $1 FOR UPDATE`, sum).Scan(&size, &before)
		if errNoRows(err) {
			return filehub.Errorf(filehub.ENOTFOUND, "content %s not found", sum)
		}
		if err != nil {
			return mapError(ctx, "repair reference count", err)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM files WHERE sha256 = $1`, sum).Scan(&after); err != nil {
			return mapError(ctx, "repair reference count", err)
		}
		if after == before {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE blobs SET ref_count = $2::bigint,
				unreferenced_since = CASE WHEN $2::bigint = 0 THEN coalesce(unreferenced_since, $3::timestamptz) END,
				marked_at = CASE WHEN $2::bigint = 0 THEN marked_at END
			WHERE sha256 = $1`, sum, after, at); err != nil {
			return mapError(ctx, "repair reference count", err)
		}
		a := audit
		a.TargetKind, a.Target, a.Bytes = filehub.TargetBlob, sum, size
		return insertAudit(ctx, tx, a)
	})
	if err != nil {
		return 0, 0, err
	}
	return before, after, nil
}
