package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
)

var _ filehub.ProviderStore = (*DB)(nil)

// mappingColumns are the columns scanMapping reads, in order.
const mappingColumns = `sha256, provider, purpose, state, provider_file_id, size, claim_id, claimed_at, verified_at, last_used_at`

func scanMapping(s scanner) (*filehub.ProviderMapping, error) {
	var m filehub.ProviderMapping
	if err := s.Scan(&m.SHA256, &m.Provider, &m.Purpose, &m.State, &m.ProviderFileID, &m.Size, &m.ClaimID,
		&m.ClaimedAt, &m.VerifiedAt, &m.LastUsedAt); err != nil {
		return nil, err
	}
	m.ClaimedAt = m.ClaimedAt.UTC()
	for _, t := range []*time.Time{m.VerifiedAt, m.LastUsedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	return &m, nil
}

// ClaimProviderMapping claims a mapping for a push; see
// filehub.ProviderStore. Of concurrent upserts of one key, the later ones
// wait for the first's row lock and re-evaluate the WHERE against its row,
// which is pending under another claim and fresh, so they update nothing.
func (db *DB) ClaimProviderMapping(ctx context.Context, key filehub.ProviderKey, size int64, claimID string, now time.Time, ttl time.Duration) (m *filehub.ProviderMapping, claimed bool, err error) {
	if err := key.Validate(); err != nil {
		return nil, false, err
	}
	if claimID == "" || size < 0 {
		return nil, false, filehub.Errorf(filehub.EINVALID, "a claim needs a claim ID and a size")
	}
	err = db.tx(ctx, "claim provider mapping", func(tx pgx.Tx) error {
		var err error
		m, err = scanMapping(tx.QueryRow(ctx, `INSERT INTO provider_files (sha256, provider, purpose, state, size, claim_id, claimed_at)
			VALUES ($1, $2, $3, 'pending', $4, $5, $6)
			ON CONFLICT (sha256, provider, purpose) DO UPDATE
			  SET claim_id = excluded.claim_id, claimed_at = excluded.claimed_at, size = excluded.size
			  WHERE provider_files.state = 'pending'
			    AND (provider_files.claim_id = excluded.claim_id OR provider_files.claimed_at <= $7)
			RETURNING `+mappingColumns,
			key.SHA256, key.Provider, key.Purpose, size, claimID, now, now.Add(-ttl)))
		if err == nil {
			claimed = true
			return nil
		}
		if !errNoRows(err) {
			return mapError(ctx, "claim provider mapping", err)
		}
		claimed = false
		m, err = scanMapping(tx.QueryRow(ctx, `SELECT `+mappingColumns+` FROM provider_files
			WHERE sha256 = $1 AND provider = $2 AND purpose = $3`, key.SHA256, key.Provider, key.Purpose))
		return mapError(ctx, "read provider mapping", err)
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
	err := db.tx(ctx, "complete provider mapping", func(tx pgx.Tx) error {
		var err error
		m, err = scanMapping(tx.QueryRow(ctx, `UPDATE provider_files
			SET state = 'ready', provider_file_id = $1, claim_id = '', verified_at = $2, last_used_at = $2
			WHERE sha256 = $3 AND provider = $4 AND purpose = $5 AND state = 'pending' AND claim_id = $6
			RETURNING `+mappingColumns,
			providerFileID, at, key.SHA256, key.Provider, key.Purpose, claimID))
		if err == nil {
			return nil
		}
		if !errNoRows(err) {
			return mapError(ctx, "complete provider mapping", err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM provider_files WHERE sha256 = $1 AND provider = $2 AND purpose = $3`,
			key.SHA256, key.Provider, key.Purpose).Scan(&n); err != nil {
			return mapError(ctx, "complete provider mapping", err)
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
	m, err := scanMapping(db.pool.QueryRow(ctx, `SELECT `+mappingColumns+` FROM provider_files
		WHERE sha256 = $1 AND provider = $2 AND purpose = $3`, key.SHA256, key.Provider, key.Purpose))
	if errNoRows(err) {
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
	return db.tx(ctx, "touch provider mapping", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE provider_files
			SET verified_at = coalesce($1, verified_at), last_used_at = coalesce($2, last_used_at)
			WHERE sha256 = $3 AND provider = $4 AND purpose = $5 AND state = 'ready'`,
			optTime(verified), optTime(used), key.SHA256, key.Provider, key.Purpose)
		if err != nil {
			return mapError(ctx, "touch provider mapping", err)
		}
		if tag.RowsAffected() == 0 {
			return filehub.Errorf(filehub.ENOTFOUND, "no ready provider mapping of %s at %s", key.SHA256, key.Provider)
		}
		return nil
	})
}

// DeleteProviderMapping deletes a mapping still as the caller read it; see
// filehub.ProviderStore.
func (db *DB) DeleteProviderMapping(ctx context.Context, m *filehub.ProviderMapping) (deleted bool, err error) {
	err = db.tx(ctx, "delete provider mapping", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM provider_files
			WHERE sha256 = $1 AND provider = $2 AND purpose = $3 AND state = $4 AND provider_file_id = $5 AND claim_id = $6`,
			m.SHA256, m.Provider, m.Purpose, m.State, m.ProviderFileID, m.ClaimID)
		if err != nil {
			return mapError(ctx, "delete provider mapping", err)
		}
		deleted = tag.RowsAffected() > 0
		return nil
	})
	return deleted, err
}

// ListProviderMappings returns a page of mappings in key order; see
// filehub.ProviderStore. COLLATE "C" makes the order byte order, as in
// SQLite, whatever the database's collation.
func (db *DB) ListProviderMappings(ctx context.Context, after filehub.ProviderKey, limit int) ([]*filehub.ProviderMapping, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	if limit <= 0 {
		limit = 1000
	}
	rows, err := db.pool.Query(ctx, `SELECT `+mappingColumns+` FROM provider_files
		WHERE (sha256 COLLATE "C", provider COLLATE "C", purpose COLLATE "C") > ($1 COLLATE "C", $2 COLLATE "C", $3 COLLATE "C")
		ORDER BY sha256 COLLATE "C", provider COLLATE "C", purpose COLLATE "C" LIMIT $4`,
		after.SHA256, after.Provider, after.Purpose, limit)
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
