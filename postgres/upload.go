package postgres

import (
	"context"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
)

var _ filehub.UploadStore = (*DB)(nil)

// uploadColumns are the columns scanUpload reads, in order.
const uploadColumns = `id, owner_key_id, length, "offset", metadata, name, content_type, concat, parts, hash_state,
	created_at, expires_at, file_id, deduplicated`

// uploadOwnerLockClass is the first key of the advisory lock that
// serializes the upload creations of one owner, so that the cap on open
// uploads holds across instances.
const uploadOwnerLockClass int32 = 0x66680006

func scanUpload(s scanner) (*filehub.Upload, error) {
	var (
		u     filehub.Upload
		parts string
	)
	if err := s.Scan(&u.ID, &u.OwnerKeyID, &u.Length, &u.Offset, &u.Metadata, &u.Name, &u.ContentType, &u.Concat,
		&parts, &u.HashState, &u.CreatedAt, &u.ExpiresAt, &u.FileID, &u.Deduplicated); err != nil {
		return nil, err
	}
	u.Parts = strings.Fields(parts)
	u.CreatedAt = u.CreatedAt.UTC()
	u.ExpiresAt = u.ExpiresAt.UTC()
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

// CreateUpload records u; see filehub.UploadStore. An advisory lock per
// owner serializes the count and the insert across instances.
func (db *DB) CreateUpload(ctx context.Context, u *filehub.Upload, maxOpen int) error {
	if err := validateUpload(u); err != nil {
		return err
	}
	return db.tx(ctx, "create upload", func(tx pgx.Tx) error {
		if maxOpen > 0 {
			h := fnv.New32a()
			h.Write([]byte(u.OwnerKeyID))
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, uploadOwnerLockClass, int32(h.Sum32())); err != nil {
				return mapError(ctx, "lock upload owner", err)
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM uploads
				WHERE owner_key_id = $1 AND file_id = '' AND expires_at > $2`, u.OwnerKeyID, u.CreatedAt).Scan(&n); err != nil {
				return mapError(ctx, "count open uploads", err)
			}
			if n >= maxOpen {
				return filehub.Errorf(filehub.ERATELIMIT, "too many uploads in progress (the limit is %d per key); finish or delete some", maxOpen)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO uploads (`+uploadColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			u.ID, u.OwnerKeyID, u.Length, u.Offset, u.Metadata, u.Name, u.ContentType, u.Concat,
			strings.Join(u.Parts, " "), u.HashState, u.CreatedAt, u.ExpiresAt, u.FileID, u.Deduplicated)
		return mapError(ctx, "create upload", err)
	})
}

// FindUpload returns an upload; see filehub.UploadStore.
func (db *DB) FindUpload(ctx context.Context, id string) (*filehub.Upload, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	u, err := scanUpload(db.pool.QueryRow(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = $1`, id))
	if errNoRows(err) {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "upload %s not found", id)
	}
	if err != nil {
		return nil, mapError(ctx, "find upload", err)
	}
	return u, nil
}

// UpdateUpload advances an upload from fromOffset; see filehub.UploadStore.
// The WHERE on the offset is re-evaluated after a concurrent update's row
// lock is released, so of two updates from one offset exactly one wins.
func (db *DB) UpdateUpload(ctx context.Context, u *filehub.Upload, fromOffset int64) error {
	if u.Offset < fromOffset || (u.Length >= 0 && u.Offset > u.Length) || u.Length < -1 {
		return filehub.Errorf(filehub.EINVALID, "upload offset %d cannot follow %d (length %d)", u.Offset, fromOffset, u.Length)
	}
	return db.tx(ctx, "update upload", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE uploads
			SET "offset" = $1, length = $2, hash_state = $3, expires_at = $4, file_id = $5, deduplicated = $6
			WHERE id = $7 AND "offset" = $8 AND file_id = ''`,
			u.Offset, u.Length, u.HashState, u.ExpiresAt, u.FileID, u.Deduplicated, u.ID, fromOffset)
		if err != nil {
			return mapError(ctx, "update upload", err)
		}
		if tag.RowsAffected() > 0 {
			return nil
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM uploads WHERE id = $1`, u.ID).Scan(&n); err != nil {
			return mapError(ctx, "update upload", err)
		}
		if n == 0 {
			return filehub.Errorf(filehub.ENOTFOUND, "upload %s not found", u.ID)
		}
		return filehub.Errorf(filehub.ECONFLICT, "upload %s is no longer at offset %d", u.ID, fromOffset)
	})
}

// DeleteUpload removes an upload record; see filehub.UploadStore.
func (db *DB) DeleteUpload(ctx context.Context, id string) error {
	return db.tx(ctx, "delete upload", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM uploads WHERE id = $1`, id)
		if err != nil {
			return mapError(ctx, "delete upload", err)
		}
		if tag.RowsAffected() == 0 {
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
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := db.pool.Query(ctx, `SELECT `+uploadColumns+` FROM uploads
		WHERE expires_at <= $1 ORDER BY expires_at, id LIMIT $2`, before, lim)
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

var _ filehub.UploadLocker = (*DB)(nil)

// uploadLockClass is the first key of the session advisory locks of
// LockUpload.
const uploadLockClass int32 = 0x66680007

// LockUpload takes a session advisory lock on one of the pool's
// connections, which it keeps until unlock: a crashed instance's
// connection closes and its locks go with it. See filehub.UploadLocker.
// Each held lock occupies a pool connection for the duration of a PATCH,
// so Config.MaxConns should exceed the uploads expected at once.
func (db *DB) LockUpload(ctx context.Context, id string) (func(), error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	key := int32(h.Sum32())
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, mapError(ctx, "lock upload", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, uploadLockClass, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, mapError(ctx, "lock upload", err)
	}
	if !ok {
		conn.Release()
		return nil, filehub.Errorf(filehub.ELOCKED, "upload %s is being written by another request; retry when it has finished", id)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, $2)`, uploadLockClass, key); err != nil {
			// Never hand a connection that may still hold the lock
			// back to the pool.
			conn.Conn().Close(uctx)
		}
		conn.Release()
	}, nil
}
