package mcpserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/auth"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/internal/fakeprovider"
	"github.com/filehub/filehub/internal/testlog"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/mcpserver"
	"github.com/filehub/filehub/openai"
	"github.com/filehub/filehub/providers"
	"github.com/filehub/filehub/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Key names created by newEnv, by the scopes they hold.
const (
	keyAdmin   = "admin"
	keyRead    = "read"
	keyWrite   = "write"
	keyRW      = "rw"
	keyMetrics = "metrics"
	keyRevoked = "revoked"
)

// Limits of the test server, small so that limit tests are cheap.
const (
	testMaxUpload = 4096
	testMaxBlob   = 2048
)

// env is an MCP server on the Local backend of real stores in a temp dir,
// served over Streamable HTTP on 127.0.0.1, with one key per scope set and
// a provider stand-in named "test".
type env struct {
	t      testing.TB
	meta   *sqlite.DB
	svc    *files.Service
	local  *mcpserver.Local
	srv    *mcpserver.Server
	http   *httptest.Server
	reg    *prometheus.Registry
	fp     *fakeprovider.Server
	keys   map[string]string // name → secret
	keyIDs map[string]string // name → key ID
}

func newEnv(t *testing.T, mutate func(*mcpserver.Config)) *env {
	t.Helper()
	return newEnvTB(t, mutate)
}

