package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/filehub/filehub"
)

// BootstrapName is the name of the admin key New creates in an empty store.
const BootstrapName = "bootstrap"

// MinBootstrapKeyLen is the shortest Config.BootstrapKey accepted: an
// admin key must not be guessable.
const MinBootstrapKeyLen = 16

// bootstrapKey makes sure the server can be used: if no API key exists, it
// stores secret (when not empty) or a new random secret as an admin key,
// and returns the generated secret (else ""). Later starts find the key
// and do nothing.
func bootstrapKey(ctx context.Context, meta filehub.MetaStore, secret string, log *slog.Logger) (string, error) {
	keys, err := meta.ListAPIKeys(ctx)
	if err != nil {
		return "", fmt.Errorf("list API keys: %w", err)
	}
	if len(keys) > 0 {
		if secret != "" {
			log.Debug("FILEHUB_BOOTSTRAP_KEY ignored: API keys exist")
		}
		return "", nil
	}
	generated := secret == ""
	if generated {
		secret = filehub.NewAPIKeySecret()
	} else if len(strings.TrimSpace(secret)) < MinBootstrapKeyLen {
		return "", fmt.Errorf("FILEHUB_BOOTSTRAP_KEY is too short: use at least %d random characters", MinBootstrapKeyLen)
	}
	k := &filehub.APIKey{
		ID:        filehub.NewID("k_"),
		Name:      BootstrapName,
		Scopes:    []filehub.Scope{filehub.ScopeAdmin},
		CreatedAt: time.Now().UTC(),
		Hash:      filehub.HashAPIKey(secret),
	}
	if err := meta.CreateAPIKey(ctx, k); err != nil {
		// Several servers starting at once on a shared database with the
		// same FILEHUB_BOOTSTRAP_KEY race to create it: the loser finds
		// the winner's key, which is the one it wanted.
		if !generated && filehub.ErrorCode(err) == filehub.ECONFLICT {
			if _, ferr := meta.FindAPIKeyByHash(ctx, k.Hash); ferr == nil {
				log.Info("admin API key from FILEHUB_BOOTSTRAP_KEY created by another server")
				return "", nil
			}
		}
		return "", fmt.Errorf("create bootstrap key: %w", err)
	}
	log.Info("created admin API key", "id", k.ID, "name", k.Name, "from_env", !generated)
	if !generated {
		return "", nil
	}
	return secret, nil
}
