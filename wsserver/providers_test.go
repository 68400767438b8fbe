package wsserver_test

import (
	"context"
	"sync"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/wsserver"
)

// fakePusher records the providers.push calls it gets and knows one
// provider, "kimi".
type fakePusher struct {
	mu    sync.Mutex
	calls [][2]string // file ID, provider
}

func (f *fakePusher) PushToProvider(ctx context.Context, fileID, provider string) (*api.PushResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, [2]string{fileID, provider})
	if provider != "kimi" {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "unknown provider %q", provider)
	}
	if fileID == "f_big" {
		return nil, filehub.Errorf(filehub.ETOOLARGE, "too large for kimi")
	}
	// The first push uploads, later ones reuse.
	return &api.PushResult{Provider: provider, ProviderFileID: "file-" + fileID, Reused: len(f.calls) > 1}, nil
}

func (f *fakePusher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func TestProvidersPush(t *testing.T) { bothModes(t, testProvidersPush) }

func testProvidersPush(t *testing.T, m mode) {
	fp := &fakePusher{}
	e := newEnvIn(t, m, wsserver.Config{Providers: fp})
	rw, _ := e.connect(t, "rw")

	var res api.PushResult
	wantResult(t, rw.call(1, "p1", wsserver.MethodProvidersPush, `{"id":"f_1","provider":"kimi"}`), &res)
	if res != (api.PushResult{Provider: "kimi", ProviderFileID: "file-f_1"}) {
		t.Errorf("first push = %+v", res)
	}
	wantResult(t, rw.call(2, "p2", wsserver.MethodProvidersPush, `{"id":"f_1","provider":"kimi"}`), &res)
	if !res.Reused || res.ProviderFileID != "file-f_1" {
		t.Errorf("second push = %+v, want reused", res)
	}

	// The pusher's errors keep their codes; bad params never reach it.
	wantError(t, rw.call(3, "p3", wsserver.MethodProvidersPush, `{"id":"f_1","provider":"glm"}`), filehub.ENOTFOUND)
	wantError(t, rw.call(4, "p4", wsserver.MethodProvidersPush, `{"id":"f_big","provider":"kimi"}`), filehub.ETOOLARGE)
	wantError(t, rw.call(5, "p5", wsserver.MethodProvidersPush, `{"id":"f_1"}`), filehub.EINVALID)
	wantError(t, rw.call(6, "p6", wsserver.MethodProvidersPush, `{"id":7}`), filehub.EINVALID)
	if n := fp.count(); n != 4 {
		t.Errorf("pusher called %d times, want 4", n)
	}

	// Write scope is needed (admin implies it).
	for _, name := range []string{"ro"} {
		c, _ := e.connect(t, name)
		wantError(t, c.call(1, "x", wsserver.MethodProvidersPush, `{"id":"f_1","provider":"kimi"}`), filehub.EFORBIDDEN)
	}
	for _, name := range []string{"wo", "admin"} {
		c, _ := e.connect(t, name)
		wantResult(t, c.call(1, "x", wsserver.MethodProvidersPush, `{"id":"f_1","provider":"kimi"}`), &res)
	}
	if n := fp.count(); n != 6 {
		t.Errorf("pusher called %d times, want 6 (refused requests must not reach it)", n)
	}
}

func TestProvidersPushWithoutService(t *testing.T) { bothModes(t, testProvidersPushWithoutService) }

func testProvidersPushWithoutService(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{})
	rw, _ := e.connect(t, "rw")
	wantError(t, rw.call(1, "p1", wsserver.MethodProvidersPush, `{"id":"f_1","provider":"kimi"}`), filehub.ENOTFOUND)
}
