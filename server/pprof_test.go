package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/server"
)

// TestPprofNeedsMetricsScope runs a daemon with Config.PprofListen: the
// profiles answer only to keys with the metrics scope (or admin), other
// requests get the API's problem documents, /debug/pprof/cmdline (which
// may show secrets) is not served, and without PprofListen there is no
// such listener at all.
func TestPprofNeedsMetricsScope(t *testing.T) {
	if addr := MustNewClosed(t, testConfig(t, t.TempDir())); addr != "" {
		t.Fatalf("PprofAddr = %q without Config.PprofListen, want none", addr)
	}

	cfg := testConfig(t, t.TempDir())
	cfg.PprofListen = "127.0.0.1:0"
	srv := MustNew(t, cfg)
	ctx, stop := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(ctx) }()
	defer func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	keys := map[string][]filehub.Scope{
		"fhk_pprof-test-metrics-0123456789": {filehub.ScopeMetrics},
		"fhk_pprof-test-readwrite-01234567": {filehub.ScopeRead, filehub.ScopeWrite},
	}
	for secret, scopes := range keys {
		k := &filehub.APIKey{ID: filehub.NewID("k_"), Name: string(scopes[0]), Scopes: scopes,
			CreatedAt: time.Now().UTC(), Hash: filehub.HashAPIKey(secret)}
		if err := srv.Meta().CreateAPIKey(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	get := func(path, secret string) (int, string, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+srv.PprofAddr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), body
	}

	for _, tc := range []struct {
		name, path, secret string
		code               string // "" for 200
	}{
		{"NoKey", "/debug/pprof/", "", filehub.EUNAUTHORIZED},
		{"UnknownKey", "/debug/pprof/heap", "fhk_not-a-key-000000000000000000", filehub.EUNAUTHORIZED},
		{"ReadWriteKey", "/debug/pprof/heap", "fhk_pprof-test-readwrite-01234567", filehub.EFORBIDDEN},
		{"MetricsKey", "/debug/pprof/heap", "fhk_pprof-test-metrics-0123456789", ""},
		{"AdminKey", "/debug/pprof/goroutine?debug=1", testKey, ""},
		{"ShortCPUProfile", "/debug/pprof/profile?seconds=1", "fhk_pprof-test-metrics-0123456789", ""},
		{"NoCmdline", "/debug/pprof/cmdline", testKey, filehub.ENOTFOUND},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, ctype, body := get(tc.path, tc.secret)
			if tc.code == "" {
				if status != http.StatusOK || len(body) == 0 {
					t.Fatalf("status %d, %d bytes; want 200 and a profile", status, len(body))
				}
				return
			}
			if tc.code == filehub.ENOTFOUND {
				// pprof.Index's own 404 of a profile it does not know.
				if status != http.StatusNotFound {
					t.Fatalf("status %d, %q; want 404", status, body)
				}
				return
			}
			var p api.Problem
			if ctype != api.ProblemContentType || json.Unmarshal(body, &p) != nil ||
				p.Code != tc.code || status != api.StatusCode(tc.code) {
				t.Fatalf("status %d, %s %q; want a %s problem", status, ctype, body, tc.code)
			}
		})
	}
}

// MustNewClosed builds a daemon with cfg, closes it without running it and
// returns what PprofAddr said.
func MustNewClosed(tb testing.TB, cfg server.Config) string {
	tb.Helper()
	srv := MustNew(tb, cfg)
	defer srv.Close()
	return srv.PprofAddr()
}
