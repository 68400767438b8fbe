package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/filehub/filehub"
)

var _ filehub.ProviderStore = (*DB)(nil)

// mappingColumns are the columns scanMapping reads, in order.
const mappingColumns = `sha256, provider, purpose, state, provider_file_id, size, claim_id, claimed_at, verified_at, last_used_at`

// mappingKey is the WHERE clause of one mapping; its arguments are keyArgs.
const mappingKey = `sha256 = ? AND provider = ? AND purpose = ?`

func keyArgs(k filehub.ProviderKey) []any { return []any{k.SHA256, k.Provider, k.Purpose} }

func scanMapping(s scanner) (*filehub.ProviderMapping, error) {
	var (
		m              filehub.ProviderMapping
		claimed        int64
		verified, used sql.NullInt64
	)
	if err := s.Scan(&m.SHA256, &m.Provider, &m.Purpose, &m.State, &m.ProviderFileID, &m.Size, &m.ClaimID,
		&claimed, &verified, &used); err != nil {
		return nil, err
	}
	m.ClaimedAt = fromNanos(claimed)
	m.VerifiedAt = nullTime(verified)
	m.LastUsedAt = nullTime(used)
	return &m, nil
}

// ClaimProviderMapping claims a mapping for a push; see
// filehub.ProviderStore. The upsert runs in the single writer, and other
// processes are excluded by SQLite's write lock, so of concurrent claims of
// a free key exactly one inserts or takes over the row.
func (db *DB) ClaimProviderMapping(ctx context.Context, key filehub.ProviderKey, size int64, claimID string, now time.Time, ttl time.Duration) (m *filehub.ProviderMapping, claimed bool, err error) {
	if err := key.Validate(); err != nil {
		return nil, false, err
	}
	if claimID == "" || size < 0 {
		return nil, false, filehub.Errorf(filehub.EINVALID, "a claim needs a claim ID and a size")
	}
	err = db.write(ctx, "claim provider mapping", func(wctx context.Context, tx *wtx) error {
		var err error
		m, err = scanMapping(tx.queryRow(wctx, `INSERT INTO provider_files (sha256, provider, purpose, state, size, claim_id, claimed_at)
			VALUES (?, ?, ?, 'pending', ?, ?, ?)
			ON CONFLICT (sha256, provider, purpose) DO UPDATE
			  SET claim_id = excluded.claim_id, claimed_at = excluded.claimed_at, size = excluded.size
			  WHERE provider_files.state = 'pending'
			    AND (provider_files.claim_id = excluded.claim_id OR provider_files.claimed_at <= ?)
			RETURNING `+mappingColumns,
			key.SHA256, key.Provider, key.Purpose, size, claimID, nanos(now), nanos(now.Add(-ttl))))
		if err == nil {
			claimed = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return mapError(wctx, "claim provider mapping", err)
		}
		m, err = scanMapping(tx.queryRow(wctx, `SELECT `+mappingColumns+` FROM provider_files WHERE `+mappingKey, keyArgs(key)...))
		return mapError(wctx, "read provider mapping", err)
	})
	if err != nil {
		return nil, false, err
	}
	return m, claimed, nil
}

