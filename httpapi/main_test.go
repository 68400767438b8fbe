package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/internal/apitest"
	"github.com/filehub/filehub/internal/testlog"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/providers"
	"github.com/filehub/filehub/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testMaxUpload keeps size-limit tests cheap.
const testMaxUpload = 1 << 20

// env is a running API server on 127.0.0.1 with real stores in a temp dir
// and one key per interesting scope set.
type env struct {
	t       testing.TB
	dir     string
	meta    *sqlite.DB
	blobs   *faultyBlobs
	svc     *files.Service
	cleanup *cleanup.Service // nil unless envConfig.cleanup was set
	h       *httpapi.Handler
	srv     *httptest.Server
	reg     *prometheus.Registry
	keys    map[string]string // key name → secret
}

type envConfig struct {
	files files.Config
	http  httpapi.Config
	// faults configures the blob store wrapper.
	free      int64 // reported free space; 0: the real value
	failAfter int64 // staged writes fail with ESTORAGE after this many bytes; 0: never
	// cleanup, if not nil, configures a cleanup service on the env's
	// stores, served by the cleanup routes (Registerer and Logger are
	// filled in).
	cleanup *cleanup.Config
	// providers, if not empty, are served by a push service on the env's
	// stores.
	providers []filehub.Provider
}

// Key names created by newEnv, by the scopes they hold.
const (
	keyAdmin   = "admin"
	keyRead    = "read"
	keyWrite   = "write"
	keyRW      = "rw"
	keyMetrics = "metrics"
	keyRevoked = "revoked"
)

func newEnv(t testing.TB, cfg envConfig) *env {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	meta, err := sqlite.Open(ctx, filepath.Join(dir, "filehub.db"), sqlite.Config{})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { meta.Close() })
	store, err := localfs.Open(dir, localfs.Config{})
	if err != nil {
		t.Fatalf("localfs.Open: %v", err)
	}
	blobs := &faultyBlobs{BlobStore: store, real: store, free: cfg.free, failAfter: cfg.failAfter}

	reg := prometheus.NewRegistry()
	logger := testlog.New(t)
	fc := cfg.files
	if fc.MaxUploadSize == 0 {
		fc.MaxUploadSize = testMaxUpload
	}
	if fc.MinFreeSpace == 0 {
		fc.MinFreeSpace = -1 // the test machine's disk is not under test
	}
	fc.Registerer, fc.Logger = reg, logger
	svc, err := files.New(meta, blobs, fc)
	if err != nil {
		t.Fatalf("files.New: %v", err)
	}
	hc := cfg.http
	hc.Registerer, hc.Gatherer, hc.Logger = reg, reg, logger
	var cs *cleanup.Service
	if cfg.cleanup != nil {
		cc := *cfg.cleanup
		cc.Registerer, cc.Logger = reg, logger
		if cs, err = cleanup.New(t.Context(), meta, store, cc); err != nil {
			t.Fatalf("cleanup.New: %v", err)
		}
		hc.Cleanup = cs
	}
	if len(cfg.providers) > 0 {
		ps, err := providers.New(meta, store, cfg.providers, providers.Config{PollInterval: time.Millisecond, Logger: logger})
		if err != nil {
			t.Fatalf("providers.New: %v", err)
		}
		hc.Providers = ps
	}
	h := httpapi.New(svc, meta, hc)

	srv := httptest.NewUnstartedServer(h)
	srv.Config = h.NewServer("")
	srv.Start()
	t.Cleanup(srv.Close)
	// Every exchange of the tests' client is checked against the OpenAPI
	// document; a fuzz target's server outlives each input's T.
	if _, ok := t.(*testing.F); !ok {
		srv.Client().Transport = apitest.Transport(t, srv.Client().Transport)
	}

	e := &env{t: t, dir: dir, meta: meta, blobs: blobs, svc: svc, cleanup: cs, h: h, srv: srv, reg: reg, keys: map[string]string{}}
	for name, scopes := range map[string][]filehub.Scope{
		keyAdmin:   {filehub.ScopeAdmin},
		keyRead:    {filehub.ScopeRead},
		keyWrite:   {filehub.ScopeWrite},
		keyRW:      {filehub.ScopeRead, filehub.ScopeWrite},
		keyMetrics: {filehub.ScopeMetrics},
		keyRevoked: {filehub.ScopeAdmin},
	} {
		secret := filehub.NewAPIKeySecret()
		k := &filehub.APIKey{ID: filehub.NewID("k_"), Name: name, Scopes: scopes, CreatedAt: time.Now().UTC(), Hash: filehub.HashAPIKey(secret)}
		if err := meta.CreateAPIKey(ctx, k); err != nil {
			t.Fatalf("CreateAPIKey: %v", err)
		}
		e.keys[name] = secret
	}
	if _, err := meta.RevokeAPIKey(ctx, keyRevoked, time.Now()); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	return e
}

// do sends a request with the named key ("" for none) and returns the
// response with its body read.
func (e *env) do(method, path, key string, body io.Reader, hdr http.Header) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+e.keys[key])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

// upload stores data as name through the raw-body API and returns the record.
func (e *env) upload(name string, data []byte) *files.Upload {
	e.t.Helper()
	resp, body := e.do("POST", "/v1/files?name="+name, keyWrite, bytes.NewReader(data), nil)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("upload %s: %d %s", name, resp.StatusCode, body)
	}
	var up files.Upload
	mustJSON(e.t, body, &up)
	return &up
}

func mustJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
}

