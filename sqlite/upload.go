package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/filehub/filehub"
)

var _ filehub.UploadStore = (*DB)(nil)

// uploadColumns are the columns scanUpload reads, in order.
const uploadColumns = `id, owner_key_id, length, "offset", metadata, name, content_type, concat, parts, hash_state,
	created_at, expires_at, file_id, deduplicated`

func scanUpload(s scanner) (*filehub.Upload, error) {
	var (
		u                filehub.Upload
		parts            string
		created, expires int64
	)
	if err := s.Scan(&u.ID, &u.OwnerKeyID, &u.Length, &u.Offset, &u.Metadata, &u.Name, &u.ContentType, &u.Concat,
		&parts, &u.HashState, &created, &expires, &u.FileID, &u.Deduplicated); err != nil {
		return nil, err
	}
	u.Parts = strings.Fields(parts)
	u.CreatedAt = fromNanos(created)
	u.ExpiresAt = fromNanos(expires)
	return &u, nil
}

// validateUpload checks what every backend requires of a new upload.
func validateUpload(u *filehub.Upload) error {
	switch {
	case !filehub.ValidUploadID(u.ID), u.OwnerKeyID == "", u.Length < -1, u.Offset < 0,
		u.Length >= 0 && u.Offset > u.Length, u.CreatedAt.IsZero(), u.ExpiresAt.IsZero():
		return filehub.Errorf(filehub.EINVALID, "incomplete or inconsistent upload record")
	case u.Concat != "" && u.Concat != filehub.UploadPartial && u.Concat != filehub.UploadFinal:
		return filehub.Errorf(filehub.EINVALID, "unknown concatenation kind %q", u.Concat)
	}
	return nil
}

// CreateUpload records u; see filehub.UploadStore. The count and the insert
// run in the single writer, which is what makes the cap exact.
func (db *DB) CreateUpload(ctx context.Context, u *filehub.Upload, maxOpen int) error {
	if err := validateUpload(u); err != nil {
		return err
	}
	return db.write(ctx, "create upload", func(wctx context.Context, tx *wtx) error {
		if maxOpen > 0 {
			var n int
			if err := tx.queryRow(wctx, `SELECT count(*) FROM uploads
				WHERE owner_key_id = ? AND file_id = '' AND expires_at > ?`,
				u.OwnerKeyID, nanos(u.CreatedAt)).Scan(&n); err != nil {
				return mapError(wctx, "count open uploads", err)
			}
			if n >= maxOpen {
				return filehub.Errorf(filehub.ERATELIMIT, "too many uploads in progress (the limit is %d per key); finish or delete some", maxOpen)
			}
		}
		_, err := tx.exec(wctx, `INSERT INTO uploads (`+uploadColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.OwnerKeyID, u.Length, u.Offset, u.Metadata, u.Name, u.ContentType, u.Concat,
			strings.Join(u.Parts, " "), u.HashState, nanos(u.CreatedAt), nanos(u.ExpiresAt), u.FileID, u.Deduplicated)
		return mapError(wctx, "create upload", err)
	})
}

// FindUpload returns an upload; see filehub.UploadStore.
func (db *DB) FindUpload(ctx context.Context, id string) (*filehub.Upload, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	u, err := scanUpload(db.rdb.QueryRowContext(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "upload %s not found", id)
	}
	if err != nil {
		return nil, mapError(ctx, "find upload", err)
	}
	return u, nil
}

// UpdateUpload advances an upload from fromOffset; see filehub.UploadStore.
func (db *DB) UpdateUpload(ctx context.Context, u *filehub.Upload, fromOffset int64) error {
	if u.Offset < fromOffset || (u.Length >= 0 && u.Offset > u.Length) || u.Length < -1 {
		return filehub.Errorf(filehub.EINVALID, "upload offset %d cannot follow %d (length %d)", u.Offset, fromOffset, u.Length)
	}
	return db.write(ctx, "update upload", func(wctx context.Context, tx *wtx) error {
		res, err := tx.exec(wctx, `UPDATE uploads
			SET "offset" = ?, length = ?, hash_state = ?, expires_at = ?, file_id = ?, deduplicated = ?
			WHERE id = ? AND "offset" = ? AND file_id = ''`,
			u.Offset, u.Length, u.HashState, nanos(u.ExpiresAt), u.FileID, u.Deduplicated, u.ID, fromOffset)
		if err != nil {
			return mapError(wctx, "update upload", err)
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return mapError(wctx, "update upload", err)
		}
		var n int
		if err := tx.queryRow(wctx, `SELECT count(*) FROM uploads WHERE id = ?`, u.ID).Scan(&n); err != nil {
			return mapError(wctx, "update upload", err)
		}
		if n == 0 {
			return filehub.Errorf(filehub.ENOTFOUND, "upload %s not found", u.ID)
		}
		return filehub.Errorf(filehub.ECONFLICT, "upload %s is no longer at offset %d", u.ID, fromOffset)
	})
}

// DeleteUpload removes an upload record; see filehub.UploadStore.
func (db *DB) DeleteUpload(ctx context.Context, id string) error {
	return db.write(ctx, "delete upload", func(wctx context.Context, tx *wtx) error {
		res, err := tx.exec(wctx, `DELETE FROM uploads WHERE id = ?`, id)
		if err != nil {
			return mapError(wctx, "delete upload", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return mapError(wctx, "delete upload", err)
			}
			return filehub.Errorf(filehub.ENOTFOUND, "upload %s not found", id)
		}
		return nil
	})
}

// ListExpiredUploads lists expired uploads; see
// filehub.UploadStore.
func (db *DB) ListExpiredUploads(ctx context.Context, before time.Time, limit int) ([]*filehub.Upload, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := db.rdb.QueryContext(ctx, `SELECT `+uploadColumns+` FROM uploads
		WHERE expires_at <= ? ORDER BY expires_at, id LIMIT ?`, nanos(before), limit)
	if err != nil {
		return nil, mapError(ctx, "list expired uploads", err)
	}
	defer rows.Close()
	var out []*filehub.Upload
	for rows.Next() {
		u, err := scanUpload(rows)
		if err != nil {
			return nil, mapError(ctx, "list expired uploads", err)
		}
		out = append(out, u)
	}
	return out, mapError(ctx, "list expired uploads", rows.Err())
}
