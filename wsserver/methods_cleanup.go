package wsserver

import (
	"context"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/wsproto"
)

// MethodCleanupRun runs a cleanup (admin scope): params
// api.CleanupRunRequest, the body of POST /v1/cleanup/runs; result
// api.CleanupReport.
const MethodCleanupRun = wsproto.MethodCleanupRun

// cleanupTimeout bounds a cleanup.run request. A run over a large store
// takes longer than rpcTimeout allows other requests; it is bounded by the
// cleanup lease's lifetime instead, so a stuck run does not hold the
// session's request queue for ever.
const cleanupTimeout = 10 * time.Minute

// CleanupRunner runs cleanups for cleanup.run. The server passes the
// session's key as the actor of ctx (filehub.ActorFromContext).
// cleanup.WireRunner adapts the cleanup service to it, so this package does
// not depend on it.
type CleanupRunner interface {
	// RunCleanup runs one cleanup and returns its report. Errors:
	// ECONFLICT when another run is in progress or the safety cap tripped
	// without Force, EINVALID for an unknown kind or provider orphans mode.
	RunCleanup(ctx context.Context, req api.CleanupRunRequest) (*api.CleanupReport, error)
}

func (ss *session) cleanupRun(ctx context.Context, p *api.CleanupRunRequest) (any, *subscription, error) {
	runner := ss.srv.cfg.Cleanup
	if runner == nil {
		return nil, nil, &rpcError{wsproto.CodeUnknownMethod, "cleanup.run is not available: this server has no cleanup service"}
	}
	rep, err := runner.RunCleanup(ctx, *p)
	if err != nil {
		return nil, nil, err
	}
	if rep == nil {
		return nil, nil, filehub.Errorf(filehub.EINTERNAL, "the cleanup service returned no report")
	}
	return rep, nil, nil
}