// wantProblem checks that a response is a problem document with the given
// status and code.
func wantProblem(t *testing.T, resp *http.Response, body []byte, status int, code string) api.Problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != api.ProblemContentType {
		t.Errorf("Content-Type = %q, want %q", ct, api.ProblemContentType)
	}
	var p api.Problem
	mustJSON(t, body, &p)
	if p.Status != status || p.Code != code || p.Type != "urn:filehub:error:"+code ||
		p.Title != http.StatusText(status) || p.Detail == "" || p.RequestID == "" {
		t.Errorf("problem = %+v, want status %d code %s with title, detail and request id", p, status, code)
	}
	if rid := resp.Header.Get("X-Request-ID"); rid != p.RequestID {
		t.Errorf("X-Request-ID = %q, problem request_id = %q", rid, p.RequestID)
	}
	return p
}

// state is what an upload can leave behind.
type state struct {
	records int // file records, soft-deleted included
	objects int // blob objects on disk
}

func (e *env) state() state {
	e.t.Helper()
	var s state
	cursor := ""
	for {
		fs, next, err := e.meta.ListFiles(context.Background(), filehub.FileFilter{Cursor: cursor, IncludeDeleted: true, Limit: 1000})
		if err != nil {
			e.t.Fatalf("ListFiles: %v", err)
		}
		s.records += len(fs)
		if next == "" {
			break
		}
		cursor = next
	}
	err := filepath.WalkDir(filepath.Join(e.dir, "blobs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			s.objects++
		}
		return nil
	})
	if err != nil {
		e.t.Fatalf("walking blobs: %v", err)
	}
	return s
}

// objectSums returns the sums of the objects on disk.
func (e *env) objectSums() []string {
	e.t.Helper()
	var sums []string
	err := filepath.WalkDir(filepath.Join(e.dir, "blobs"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			sums = append(sums, d.Name())
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return sums
}

func (e *env) tmpFiles() []string {
	e.t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.dir, "tmp"))
	if err != nil {
		e.t.Fatalf("reading tmp: %v", err)
	}
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	return names
}

// assertNothingLeft checks that the store is as it was before: no new
// record, no new object, and (once the server has noticed) an empty tmp.
func (e *env) assertNothingLeft(before state) {
	e.t.Helper()
	// A disconnect is noticed asynchronously; wait for tmp to empty, but
	// fail rather than hang.
	deadline := time.Now().Add(10 * time.Second)
	for len(e.tmpFiles()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if left := e.tmpFiles(); len(left) > 0 {
		e.t.Errorf("tmp not empty: %v", left)
	}
	if after := e.state(); after != before {
		e.t.Errorf("store changed: before %+v, after %+v", before, after)
	}
}

// counter returns the sum of the counters (or histogram sample counts) in
// the env's registry with the given name and labels.
func (e *env) counter(name string, labels map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			if c := m.GetCounter(); c != nil {
				total += c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				total += float64(h.GetSampleCount())
			}
		}
	}
	return total
}

// gauge returns the value of a gauge in the env's registry.
func (e *env) gauge(name string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// multipartBody builds a multipart/form-data body from (field, filename,
// content) triples.
func multipartBody(t *testing.T, parts ...[3]string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		w, err := mw.CreateFormFile(p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p[2])
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// rawConn is a TCP connection to the server for requests net/http's client
// will not send (lying lengths, half bodies, stalls).
type rawConn struct {
	t testing.TB
	net.Conn
	br *bufio.Reader
}

func (e *env) dial() *rawConn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return &rawConn{t: e.t, Conn: c, br: bufio.NewReader(c)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// response reads one response; the test fails rather than hangs if none
// comes within a generous bound.
func (c *rawConn) response() (*http.Response, []byte) {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// requestHead is the head of a raw upload with the given key.
func (e *env) requestHead(method, path, key string, extra ...string) string {
	var sb strings.Builder
	sb.WriteString(method + " " + path + " HTTP/1.1\r\nHost: test\r\n")
	if key != "" {
		sb.WriteString("Authorization: Bearer " + e.keys[key] + "\r\n")
	}
	for _, h := range extra {
		sb.WriteString(h + "\r\n")
	}
	sb.WriteString("\r\n")
	return sb.String()
}

// faultyBlobs wraps the real blob store to inject faults: low free space
// and staged writes that fail as on a full disk.
type faultyBlobs struct {
	filehub.BlobStore
	real      *localfs.Store
	free      int64
	failAfter int64

	mu     sync.Mutex
	staged int
}

func (f *faultyBlobs) FreeSpace(ctx context.Context) (int64, error) {
	if f.free != 0 {
		return f.free, nil
	}
	return f.real.FreeSpace(ctx)
}

func (f *faultyBlobs) Stage(ctx context.Context) (filehub.StagedBlob, error) {
	sb, err := f.BlobStore.Stage(ctx)
	if err == nil {
		f.mu.Lock()
		f.staged++
		f.mu.Unlock()
	}
	if err != nil || f.failAfter == 0 {
		return sb, err
	}
	return &failingStaged{StagedBlob: sb, left: f.failAfter}, nil
}

// stagedCount returns how many blobs were staged so far.
func (f *faultyBlobs) stagedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.staged
}

type failingStaged struct {
	filehub.StagedBlob
	left int64
}

func (s *failingStaged) Write(p []byte) (int, error) {
	if int64(len(p)) > s.left {
		n, _ := s.StagedBlob.Write(p[:s.left])
		s.left = 0
		return n, filehub.Errorf(filehub.ESTORAGE, "no space left on device (injected)")
	}
	s.left -= int64(len(p))
	return s.StagedBlob.Write(p)
}
