package tus_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/internal/testlog"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/postgres"
	"github.com/filehub/filehub/s3"
	"github.com/filehub/filehub/sqlite"
	"github.com/filehub/filehub/tus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	base          = "/v1/uploads/"
	testMaxUpload = 8 << 20
)

// Key names of the test environment.
const (
	keyWriter = "writer" // read + write
	keyWrite  = "write"  // write only
	keyReader = "reader" // read only
	keyOther  = "other"  // read + write, another owner
	keyAdmin  = "admin"
)

// backend is one combination of stores the suite runs on.
type backend struct {
	name string
	open func(t *testing.T) (filehub.MetaStore, filehub.BlobStore, filehub.ResumableStager)
}

// backends are every store combination: SQLite on the local disk (bytes
// staged in the blob store itself) and, when FILEHUB_TEST_POSTGRES is set,
// PostgreSQL with S3 (a real S3 protocol peer in the process).
func backends() []backend {
	return []backend{
		{"sqlite+localfs", func(t *testing.T) (filehub.MetaStore, filehub.BlobStore, filehub.ResumableStager) {
			dir := t.TempDir()
			meta, err := sqlite.Open(t.Context(), filepath.Join(dir, "filehub.db"), sqlite.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { meta.Close() })
			blobs, err := localfs.Open(dir, localfs.Config{})
			if err != nil {
				t.Fatal(err)
			}
			return meta, blobs, blobs
		}},
		{"postgres+s3", func(t *testing.T) (filehub.MetaStore, filehub.BlobStore, filehub.ResumableStager) {
			meta := openPostgres(t)
			blobs := openS3(t)
			stager, ok := filehub.BlobStore(blobs).(filehub.ResumableStager)
			if !ok {
				// S3 without resumable staging: a local spool.
				spool, err := localfs.Open(t.TempDir(), localfs.Config{})
				if err != nil {
					t.Fatal(err)
				}
				stager = spool
			}
			return meta, blobs, stager
		}},
	}
}

// forEachBackend runs fn once per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

func openPostgres(t *testing.T) *postgres.DB {
	t.Helper()
	db, _ := openPostgresSchema(t)
	return db
}

