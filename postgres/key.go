package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
)

const keyColumns = `id, name, scopes, hash, created_at, revoked_at`

// CreateAPIKey stores k. It returns EINVALID if a field is missing or a
// scope is unknown, and ECONFLICT if a key with the same ID, name or hash
// exists.
func (db *DB) CreateAPIKey(ctx context.Context, k *filehub.APIKey) error {
	if err := k.Validate(); err != nil {
		return err
	}
	scopes := make([]string, len(k.Scopes))
	for i, s := range k.Scopes {
		scopes[i] = string(s)
	}
	return db.tx(ctx, "create API key", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx,
			`INSERT INTO api_keys (id, name, scopes, hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			k.ID, k.Name, scopes, k.Hash, k.CreatedAt, k.RevokedAt)
		if err != nil {
			if filehub.ErrorCode(mapError(ctx, "", err)) == filehub.ECONFLICT {
				return filehub.WrapError(filehub.ECONFLICT, "an API key with this ID, name or secret exists", err)
			}
			return mapError(ctx, "insert API key", err)
		}
		return nil
	})
}

// FindAPIKeyByHash returns the key with the given hash, revoked or not. It
// returns ENOTFOUND if there is none.
func (db *DB) FindAPIKeyByHash(ctx context.Context, hash []byte) (*filehub.APIKey, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	k, err := scanKey(db.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = $1`, hash))
	if errNoRows(err) {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "API key not found")
	}
	if err != nil {
		return nil, mapError(ctx, "find API key", err)
	}
	return k, nil
}

// ListAPIKeys returns every key, oldest first (keys created at the same
// time in the order they were stored).
func (db *DB) ListAPIKeys(ctx context.Context) ([]*filehub.APIKey, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	rows, err := db.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at, seq`)
	if err != nil {
		return nil, mapError(ctx, "list API keys", err)
	}
	defer rows.Close()
	var keys []*filehub.APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, mapError(ctx, "list API keys", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(ctx, "list API keys", err)
	}
	return keys, nil
}

// RevokeAPIKey marks the key with the given ID or, failing that, name
// revoked at `at`. It returns ENOTFOUND if there is no such key, ECONFLICT if
// it is already revoked and EINVALID if at is zero. The key's row is locked
// while it is checked, so of two concurrent revokes one gets ECONFLICT.
func (db *DB) RevokeAPIKey(ctx context.Context, idOrName string, at time.Time) (*filehub.APIKey, error) {
	if at.IsZero() {
		return nil, filehub.Errorf(filehub.EINVALID, "revocation time is required")
	}
	var k *filehub.APIKey
	err := db.tx(ctx, "revoke API key", func(tx pgx.Tx) error {
		var err error
		// An ID match wins over a name match: a key could be named like
		// another key's ID.
		k, err = scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1 FOR UPDATE`, idOrName))
		if errNoRows(err) {
			k, err = scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE name = $1 FOR UPDATE`, idOrName))
		}
		if errNoRows(err) {
			return filehub.Errorf(filehub.ENOTFOUND, "API key %q not found", idOrName)
		}
		if err != nil {
			return mapError(ctx, "find API key", err)
		}
		if k.RevokedAt != nil {
			return filehub.Errorf(filehub.ECONFLICT, "API key %q is already revoked", k.Name)
		}
		var revoked time.Time
		if err := tx.QueryRow(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 RETURNING revoked_at`, at, k.ID).Scan(&revoked); err != nil {
			return mapError(ctx, "revoke API key", err)
		}
		revoked = revoked.UTC()
		k.RevokedAt = &revoked
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

func scanKey(s scanner) (*filehub.APIKey, error) {
	var (
		k      filehub.APIKey
		scopes []string
	)
	if err := s.Scan(&k.ID, &k.Name, &scopes, &k.Hash, &k.CreatedAt, &k.RevokedAt); err != nil {
		return nil, err
	}
	for _, s := range scopes {
		k.Scopes = append(k.Scopes, filehub.Scope(s))
	}
	k.CreatedAt = k.CreatedAt.UTC()
	k.RevokedAt = utcPtr(k.RevokedAt)
	return &k, nil
}
