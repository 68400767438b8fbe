package httpapi_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/fakeprovider"
	"github.com/filehub/filehub/openai"
	"github.com/filehub/filehub/providers"
)

// newProviderEnv returns an env whose push service has one provider,
// "test": the stand-in it also returns.
func newProviderEnv(t *testing.T) (*env, *fakeprovider.Server) {
	t.Helper()
	fp := fakeprovider.New(t, "sk-test")
	c, err := openai.New(openai.Config{Name: "test", BaseURL: fp.URL, APIKey: "sk-test", Purpose: "file-extract", MaxFileSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return newEnv(t, envConfig{providers: []filehub.Provider{c}}), fp
}

func TestPush(t *testing.T) {
	e, fp := newProviderEnv(t)
	up := e.upload("notes.txt", []byte("push me"))
	path := "/v1/files/" + up.ID + "/providers/test"

	resp, body := e.do("POST", path, keyWrite, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	var first providers.Result
	mustJSON(t, body, &first)
	if first.Provider != "test" || first.ProviderFileID == "" || first.Reused {
		t.Errorf("first push = %s", body)
	}
	held := fp.Files()
	if len(held) != 1 || held[0].SHA256 != sum([]byte("push me")) || held[0].Filename != "notes.txt" {
		t.Errorf("the provider holds %+v", held)
	}
	resp, body = e.do("POST", path, keyRW, nil, nil)
	var second providers.Result
	mustJSON(t, body, &second)
	if resp.StatusCode != http.StatusOK || !second.Reused || second.ProviderFileID != first.ProviderFileID {
		t.Errorf("second push = %d %s, want reuse of %s", resp.StatusCode, body, first.ProviderFileID)
	}
	if fp.Uploads() != 1 {
		t.Errorf("%d uploads, want 1", fp.Uploads())
	}
}

func TestPushConcurrentOverHTTP(t *testing.T) {
	e, fp := newProviderEnv(t)
	up := e.upload("same.txt", []byte("one content"))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			resp, body := e.do("POST", "/v1/files/"+up.ID+"/providers/test", keyWrite, nil, nil)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("push: %d %s", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	if fp.Uploads() != 1 {
		t.Errorf("20 concurrent pushes uploaded %d times, want once", fp.Uploads())
	}
}

func TestPushErrors(t *testing.T) {
	e, fp := newProviderEnv(t)
	up := e.upload("a.txt", []byte("small"))
	big := e.upload("big.txt", []byte(strings.Repeat("x", 101)))

	resp, body := e.do("POST", "/v1/files/"+up.ID+"/providers/kimi", keyWrite, nil, nil)
	p := wantProblem(t, resp, body, http.StatusNotFound, filehub.ENOTFOUND)
	if !strings.Contains(p.Detail, `unknown provider "kimi"`) {
		t.Errorf("detail %q", p.Detail)
	}
	resp, body = e.do("POST", "/v1/files/f_nope/providers/test", keyWrite, nil, nil)
	wantProblem(t, resp, body, http.StatusNotFound, filehub.ENOTFOUND)
	resp, body = e.do("POST", "/v1/files/"+big.ID+"/providers/test", keyWrite, nil, nil)
	wantProblem(t, resp, body, http.StatusRequestEntityTooLarge, filehub.ETOOLARGE)

	// The provider's refusal is passed on with its status and message.
	fp.Inject("POST /files", fakeprovider.Fault{Status: 400})
	resp, body = e.do("POST", "/v1/files/"+up.ID+"/providers/test", keyWrite, nil, nil)
	p = wantProblem(t, resp, body, http.StatusBadRequest, filehub.EINVALID)
	if !strings.Contains(p.Detail, "400") || !strings.Contains(p.Detail, "injected 400") {
		t.Errorf("detail %q does not pass the provider's error on", p.Detail)
	}
}

func TestPushWithoutProviders(t *testing.T) {
	e := newEnv(t, envConfig{})
	up := e.upload("a.txt", []byte("x"))
	resp, body := e.do("POST", "/v1/files/"+up.ID+"/providers/kimi", keyWrite, nil, nil)
	p := wantProblem(t, resp, body, http.StatusNotFound, filehub.ENOTFOUND)
	if !strings.Contains(p.Detail, "unknown provider") {
		t.Errorf("detail %q", p.Detail)
	}
}
