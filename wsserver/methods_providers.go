package wsserver

import (
	"context"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/wsproto"
)

// MethodProvidersPush pushes a file's content to a model provider (write
// scope): params api.PushRequest, the path of
// POST /v1/files/{id}/providers/{name}; result api.PushResult.
const MethodProvidersPush = wsproto.MethodProvidersPush

// pushTimeout bounds a providers.push request. An upload of a large file
// to a slow provider, retried with backoff, takes far longer than
// rpcTimeout; the session's later requests wait meanwhile, as they do for
// cleanup.run.
const pushTimeout = 15 * time.Minute

// ProviderPusher pushes files' content to model providers for
// providers.push. cmd/filehub adapts the push service to it, so this
// package does not depend on it.
type ProviderPusher interface {
	// PushToProvider makes sure the content of file fileID exists at the
	// provider named provider. Errors: ENOTFOUND for an unknown provider
	// or file, ETOOLARGE for a file over the provider's limit, and the
	// provider's error (with its code) if the upload fails.
	PushToProvider(ctx context.Context, fileID, provider string) (*api.PushResult, error)
}

func (ss *session) providersPush(ctx context.Context, p *api.PushRequest) (any, *subscription, error) {
	if p.ID == "" || p.Provider == "" {
		return nil, nil, filehub.Errorf(filehub.EINVALID, "params.id and params.provider are required")
	}
	pusher := ss.srv.cfg.Providers
	if pusher == nil {
		// A server without providers knows none of their names: the same
		// answer as the HTTP route's, so clients handle one case.
		return nil, nil, filehub.Errorf(filehub.ENOTFOUND, "unknown provider %q", p.Provider)
	}
	res, err := pusher.PushToProvider(ctx, p.ID, p.Provider)
	if err != nil {
		return nil, nil, err
	}
	return res, nil, nil
}
