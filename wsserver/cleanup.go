package wsserver

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// MethodCleanupRun runs a cleanup (admin scope): params CleanupRequest,
// result the run's report. It is defined here, beside its handler, because
// the cleanup service is an optional part of a server (Config.Cleanup).
const MethodCleanupRun = "cleanup.run"

// cleanupTimeout bounds a cleanup.run request. A run over a large store
// takes longer than rpcTimeout allows other requests; it is bounded by the
// cleanup lease's lifetime instead, so a stuck run does not hold the
// session's request queue for ever.
const cleanupTimeout = 10 * time.Minute

// CleanupRequest is the params of cleanup.run, like the body of
// POST /v1/cleanup/runs.
type CleanupRequest struct {
	DryRun bool `json:"dry_run"`
	// Force lets the run exceed the safety cap.
	Force bool `json:"force"`
	// Only restricts the run to these kinds; empty means all.
	Only []string `json:"only"`
}

// CleanupRunner runs cleanups for cleanup.run. The server passes the
// session's key as the actor of ctx (filehub.ActorFromContext). cmd/filehub
// adapts the cleanup service to it, so this package does not depend on it.
type CleanupRunner interface {
	// RunCleanup runs one cleanup and returns its report, sent as the
	// result in JSON. Errors: ECONFLICT when another run is in progress or
	// the safety cap tripped without Force, EINVALID for an unknown kind.
	RunCleanup(ctx context.Context, req CleanupRequest) (any, error)
}

// runCleanup is the cleanup.run method.
func (ss *session) runCleanup(ctx context.Context, key *filehub.APIKey, params json.RawMessage) (any, error) {
	if !key.Has(filehub.ScopeAdmin) {
		return nil, filehub.Errorf(filehub.EFORBIDDEN, "this key lacks the %q scope", filehub.ScopeAdmin)
	}
	runner := ss.srv.cfg.Cleanup
	if runner == nil {
		return nil, &rpcError{wsproto.CodeUnknownMethod, "cleanup.run is not available: this server has no cleanup service"}
	}
	var req CleanupRequest
	if len(params) > 0 && string(params) != "null" {
		dec := json.NewDecoder(bytes.NewReader(params))
		dec.DisallowUnknownFields() // a misspelt dry_run must not start a real run
		if err := dec.Decode(&req); err != nil {
			return nil, filehub.Errorf(filehub.EINVALID, "bad params for %s: %v", MethodCleanupRun, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	return runner.RunCleanup(ctx, req)
}