func newEnvTB(t testing.TB, mutate func(*mcpserver.Config)) *env {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	meta, err := sqlite.Open(ctx, filepath.Join(dir, "filehub.db"), sqlite.Config{})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { meta.Close() })
	blobs, err := localfs.Open(dir, localfs.Config{})
	if err != nil {
		t.Fatalf("localfs.Open: %v", err)
	}
	logger := testlog.New(t)
	reg := prometheus.NewRegistry()
	e := &env{t: t, meta: meta, reg: reg, keys: map[string]string{}, keyIDs: map[string]string{}}
	e.svc, err = files.New(meta, blobs, files.Config{MinFreeSpace: -1, Logger: logger, Changed: func() {
		if e.local != nil {
			e.local.Notify()
		}
	}})
	if err != nil {
		t.Fatalf("files.New: %v", err)
	}
	e.fp = fakeprovider.New(t, "sk-test")
	prov, err := openai.New(openai.Config{Name: "test", BaseURL: e.fp.URL, APIKey: "sk-test", Purpose: "file-extract"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prov.Close)
	pusher, err := providers.New(meta, blobs, []filehub.Provider{prov}, providers.Config{PollInterval: time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatalf("providers.New: %v", err)
	}
	cleaner, err := cleanup.New(ctx, meta, blobs, cleanup.Config{Logger: logger, InstanceID: "test"})
	if err != nil {
		t.Fatalf("cleanup.New: %v", err)
	}
	e.local = mcpserver.NewLocal(e.svc, meta, pusher, cleaner)
	e.local.PollInterval = 20 * time.Millisecond
	cfg := mcpserver.Config{MaxUpload: testMaxUpload, MaxBlobBytes: testMaxBlob, RateLimit: -1, Logger: logger, Registerer: reg}
	if mutate != nil {
		mutate(&cfg)
	}
	e.srv, err = mcpserver.New(e.local, cfg)
	if err != nil {
		t.Fatalf("mcpserver.New: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.srv.Run(runCtx) }()
	mux := http.NewServeMux()
	mux.Handle("/v1/mcp", e.srv.HTTPHandler(mcpserver.FromAuthenticator(auth.New(meta, auth.Config{}))))
	e.http = httptest.NewServer(mux)
	t.Cleanup(func() {
		e.srv.Close()
		e.http.Close()
		stop()
		<-done
	})
	for name, scopes := range map[string][]filehub.Scope{
		keyAdmin: {filehub.ScopeAdmin}, keyRead: {filehub.ScopeRead}, keyWrite: {filehub.ScopeWrite},
		keyRW: {filehub.ScopeRead, filehub.ScopeWrite}, keyMetrics: {filehub.ScopeMetrics}, keyRevoked: {filehub.ScopeAdmin},
	} {
		secret := filehub.NewAPIKeySecret()
		k := &filehub.APIKey{ID: filehub.NewID("k_"), Name: name, Scopes: scopes, CreatedAt: time.Now().UTC(), Hash: filehub.HashAPIKey(secret)}
		if err := meta.CreateAPIKey(ctx, k); err != nil {
			t.Fatalf("CreateAPIKey: %v", err)
		}
		e.keys[name], e.keyIDs[name] = secret, k.ID
	}
	if _, err := meta.RevokeAPIKey(ctx, keyRevoked, time.Now()); err != nil {
		t.Fatal(err)
	}
	return e
}

// bearer adds an Authorization header to every request.
type bearer struct {
	key  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.base.RoundTrip(r)
}

// session is a client session with the notifications it received.
type session struct {
	*mcp.ClientSession
	mu      sync.Mutex
	updated []string // URIs of resources/updated
	changed int      // resources/list_changed count
	notify  chan struct{}
}

// connect opens a session over Streamable HTTP with the named key's
// secret, closed when the test ends.
func (e *env) connect(name string) *session {
	e.t.Helper()
	s, err := e.tryConnect(name)
	if err != nil {
		e.t.Fatalf("connect with key %s: %v", name, err)
	}
	return s
}

func (e *env) tryConnect(name string) (*session, error) {
	s := &session{notify: make(chan struct{}, 100)}
	c := mcp.NewClient(&mcp.Implementation{Name: "filehub-test", Version: "1"}, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, r *mcp.ResourceUpdatedNotificationRequest) {
			s.mu.Lock()
			s.updated = append(s.updated, r.Params.URI)
			s.mu.Unlock()
			s.notify <- struct{}{}
		},
		ResourceListChangedHandler: func(context.Context, *mcp.ResourceListChangedRequest) {
			s.mu.Lock()
			s.changed++
			s.mu.Unlock()
			s.notify <- struct{}{}
		},
	})
	tr := &mcp.StreamableClientTransport{
		Endpoint:   e.http.URL + "/v1/mcp",
		HTTPClient: &http.Client{Transport: bearer{e.keys[name], e.http.Client().Transport}},
		MaxRetries: -1,
	}
	cs, err := c.Connect(e.t.Context(), tr, nil)
	if err != nil {
		return nil, err
	}
	s.ClientSession = cs
	e.t.Cleanup(func() { cs.Close() })
	return s, nil
}

// waitFor waits until cond holds on the session's notifications, or fails
// the test after 10s.
func (s *session) waitFor(t *testing.T, what string, cond func(updated []string, changed int) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		ok := cond(s.updated, s.changed)
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.notify:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// call calls a tool and returns its result; a protocol error fails the
// test.
func (s *session) call(t *testing.T, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	return res
}

// mustCall calls a tool that must succeed and decodes its structured
// content into out (if not nil).
func (s *session) mustCall(t *testing.T, tool string, args map[string]any, out any) *mcp.CallToolResult {
	t.Helper()
	res := s.call(t, tool, args)
	if res.IsError {
		t.Fatalf("%s(%v): tool error: %s", tool, args, resultText(res))
	}
	if out != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: structured content %s: %v", tool, b, err)
		}
	}
	return res
}

// mustFail calls a tool that must answer with a tool error containing
// want, and returns the error's text.
func (s *session) mustFail(t *testing.T, tool string, args map[string]any, want string) string {
	t.Helper()
	res := s.call(t, tool, args)
	txt := resultText(res)
	if !res.IsError {
		t.Fatalf("%s(%v) succeeded (%s), want a tool error containing %q", tool, args, truncate(txt), want)
	}
	if !strings.Contains(txt, want) {
		t.Fatalf("%s(%v) error = %q, want it to contain %q", tool, args, txt, want)
	}
	return txt
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// fileCount returns how many file records exist, live or deleted.
func (e *env) fileCount() int {
	e.t.Helper()
	fs, _, err := e.meta.ListFiles(e.t.Context(), filehub.FileFilter{Limit: 1000, IncludeDeleted: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(fs)
}
