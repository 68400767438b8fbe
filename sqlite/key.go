package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

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
	return db.write(ctx, "create API key", func(wctx context.Context, tx *wtx) error {
		_, err := tx.exec(wctx,
			`INSERT INTO api_keys (id, name, scopes, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)`,
			k.ID, k.Name, strings.Join(scopes, ","), k.Hash, nanos(k.CreatedAt), nullNanos(k.RevokedAt))
		if err != nil {
			if filehub.ErrorCode(mapError(wctx, "", err)) == filehub.ECONFLICT {
				return filehub.WrapError(filehub.ECONFLICT, "an API key with this ID, name or secret exists", err)
			}
			return mapError(wctx, "insert API key", err)
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
	k, err := scanKey(db.readQueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "API key not found")
	}
	if err != nil {
		return nil, mapError(ctx, "find API key", err)
	}
	return k, nil
}

// ListAPIKeys returns every key, oldest first.
func (db *DB) ListAPIKeys(ctx context.Context) ([]*filehub.APIKey, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	rows, err := db.rdb.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at, rowid`)
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
// it is already revoked and EINVALID if at is zero.
func (db *DB) RevokeAPIKey(ctx context.Context, idOrName string, at time.Time) (*filehub.APIKey, error) {
	if at.IsZero() {
		return nil, filehub.Errorf(filehub.EINVALID, "revocation time is required")
	}
	var k *filehub.APIKey
	err := db.write(ctx, "revoke API key", func(wctx context.Context, tx *wtx) error {
		var err error
		// An ID match wins over a name match: a key could be named like
		// another key's ID.
		k, err = scanKey(tx.queryRow(wctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, idOrName))
		if errors.Is(err, sql.ErrNoRows) {
			k, err = scanKey(tx.queryRow(wctx, `SELECT `+keyColumns+` FROM api_keys WHERE name = ?`, idOrName))
		}
		if errors.Is(err, sql.ErrNoRows) {
			return filehub.Errorf(filehub.ENOTFOUND, "API key %q not found", idOrName)
		}
		if err != nil {
			return mapError(wctx, "find API key", err)
		}
		if k.RevokedAt != nil {
			return filehub.Errorf(filehub.ECONFLICT, "API key %q is already revoked", k.Name)
		}
		if _, err := tx.exec(wctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, nanos(at), k.ID); err != nil {
			return mapError(wctx, "revoke API key", err)
		}
		t := fromNanos(nanos(at))
		k.RevokedAt = &t
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

func scanKey(s scanner) (*filehub.APIKey, error) {
	var (
		k       filehub.APIKey
		scopes  string
		created int64
		revoked sql.NullInt64
	)
	if err := s.Scan(&k.ID, &k.Name, &scopes, &k.Hash, &created, &revoked); err != nil {
		return nil, err
	}
	for _, s := range strings.Split(scopes, ",") {
		k.Scopes = append(k.Scopes, filehub.Scope(s))
	}
	k.CreatedAt = fromNanos(created)
	k.RevokedAt = nullTime(revoked)
	return &k, nil
}
