package wsserver

import (
	"context"
	"encoding/json"
	"time"

	"github.com/filehub/filehub"
)

// MethodProvidersPush pushes a file's content to a model provider (write
// scope): params {"id":"f_…","provider":"kimi"}, result
// {"provider","provider_file_id","reused"}. It is defined here, beside its
// handler, because the push service is an optional part of a server
// (Config.Providers).
const MethodProvidersPush = "providers.push"

// pushTimeout bounds a providers.push request. An upload of a large file
// to a slow provider, retried with backoff, takes far longer than
// rpcTimeout; the session's later requests wait meanwhile, as they do for
// cleanup.run.
const pushTimeout = 15 * time.Minute

// PushResult is the result of providers.push, like the answer of
// POST /v1/files/{id}/providers/{name}.
type PushResult struct {
	Provider       string `json:"provider"`
	ProviderFileID string `json:"provider_file_id"`
	// Reused is true when the provider already had the content.
	Reused bool `json:"reused"`
}

// ProviderPusher pushes files' content to model providers for
// providers.push. cmd/filehub adapts the push service to it, so this
// package does not depend on it.
type ProviderPusher interface {
	// PushToProvider makes sure the content of file fileID exists at the
	// provider named provider. Errors: ENOTFOUND for an unknown provider
	// or file, ETOOLARGE for a file over the provider's limit, and the
	// provider's error (with its code) if the upload fails.
	PushToProvider(ctx context.Context, fileID, provider string) (*PushResult, error)
}

// pushParams is the params of providers.push.
type pushParams struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
}

// pushToProvider is the providers.push method.
func (ss *session) pushToProvider(ctx context.Context, key *filehub.APIKey, params json.RawMessage) (any, error) {
	if !key.Has(filehub.ScopeWrite) {
		return nil, filehub.Errorf(filehub.EFORBIDDEN, "this key lacks the %q scope", filehub.ScopeWrite)
	}
	var p pushParams
	if len(params) > 0 && string(params) != "null" {
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, filehub.Errorf(filehub.EINVALID, "bad params for %s: %v", MethodProvidersPush, err)
		}
	}
	if p.ID == "" || p.Provider == "" {
		return nil, filehub.Errorf(filehub.EINVALID, "params.id and params.provider are required")
	}
	pusher := ss.srv.cfg.Providers
	if pusher == nil {
		// A server without providers knows none of their names: the same
		// answer as the HTTP route's, so clients handle one case.
		return nil, filehub.Errorf(filehub.ENOTFOUND, "unknown provider %q", p.Provider)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushTimeout)
	defer cancel()
	return pusher.PushToProvider(ctx, p.ID, p.Provider)
}
