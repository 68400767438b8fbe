package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

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
	rows, err := db.rdb.QueryContext(ctx, `SELECT b.sha256, b.size, b.ref_count, b.created_at, b.unreferenced_since,
			b.marked_at, b.missing_since, f.id, f.size, f.deleted_at IS NOT NULL
		FROM (SELECT `+blobColumns+` FROM blobs WHERE sha256 > ? ORDER BY sha256 LIMIT ?) b
		LEFT JOIN files f ON f.sha256 = b.sha256
		ORDER BY b.sha256, f.id`, after, limit)
	if err != nil {
		return nil, mapError(ctx, "list blob references", err)
	}
	defer rows.Close()
	var out []*filehub.BlobRefs
	for rows.Next() {
		var (
			id      sql.NullString
			size    sql.NullInt64
			deleted sql.NullBool
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
		if id.Valid {
			last := out[len(out)-1]
			last.Files = append(last.Files, filehub.FileRef{ID: id.String, Size: size.Int64, Deleted: deleted.Bool})
		}
	}
	return out, mapError(ctx, "list blob references", rows.Err())
}

// scanFunc adapts a function to scanner, to scan extra columns after a
// blob's.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// RepairRefCount recounts a blob's references in the serialized writer;
// see filehub.Checker.
func (db *DB) RepairRefCount(ctx context.Context, sum string, at time.Time, audit filehub.AuditEntry) (before, after int64, err error) {
	err = db.write(ctx, "repair reference count", func(wctx context.Context, tx *wtx) error {
		var size int64
		err := tx.queryRow(wctx, `SELECT size, ref_count FROM blobs WHERE sha256 = ?`, sum).Scan(&size, &before)
		if errors.Is(err, sql.ErrNoRows) {
			return filehub.Errorf(filehub.ENOTFOUND, "content %s not found", sum)
		}
		if err != nil {
			return mapError(wctx, "repair reference count", err)
		}
		if err := tx.queryRow(wctx, `SELECT count(*) FROM files WHERE sha256 = ?`, sum).Scan(&after); err != nil {
			return mapError(wctx, "repair reference count", err)
		}
		if after == before {
			return nil
		}
		if _, err := tx.exec(wctx, `UPDATE blobs SET ref_count = ?2,
				unreferenced_since = CASE WHEN ?2 = 0 THEN coalesce(unreferenced_since, ?3) END,
				marked_at = CASE WHEN ?2 = 0 THEN marked_at END
			WHERE sha256 = ?1`, sum, after, nanos(at)); err != nil {
			return mapError(wctx, "repair reference count", err)
		}
		a := audit
		a.TargetKind, a.Target, a.Bytes = filehub.TargetBlob, sum, size
		return insertAudit(wctx, tx, a)
	})
	if err != nil {
		return 0, 0, err
	}
	return before, after, nil
}
