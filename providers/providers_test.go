package providers_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/internal/fakeprovider"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/openai"
	"github.com/filehub/filehub/providers"
	"github.com/filehub/filehub/sqlite"
)

const testKey = "sk-test"

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

type env struct {
	meta  *sqlite.DB
	files *files.Service
	fp    *fakeprovider.Server
	svc   *providers.Service
	clock *clock
}

// newEnv returns a push service on SQLite and a local disk with one
// provider, "test", the stand-in fp.
func newEnv(t *testing.T, cfg providers.Config, edit func(*openai.Config)) *env {
	t.Helper()
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
	fsvc, err := files.New(meta, blobs, files.Config{MinFreeSpace: -1})
	if err != nil {
		t.Fatal(err)
	}
	fp := fakeprovider.New(t, testKey)
	ocfg := openai.Config{Name: "test", BaseURL: fp.URL, APIKey: testKey, Purpose: "file-extract",
		InitialInterval: time.Millisecond, MaxInterval: 10 * time.Millisecond}
	if edit != nil {
		edit(&ocfg)
	}
	c, err := openai.New(ocfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	clk := &clock{}
	clk.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	cfg.Now = clk.now
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Millisecond
	}
	svc, err := providers.New(meta, blobs, []filehub.Provider{c}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{meta: meta, files: fsvc, fp: fp, svc: svc, clock: clk}
}

func (e *env) upload(t *testing.T, content string) *filehub.File {
	t.Helper()
	up, err := e.files.Upload(t.Context(), bytes.NewReader([]byte(content)), "doc.txt", "k_test")
	if err != nil {
		t.Fatal(err)
	}
	return up.File
}

func (e *env) push(t *testing.T, id string) *providers.Result {
	t.Helper()
	res, err := e.svc.Push(t.Context(), id, "test")
	if err != nil {
		t.Fatalf("Push(%s): %v", id, err)
	}
	return res
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := filehub.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

func TestPushUploadsOnceThenReuses(t *testing.T) {
	e := newEnv(t, providers.Config{}, nil)
	f := e.upload(t, "hello provider")
	first := e.push(t, f.ID)
	if first.Reused || first.Provider != "test" || first.ProviderFileID == "" {
		t.Fatalf("first push = %+v, want a fresh upload", first)
	}
	held := e.fp.Files()
	if len(held) != 1 || held[0].SHA256 != sum("hello provider") || held[0].Purpose != "file-extract" || held[0].Filename != "doc.txt" {
		t.Fatalf("the provider holds %+v", held)
	}
	// Another file with the same content reuses the copy, without asking
	// the provider (verified just now).
	g := e.upload(t, "hello provider")
	second := e.push(t, g.ID)
	if !second.Reused || second.ProviderFileID != first.ProviderFileID {
		t.Errorf("second push = %+v, want reuse of %s", second, first.ProviderFileID)
	}
	if e.fp.Uploads() != 1 || e.fp.Calls("GET /files/{id}") != 0 {
		t.Errorf("%d uploads, %d retrieves; want 1 and 0", e.fp.Uploads(), e.fp.Calls("GET /files/{id}"))
	}
}

func TestPushConcurrentUploadsOnce(t *testing.T) {
	e := newEnv(t, providers.Config{}, nil)
	// The first upload is slow to answer, so the other pushes find the
	// claim pending and have to wait for it.
	e.fp.Inject("POST /files", fakeprovider.Fault{Status: 503, RetryAfter: "0"})
	var ids []string
	for range 5 {
		ids = append(ids, e.upload(t, "same content").ID)
	}
	const n = 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []*providers.Result
	)
	for i := range n {
		wg.Go(func() {
			res, err := e.svc.Push(t.Context(), ids[i%len(ids)], "test")
			if err != nil {
				t.Errorf("Push: %v", err)
				return
			}
			mu.Lock()
			results = append(results, res)
			mu.Unlock()
		})
	}
	wg.Wait()
	if e.fp.Uploads() != 1 {
		t.Fatalf("%d concurrent pushes of one content uploaded it %d times, want once", n, e.fp.Uploads())
	}
	fresh := 0
	for _, r := range results {
		if r.ProviderFileID != results[0].ProviderFileID {
			t.Errorf("pushes answered different provider files: %s and %s", r.ProviderFileID, results[0].ProviderFileID)
		}
		if !r.Reused {
			fresh++
		}
	}
	if len(results) != n || fresh != 1 {
		t.Errorf("%d results, %d not reused; want %d and 1", len(results), fresh, n)
	}
}

func TestPushTakesOverExpiredClaim(t *testing.T) {
	e := newEnv(t, providers.Config{ClaimTTL: time.Minute, MaxWait: 20 * time.Millisecond}, nil)
	f := e.upload(t, "crashed push")
	key := filehub.ProviderKey{SHA256: f.SHA256, Provider: "test", Purpose: "file-extract"}
	// A push that crashed mid-upload left its claim behind.
	if _, claimed, err := e.meta.ClaimProviderMapping(t.Context(), key, f.Size, "c_crashed", e.clock.now(), time.Minute); err != nil || !claimed {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	// While the claim is fresh, a push waits for it, boundedly.
	_, err := e.svc.Push(t.Context(), f.ID, "test")
	wantCode(t, err, filehub.EUNAVAILABLE)
	if e.fp.Uploads() != 0 {
		t.Fatal("a push uploaded under another's claim")
	}
	e.clock.advance(time.Minute)
	res := e.push(t, f.ID)
	if res.Reused || e.fp.Uploads() != 1 {
		t.Errorf("push after the claim expired = %+v with %d uploads; want a fresh upload", res, e.fp.Uploads())
	}
	m, err := e.meta.FindProviderMapping(t.Context(), key)
	if err != nil || m.State != filehub.MappingReady || m.ProviderFileID != res.ProviderFileID {
		t.Errorf("mapping %+v, %v; want ready as %s", m, err, res.ProviderFileID)
	}
}

func TestPushVerifiesStaleMapping(t *testing.T) {
	e := newEnv(t, providers.Config{VerifyAfter: time.Hour}, nil)
	f := e.upload(t, "verify me")
	first := e.push(t, f.ID)

	// Within VerifyAfter: no question to the provider.
	e.clock.advance(59 * time.Minute)
	if r := e.push(t, f.ID); !r.Reused || e.fp.Calls("GET /files/{id}") != 0 {
		t.Fatalf("push within VerifyAfter = %+v after %d retrieves", r, e.fp.Calls("GET /files/{id}"))
	}
	// After it: asked once, still there, reused; the verification counts
	// from now.
	e.clock.advance(2 * time.Minute)
	if r := e.push(t, f.ID); !r.Reused || r.ProviderFileID != first.ProviderFileID || e.fp.Calls("GET /files/{id}") != 1 {
		t.Fatalf("push after VerifyAfter = %+v after %d retrieves; want reuse after 1", r, e.fp.Calls("GET /files/{id}"))
	}
	e.push(t, f.ID)
	if e.fp.Calls("GET /files/{id}") != 1 {
		t.Errorf("a fresh verification was not recorded: %d retrieves", e.fp.Calls("GET /files/{id}"))
	}

	// The provider lets the file expire: the next verification finds
	// it gone (404) and the content is uploaded again.
	e.fp.Expire(first.ProviderFileID)
	e.clock.advance(2 * time.Hour)
	again := e.push(t, f.ID)
	if again.Reused || again.ProviderFileID == first.ProviderFileID || e.fp.Uploads() != 2 {
		t.Errorf("push after expiry = %+v with %d uploads; want a new upload", again, e.fp.Uploads())
	}
	if held := e.fp.Files(); len(held) != 1 || held[0].ID != again.ProviderFileID {
		t.Errorf("the provider holds %+v", held)
	}
}

func TestPushRetries(t *testing.T) {
	e := newEnv(t, providers.Config{}, nil)
	f := e.upload(t, "flaky provider")
	e.fp.Inject("POST /files", fakeprovider.Fault{Status: 500}, fakeprovider.Fault{Status: 429, RetryAfter: "0"})
	res := e.push(t, f.ID)
	if res.Reused || e.fp.Calls("POST /files") != 3 || e.fp.Uploads() != 1 {
		t.Errorf("push = %+v after %d calls, %d uploads; want success on the third call", res, e.fp.Calls("POST /files"), e.fp.Uploads())
	}
	if e.fp.Files()[0].SHA256 != sum("flaky provider") {
		t.Error("the retried upload stored other content")
	}
}

func TestPushFailureReleasesClaim(t *testing.T) {
	e := newEnv(t, providers.Config{}, nil)
	f := e.upload(t, "refused once")
	e.fp.Inject("POST /files", fakeprovider.Fault{Status: 400})
	_, err := e.svc.Push(t.Context(), f.ID, "test")
	wantCode(t, err, filehub.EINVALID)
	key := filehub.ProviderKey{SHA256: f.SHA256, Provider: "test", Purpose: "file-extract"}
	if _, err := e.meta.FindProviderMapping(t.Context(), key); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Fatalf("after a failed upload the mapping is %v; want it released", err)
	}
	// The next push does not wait for a claim TTL.
	if res := e.push(t, f.ID); res.Reused {
		t.Errorf("push after a failure = %+v", res)
	}
}

func TestPushErrors(t *testing.T) {
	e := newEnv(t, providers.Config{}, func(c *openai.Config) { c.MaxFileSize = 8 })
	small := e.upload(t, "small")
	big := e.upload(t, "more than eight bytes")
	ctx := t.Context()

	_, err := e.svc.Push(ctx, small.ID, "nope")
	wantCode(t, err, filehub.ENOTFOUND)
	_, err = e.svc.Push(ctx, "f_missing", "test")
	wantCode(t, err, filehub.ENOTFOUND)
	_, err = e.svc.Push(ctx, big.ID, "test")
	wantCode(t, err, filehub.ETOOLARGE)
	if _, err := e.files.Delete(ctx, small.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Push(ctx, small.ID, "test")
	wantCode(t, err, filehub.ENOTFOUND)
	if e.fp.Calls("POST /files") != 0 {
		t.Errorf("%d uploads were attempted", e.fp.Calls("POST /files"))
	}
}

func TestPushCanceled(t *testing.T) {
	e := newEnv(t, providers.Config{}, nil)
	f := e.upload(t, "canceled")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.svc.Push(ctx, f.ID, "test"); err == nil {
		t.Fatal("Push with a canceled context succeeded")
	}
}

func TestNewWithoutProviders(t *testing.T) {
	svc, err := providers.New(nil, nil, nil, providers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Push(t.Context(), "f_x", "kimi")
	wantCode(t, err, filehub.ENOTFOUND)
	if len(svc.Providers()) != 0 {
		t.Errorf("Providers() = %v", svc.Providers())
	}
}