// openPostgresSchema opens a store on a fresh schema and returns a function
// that opens another store (another instance) on the same schema.
func openPostgresSchema(t *testing.T) (*postgres.DB, func() *postgres.DB) {
	t.Helper()
	dsn := os.Getenv("FILEHUB_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("FILEHUB_TEST_POSTGRES is not set: skipping the PostgreSQL backend (CI sets it)")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "tus_test_" + hex.EncodeToString(b[:])
	var dbs []*postgres.DB
	open := func() *postgres.DB {
		db, err := postgres.Open(t.Context(), dsn, postgres.Config{Schema: schema})
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		dbs = append(dbs, db)
		return db
	}
	db := open()
	t.Cleanup(func() {
		for _, db := range dbs {
			db.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return db, open
}

func openS3(t *testing.T) *s3.Store {
	t.Helper()
	st, _ := openS3Bucket(t)
	return st
}

// openS3Bucket opens a store on a fresh in-process S3 server and returns a
// function that opens another store (another instance) on the same bucket.
func openS3Bucket(t *testing.T) (*s3.Store, func() *s3.Store) {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("tus-test"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(srv.Close)
	open := func() *s3.Store {
		st, err := s3.Open(t.Context(), "s3://tus-test?endpoint="+srv.URL+"&region=us-east-1&path_style=true",
			s3.Config{AccessKeyID: "test", SecretAccessKey: "test", MaxBackoff: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	return open(), open
}

// clock is the tus handler's injected time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type envConfig struct {
	files files.Config
	tus   tus.Config
	// wrapStager, if set, wraps the stager (to count or fail reads).
	wrapStager func(filehub.ResumableStager) filehub.ResumableStager
	// keysOf, if set, is an env on the same metadata store whose keys
	// this one uses instead of creating its own.
	keysOf *env
}

// env is a full API server (httpapi with the tus handler mounted) on one
// backend's stores.
type env struct {
	t      *testing.T
	meta   filehub.MetaStore
	blobs  filehub.BlobStore
	stager filehub.ResumableStager
	svc    *files.Service
	tus    *tus.Handler
	srv    *httptest.Server
	reg    *prometheus.Registry
	clock  *clock
	keys   map[string]string // name → secret
	keyIDs map[string]string // name → key ID
}

func newEnv(t *testing.T, b backend, cfg envConfig) *env {
	t.Helper()
	meta, blobs, stager := b.open(t)
	return newEnvOn(t, meta, blobs, stager, cfg)
}

func newEnvOn(t *testing.T, meta filehub.MetaStore, blobs filehub.BlobStore, stager filehub.ResumableStager, cfg envConfig) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	logger := testlog.New(t)
	fc := cfg.files
	if fc.MaxUploadSize == 0 {
		fc.MaxUploadSize = testMaxUpload
	}
	if fc.MinFreeSpace == 0 {
		fc.MinFreeSpace = -1
	}
	fc.Registerer, fc.Logger = reg, logger
	svc, err := files.New(meta, blobs, fc)
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(svc, meta, httpapi.Config{Logger: logger, Registerer: reg, Gatherer: reg})
	if cfg.wrapStager != nil {
		stager = cfg.wrapStager(stager)
	}
	clk := &clock{now: time.Now().UTC()}
	tc := cfg.tus
	tc.Registerer, tc.Logger, tc.Now = reg, logger, clk.Now
	th := tus.New(svc, meta.(filehub.UploadStore), stager, blobs, api, tc)
	api.Mount(base, th)
	srv := httptest.NewUnstartedServer(api)
	srv.Config = api.NewServer("")
	srv.Start()
	t.Cleanup(srv.Close)

	e := &env{t: t, meta: meta, blobs: blobs, stager: stager, svc: svc, tus: th, srv: srv, reg: reg, clock: clk,
		keys: map[string]string{}, keyIDs: map[string]string{}}
	if cfg.keysOf != nil {
		e.keys, e.keyIDs = cfg.keysOf.keys, cfg.keysOf.keyIDs
		return e
	}
	for name, scopes := range map[string][]filehub.Scope{
		keyWriter: {filehub.ScopeRead, filehub.ScopeWrite},
		keyWrite:  {filehub.ScopeWrite},
		keyReader: {filehub.ScopeRead},
		keyOther:  {filehub.ScopeRead, filehub.ScopeWrite},
		keyAdmin:  {filehub.ScopeAdmin},
	} {
		e.addKey(name, scopes)
	}
	return e
}

func (e *env) addKey(name string, scopes []filehub.Scope) {
	secret := filehub.NewAPIKeySecret()
	k := &filehub.APIKey{ID: filehub.NewID("k_"), Name: name, Scopes: scopes, CreatedAt: time.Now().UTC(), Hash: filehub.HashAPIKey(secret)}
	if err := e.meta.CreateAPIKey(e.t.Context(), k); err != nil {
		e.t.Fatalf("CreateAPIKey: %v", err)
	}
	e.keys[name], e.keyIDs[name] = secret, k.ID
}

// req is a tus request.
type req struct {
	method string
	path   string
	key    string // key name; "" sends none
	body   []byte
	hdr    map[string]string
	noTus  bool // leave Tus-Resumable out
}

func (e *env) do(r req) (*http.Response, []byte) {
	e.t.Helper()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	hr, err := http.NewRequestWithContext(e.t.Context(), r.method, e.srv.URL+r.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if !r.noTus {
		hr.Header.Set("Tus-Resumable", tus.Version)
	}
	if r.key != "" {
		hr.Header.Set("Authorization", "Bearer "+e.keys[r.key])
	}
	if r.body != nil {
		hr.Header.Set("Content-Type", "application/offset+octet-stream")
	}
	for k, v := range r.hdr {
		hr.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(hr)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// metadata encodes an Upload-Metadata header.
func metadata(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+" "+base64.StdEncoding.EncodeToString([]byte(kv[i+1])))
	}
	return strings.Join(parts, ",")
}

// create makes an upload of length bytes and returns its path.
func (e *env) create(key string, length int64, hdr map[string]string) string {
	e.t.Helper()
	h := map[string]string{"Upload-Length": fmt.Sprint(length)}
	for k, v := range hdr {
		h[k] = v
	}
	resp, body := e.do(req{method: "POST", path: base, key: key, hdr: h})
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, base+"u_") {
		e.t.Fatalf("Location = %q", loc)
	}
	return loc
}

// patch sends a chunk and fails unless it is answered 204 with the new
// offset; it returns the response.
func (e *env) patch(key, path string, off int64, chunk []byte, hdr map[string]string) *http.Response {
	e.t.Helper()
	h := map[string]string{"Upload-Offset": fmt.Sprint(off)}
	for k, v := range hdr {
		h[k] = v
	}
	resp, body := e.do(req{method: "PATCH", path: path, key: key, body: chunk, hdr: h})
	if resp.StatusCode != http.StatusNoContent {
		e.t.Fatalf("PATCH at %d: %d %s", off, resp.StatusCode, body)
	}
	if got, want := resp.Header.Get("Upload-Offset"), fmt.Sprint(off+int64(len(chunk))); got != want {
		e.t.Fatalf("PATCH at %d: Upload-Offset %s, want %s", off, got, want)
	}
	return resp
}

// offset HEADs an upload and returns its Upload-Offset (-1 if the answer is
// not 200).
func (e *env) offset(key, path string) (int64, *http.Response) {
	e.t.Helper()
	resp, _ := e.do(req{method: "HEAD", path: path, key: key})
	if resp.StatusCode != http.StatusOK {
		return -1, resp
	}
	var n int64
	fmt.Sscan(resp.Header.Get("Upload-Offset"), &n)
	return n, resp
}

// wantProblem checks a problem+json error answer.
func wantProblem(t *testing.T, what string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d (%s), want %d", what, resp.StatusCode, body, status)
	}
	if resp.Request.Method == "HEAD" {
		return // no body
	}
	if ct := resp.Header.Get("Content-Type"); ct != api.ProblemContentType {
		t.Fatalf("%s: Content-Type %q, want %s", what, ct, api.ProblemContentType)
	}
	var p api.Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Code != code || p.Status != status {
		t.Fatalf("%s: problem %s (%v), want code %s", what, body, err, code)
	}
}

func randomData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// file returns the file id as the HTTP API lists it, with its content.
func (e *env) file(id string) (*filehub.File, []byte) {
	e.t.Helper()
	f, rc, err := e.svc.Open(e.t.Context(), id)
	if err != nil {
		e.t.Fatalf("open file %s: %v", id, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatal(err)
	}
	return f, data
}

// listed reports whether GET /v1/files lists the file id.
func (e *env) listed(id string) bool {
	e.t.Helper()
	r, err := http.NewRequestWithContext(e.t.Context(), "GET", e.srv.URL+"/v1/files?limit=1000", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+e.keys[keyWriter])
	resp, err := e.srv.Client().Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Files []filehub.File `json:"files"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		e.t.Fatal(err)
	}
	for _, f := range page.Files {
		if f.ID == id {
			return true
		}
	}
	return false
}

// createdEvents counts file.created events.
func (e *env) createdEvents() int {
	e.t.Helper()
	evs, err := e.meta.ListEvents(e.t.Context(), 0, 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Type == filehub.EventFileCreated {
			n++
		}
	}
	return n
}

// counter returns a counter's value from the env's registry.
func (e *env) counter(name string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var v float64
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
			return v
		}
	}
	e.t.Fatalf("no metric %s", name)
	return 0
}
