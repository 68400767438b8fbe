package wsserver_test

import (
	"context"
	"sync"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/wsproto"
	"github.com/filehub/filehub/wsserver"
)

// fakeCleanup records the cleanup.run calls it gets.
type fakeCleanup struct {
	mu     sync.Mutex
	calls  []api.CleanupRunRequest
	actors []string
	err    error
}

func (f *fakeCleanup) RunCleanup(ctx context.Context, req api.CleanupRunRequest) (*api.CleanupReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, req)
	f.actors = append(f.actors, filehub.ActorFromContext(ctx))
	if f.err != nil {
		return nil, f.err
	}
	return &api.CleanupReport{RunID: int64(len(f.calls)), DryRun: req.DryRun}, nil
}

func (f *fakeCleanup) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func TestCleanupRun(t *testing.T) {
	fc := &fakeCleanup{}
	e := newEnv(t, wsserver.Config{Cleanup: fc})
	admin, _ := e.connect(t, "admin")

	var res struct {
		RunID  int  `json:"run_id"`
		DryRun bool `json:"dry_run"`
	}
	wantResult(t, admin.call(1, "c1", wsserver.MethodCleanupRun, `{"dry_run":true,"force":true,"only":["trash","stale_temp"]}`), &res)
	if res.RunID != 1 || !res.DryRun {
		t.Fatalf("result = %+v", res)
	}
	k, err := e.db.FindAPIKeyByHash(t.Context(), filehub.HashAPIKey(e.keys["admin"]))
	if err != nil {
		t.Fatal(err)
	}
	fc.mu.Lock()
	got, actor := fc.calls[0], fc.actors[0]
	fc.mu.Unlock()
	if !got.DryRun || !got.Force || len(got.Only) != 2 || got.Only[0] != "trash" || actor != k.ID {
		t.Errorf("runner got %+v as %q, want the params as key %s", got, actor, k.ID)
	}

	// A request id sent again gets the first result: the run is not
	// repeated.
	wantResult(t, admin.call(2, "c1", wsserver.MethodCleanupRun, `{}`), &res)
	if res.RunID != 1 || fc.count() != 1 {
		t.Errorf("resent id: result %+v after %d runs, want run 1 once", res, fc.count())
	}
	// Empty params: a real run of everything.
	wantResult(t, admin.call(3, "c2", wsserver.MethodCleanupRun, ``), &res)
	if res.RunID != 2 || res.DryRun {
		t.Errorf("no params: result %+v", res)
	}
	// Every field of the HTTP body is accepted, provider_orphans too.
	wantResult(t, admin.call(4, "c5", wsserver.MethodCleanupRun, `{"provider_orphans":"delete"}`), &res)
	fc.mu.Lock()
	last := fc.calls[len(fc.calls)-1]
	fc.mu.Unlock()
	if last.ProviderOrphans != "delete" {
		t.Errorf("runner got %+v, want provider_orphans delete", last)
	}
	// A misspelt field must not start a run.
	wantError(t, admin.call(5, "c3", wsserver.MethodCleanupRun, `{"dryrun":true}`), filehub.EINVALID)

	// The runner's errors keep their codes.
	fc.mu.Lock()
	fc.err = filehub.Errorf(filehub.ECONFLICT, "a cleanup is already running")
	fc.mu.Unlock()
	wantError(t, admin.call(6, "c4", wsserver.MethodCleanupRun, `{}`), filehub.ECONFLICT)

	// Only admin keys may run cleanups.
	for _, name := range []string{"rw", "ro", "wo"} {
		c, _ := e.connect(t, name)
		wantError(t, c.call(1, "x", wsserver.MethodCleanupRun, `{}`), filehub.EFORBIDDEN)
	}
	if n := fc.count(); n != 4 {
		t.Errorf("runner called %d times, want 4 (refused requests must not reach it)", n)
	}
}

func TestCleanupRunWithoutService(t *testing.T) {
	e := newEnv(t, wsserver.Config{})
	admin, _ := e.connect(t, "admin")
	wantError(t, admin.call(1, "c1", wsserver.MethodCleanupRun, `{}`), wsproto.CodeUnknownMethod)
}