// CompleteProviderMapping makes a claimed mapping ready; see
// filehub.ProviderStore.
func (db *DB) CompleteProviderMapping(ctx context.Context, key filehub.ProviderKey, claimID, providerFileID string, at time.Time) (*filehub.ProviderMapping, error) {
	if err := key.Validate(); err != nil {
		return nil, err
	}
	if claimID == "" || providerFileID == "" {
		return nil, filehub.Errorf(filehub.EINVALID, "completing a mapping needs the claim ID and the provider file ID")
	}
	var m *filehub.ProviderMapping
	err := db.write(ctx, "complete provider mapping", func(wctx context.Context, tx *wtx) error {
		var err error
		m, err = scanMapping(tx.queryRow(wctx, `UPDATE provider_files
			SET state = 'ready', provider_file_id = ?, claim_id = '', verified_at = ?, last_used_at = ?
			WHERE `+mappingKey+` AND state = 'pending' AND claim_id = ?
			RETURNING `+mappingColumns,
			providerFileID, nanos(at), nanos(at), key.SHA256, key.Provider, key.Purpose, claimID))
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return mapError(wctx, "complete provider mapping", err)
		}
		var n int
		if err := tx.queryRow(wctx, `SELECT count(*) FROM provider_files WHERE `+mappingKey, keyArgs(key)...).Scan(&n); err != nil {
			return mapError(wctx, "complete provider mapping", err)
		}
		if n == 0 {
			return filehub.Errorf(filehub.ENOTFOUND, "no provider mapping of %s at %s", key.SHA256, key.Provider)
		}
		return filehub.Errorf(filehub.ECONFLICT, "the claim of %s at %s was taken over", key.SHA256, key.Provider)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// FindProviderMapping returns a mapping; see filehub.ProviderStore.
func (db *DB) FindProviderMapping(ctx context.Context, key filehub.ProviderKey) (*filehub.ProviderMapping, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	m, err := scanMapping(db.rdb.QueryRowContext(ctx, `SELECT `+mappingColumns+` FROM provider_files WHERE `+mappingKey, keyArgs(key)...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "no provider mapping of %s at %s", key.SHA256, key.Provider)
	}
	if err != nil {
		return nil, mapError(ctx, "find provider mapping", err)
	}
	return m, nil
}

// TouchProviderMapping records a verification or a use; see
// filehub.ProviderStore.
func (db *DB) TouchProviderMapping(ctx context.Context, key filehub.ProviderKey, verified, used time.Time) error {
	opt := func(t time.Time) sql.NullInt64 {
		return sql.NullInt64{Int64: nanos(t), Valid: !t.IsZero()}
	}
	return db.write(ctx, "touch provider mapping", func(wctx context.Context, tx *wtx) error {
		res, err := tx.exec(wctx, `UPDATE provider_files
			SET verified_at = coalesce(?, verified_at), last_used_at = coalesce(?, last_used_at)
			WHERE `+mappingKey+` AND state = 'ready'`,
			opt(verified), opt(used), key.SHA256, key.Provider, key.Purpose)
		if err != nil {
			return mapError(wctx, "touch provider mapping", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return mapError(wctx, "touch provider mapping", err)
			}
			return filehub.Errorf(filehub.ENOTFOUND, "no ready provider mapping of %s at %s", key.SHA256, key.Provider)
		}
		return nil
	})
}

// DeleteProviderMapping deletes a mapping still as the caller read it; see
// filehub.ProviderStore.
func (db *DB) DeleteProviderMapping(ctx context.Context, m *filehub.ProviderMapping) (deleted bool, err error) {
	err = db.write(ctx, "delete provider mapping", func(wctx context.Context, tx *wtx) error {
		res, err := tx.exec(wctx, `DELETE FROM provider_files
			WHERE `+mappingKey+` AND state = ? AND provider_file_id = ? AND claim_id = ?`,
			m.SHA256, m.Provider, m.Purpose, m.State, m.ProviderFileID, m.ClaimID)
		if err != nil {
			return mapError(wctx, "delete provider mapping", err)
		}
		n, err := res.RowsAffected()
		deleted = n > 0
		return mapError(wctx, "delete provider mapping", err)
	})
	return deleted, err
}

// ListProviderMappings returns a page of mappings in key order; see
// filehub.ProviderStore. The row-value comparison walks the primary key.
func (db *DB) ListProviderMappings(ctx context.Context, after filehub.ProviderKey, limit int) ([]*filehub.ProviderMapping, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	if limit <= 0 {
		limit = 1000
	}
	rows, err := db.rdb.QueryContext(ctx, `SELECT `+mappingColumns+` FROM provider_files
		WHERE (sha256, provider, purpose) > (?, ?, ?)
		ORDER BY sha256, provider, purpose LIMIT ?`, after.SHA256, after.Provider, after.Purpose, limit)
	if err != nil {
		return nil, mapError(ctx, "list provider mappings", err)
	}
	defer rows.Close()
	var out []*filehub.ProviderMapping
	for rows.Next() {
		m, err := scanMapping(rows)
		if err != nil {
			return nil, mapError(ctx, "list provider mappings", err)
		}
		out = append(out, m)
	}
	return out, mapError(ctx, "list provider mappings", rows.Err())
}
