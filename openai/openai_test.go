package openai_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/fakeprovider"
	"github.com/filehub/filehub/openai"
)

const testKey = "sk-test"

// waits records the waits between attempts instead of sleeping them.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// newClient returns a client of the stand-in fp that records its waits.
func newClient(t *testing.T, fp *fakeprovider.Server, edit func(*openai.Config)) (*openai.Client, *waits) {
	t.Helper()
	cfg := openai.Config{Name: "test", BaseURL: fp.URL, APIKey: testKey, Purpose: "file-extract", Timeout: time.Minute}
	if edit != nil {
		edit(&cfg)
	}
	c, err := openai.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	w := &waits{}
	c.SetSleep(w.sleep)
	return c, w
}

func opener(content []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func wantCode(t *testing.T, err error, code string, contains ...string) {
	t.Helper()
	if got := filehub.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestUpload(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, _ := newClient(t, fp, nil)
	content := []byte("the quarterly report\n")
	f, err := c.Upload(t.Context(), `report "q3".txt`, "file-extract", int64(len(content)), opener(content))
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	got := fp.Files()
	if len(got) != 1 || got[0].ID != f.ID || got[0].SHA256 != sum(content) || got[0].Purpose != "file-extract" ||
		got[0].Filename != `report "q3".txt` || got[0].Bytes != int64(len(content)) {
		t.Errorf("the provider holds %+v; uploaded %+v", got, f)
	}
	if f.Bytes != int64(len(content)) || f.Purpose != "file-extract" {
		t.Errorf("Upload returned %+v", f)
	}
}

func TestUploadSizeMismatch(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, _ := newClient(t, fp, func(c *openai.Config) { c.MaxAttempts = 1 })
	content := []byte("twelve bytes")
	for _, size := range []int64{int64(len(content)) + 5, int64(len(content)) - 5} {
		if _, err := c.Upload(t.Context(), "x.txt", "", size, opener(content)); err == nil {
			t.Errorf("Upload announcing %d bytes of %d succeeded", size, len(content))
		}
	}
	if n := fp.Uploads(); n != 0 {
		t.Errorf("the provider stored %d files of the wrong size", n)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, w := newClient(t, fp, nil)
	fp.Inject("POST /files", fakeprovider.Fault{Status: 429, RetryAfter: "7"})
	opens := 0
	content := []byte("rate limited")
	_, err := c.Upload(t.Context(), "a.txt", "", int64(len(content)), func() (io.ReadCloser, error) {
		opens++
		return io.NopCloser(bytes.NewReader(content)), nil
	})
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if got := w.all(); len(got) != 1 || got[0] < 7*time.Second {
		t.Errorf("waits %v, want one of at least the 7s Retry-After", got)
	}
	if fp.Calls("POST /files") != 2 || fp.Uploads() != 1 || opens != 2 {
		t.Errorf("%d calls, %d uploads, content opened %d times; want 2, 1, 2", fp.Calls("POST /files"), fp.Uploads(), opens)
	}
	if fp.Files()[0].SHA256 != sum(content) {
		t.Error("the retried upload stored other content")
	}
}

func TestRetryAfterTooLong(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, w := newClient(t, fp, func(c *openai.Config) { c.MaxRetryAfter = time.Minute })
	fp.Inject("GET /files/{id}", fakeprovider.Fault{Status: 429, RetryAfter: "3600"})
	_, err := c.Retrieve(t.Context(), "file-1")
	wantCode(t, err, filehub.ERATELIMIT, "429", "injected 429", "provider test")
	if len(w.all()) != 0 || fp.Calls("GET /files/{id}") != 1 {
		t.Errorf("waited %v over %d calls; want no wait for an hour's Retry-After", w.all(), fp.Calls("GET /files/{id}"))
	}
}

func TestRetry5xxWithBackoff(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, w := newClient(t, fp, func(c *openai.Config) {
		c.InitialInterval = 100 * time.Millisecond
		c.MaxInterval = 10 * time.Second
	})
	f := fp.Add("a.txt", "file-extract", 3)
	fp.Inject("GET /files/{id}", fakeprovider.Fault{Status: 500}, fakeprovider.Fault{Status: 502}, fakeprovider.Fault{Status: 503})
	got, err := c.Retrieve(t.Context(), f.ID)
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	if got.ID != f.ID || got.Bytes != 3 {
		t.Errorf("Retrieve = %+v", got)
	}
	ws := w.all()
	if len(ws) != 3 {
		t.Fatalf("waits %v, want 3", ws)
	}
	// Exponential (x1.5) with ±50% jitter: the n-th wait lies within
	// [0.5, 1.5] × 100ms × 1.5^n.
	base := 100 * time.Millisecond
	for i, d := range ws {
		lo, hi := base/2, base*3/2
		if d < lo || d > hi {
			t.Errorf("wait %d = %v, want within [%v, %v]", i, d, lo, hi)
		}
		base = base * 3 / 2
	}
}

func TestRetriesExhausted(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, w := newClient(t, fp, func(c *openai.Config) { c.MaxAttempts = 3 })
	for range 5 {
		fp.Inject("DELETE /files/{id}", fakeprovider.Fault{Status: 503})
	}
	err := c.Delete(t.Context(), "file-1")
	wantCode(t, err, filehub.EUNAVAILABLE, "503", "injected 503", "after 3 attempts")
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Message != "injected 503" {
		t.Errorf("error chain holds %+v, want the provider's 503", ae)
	}
	if fp.Calls("DELETE /files/{id}") != 3 || len(w.all()) != 2 {
		t.Errorf("%d calls, %d waits; want 3 and 2", fp.Calls("DELETE /files/{id}"), len(w.all()))
	}
}

func TestNoRetryOn4xx(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, w := newClient(t, fp, nil)
	fp.Inject("POST /files", fakeprovider.Fault{Status: 400})
	_, err := c.Upload(t.Context(), "a.txt", "", 1, opener([]byte("a")))
	wantCode(t, err, filehub.EINVALID, "400", "injected 400", "POST /files")
	if fp.Calls("POST /files") != 1 || len(w.all()) != 0 {
		t.Errorf("%d calls, waits %v; want 1 call and no retry", fp.Calls("POST /files"), w.all())
	}
}

func TestBadKey(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, _ := newClient(t, fp, func(c *openai.Config) { c.APIKey = "sk-wrong" })
	_, _, err := c.List(t.Context(), "", 0)
	wantCode(t, err, filehub.EUNAVAILABLE, "401", "Incorrect API key provided")
	if fp.Calls("GET /files") != 1 {
		t.Errorf("%d calls; a refused key is not retried", fp.Calls("GET /files"))
	}
}

func TestSlowAnswerTimesOutAndRetries(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, w := newClient(t, fp, func(c *openai.Config) { c.Timeout = 50 * time.Millisecond })
	f := fp.Add("a.txt", "file-extract", 1)
	fp.Inject("GET /files/{id}", fakeprovider.Fault{Hang: true})
	if _, err := c.Retrieve(t.Context(), f.ID); err != nil {
		t.Fatalf("Retrieve after a slow answer: %v", err)
	}
	if fp.Calls("GET /files/{id}") != 2 || len(w.all()) != 1 {
		t.Errorf("%d calls, %d waits; want the hung attempt given up and retried once", fp.Calls("GET /files/{id}"), len(w.all()))
	}
}

func TestExpiredFileIsNotFound(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, _ := newClient(t, fp, nil)
	f := fp.Add("a.txt", "file-extract", 1)
	fp.Expire(f.ID)
	_, err := c.Retrieve(t.Context(), f.ID)
	wantCode(t, err, filehub.ENOTFOUND, "404", f.ID)
	if fp.Calls("GET /files/{id}") != 1 {
		t.Errorf("a 404 was retried")
	}
}

func TestDelete(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, _ := newClient(t, fp, nil)
	f := fp.Add("a.txt", "file-extract", 1)
	if err := c.Delete(t.Context(), f.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if len(fp.Files()) != 0 {
		t.Errorf("the provider still holds %v", fp.Files())
	}
	wantCode(t, c.Delete(t.Context(), f.ID), filehub.ENOTFOUND)
}

func TestListPages(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, _ := newClient(t, fp, nil)
	var want []string
	for range 7 {
		want = append(want, fp.Add("a.txt", "file-extract", 1).ID)
	}
	var got []string
	after, pages := "", 0
	for {
		fs, next, err := c.List(t.Context(), after, 0)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, f := range fs {
			got = append(got, f.ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || pages != 3 {
		t.Errorf("listed %v in %d pages, want %v in 3", got, pages, want)
	}
	fs, next, err := c.List(t.Context(), "", 10)
	if err != nil || len(fs) != 7 || next != "" {
		t.Errorf("List(limit 10) = %d files, next %q, %v; want all 7 on one page", len(fs), next, err)
	}
}

func TestTooLarge(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, _ := newClient(t, fp, func(c *openai.Config) { c.MaxFileSize = 10 })
	_, err := c.Upload(t.Context(), "big", "", 11, opener(make([]byte, 11)))
	wantCode(t, err, filehub.ETOOLARGE)
	if fp.Calls("POST /files") != 0 {
		t.Error("a file over the known limit was sent")
	}
	// A limit the provider enforces itself.
	fp.SetMaxSize(5)
	c2, _ := newClient(t, fp, nil)
	_, err = c2.Upload(t.Context(), "big", "", 6, opener(make([]byte, 6)))
	wantCode(t, err, filehub.ETOOLARGE, "413", "file size exceeds the limit")
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"5", 5 * time.Second},
		{" 12 ", 12 * time.Second},
		{"-3", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := openai.ParseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestPresets(t *testing.T) {
	for _, tc := range []struct {
		name, base, purpose string
		maxSize             int64
		quota               int
	}{
		{"kimi", "https://api.moonshot.cn/v1", "file-extract", 100 << 20, 1000},
		{"glm", "https://open.bigmodel.cn/api/paas/v4", "file-extract", 50 << 20, 100},
		{"qwen", "https://dashscope.aliyuncs.com/compatible-mode/v1", "file-extract", 150 << 20, 10000},
		{"openai", "https://api.openai.com/v1", "assistants", 512 << 20, 0},
		{"other", "", "", 0, 0},
	} {
		c := openai.ConfigFor(tc.name)
		if c.Name != tc.name || c.BaseURL != tc.base || c.Purpose != tc.purpose || c.MaxFileSize != tc.maxSize || c.FileQuota != tc.quota {
			t.Errorf("ConfigFor(%s) = %+v", tc.name, c)
		}
	}
}

func TestNewInvalid(t *testing.T) {
	for name, cfg := range map[string]openai.Config{
		"no key":      {Name: "x", BaseURL: "https://a/v1", Purpose: "p"},
		"no purpose":  {Name: "x", BaseURL: "https://a/v1", APIKey: "k"},
		"no base":     {Name: "x", APIKey: "k", Purpose: "p"},
		"ftp base":    {Name: "x", BaseURL: "ftp://a/v1", APIKey: "k", Purpose: "p"},
		"bad size":    {Name: "x", BaseURL: "https://a/v1", APIKey: "k", Purpose: "p", MaxFileSize: -1},
		"no name":     {BaseURL: "https://a/v1", APIKey: "k", Purpose: "p"},
		"relative ur": {Name: "x", BaseURL: "/v1", APIKey: "k", Purpose: "p"},
	} {
		if _, err := openai.New(cfg); filehub.ErrorCode(err) != filehub.EINVALID {
			t.Errorf("%s: New = %v, want EINVALID", name, err)
		}
	}
}

// pattern is an endless byte stream.
type pattern struct{ i byte }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = p.i
		p.i++
	}
	return len(b), nil
}

// TestUploadMemoryDoesNotGrowWithSize checks that uploads stream: bytes
// allocated while uploading 64 MiB (client and stand-in together) stay far
// below the upload's size.
func TestUploadMemoryDoesNotGrowWithSize(t *testing.T) {
	fp := fakeprovider.New(t, testKey)
	c, _ := newClient(t, fp, nil)
	measure := func(size int64) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := c.Upload(t.Context(), "big.bin", "", size, func() (io.ReadCloser, error) {
			return io.NopCloser(io.LimitReader(&pattern{}, size)), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	small := measure(1 << 20)
	large := measure(64 << 20)
	t.Logf("allocated %d bytes for 1 MiB, %d bytes for 64 MiB", small, large)
	if large > 4<<20 {
		t.Fatalf("a 64 MiB upload allocated %d bytes; memory grows with file size", large)
	}
}

// TestPresetsMatchProviders uploads with every preset's purpose to a
// stand-in that accepts only the purposes its provider documents: a preset
// with a purpose its provider does not list (glm's "file" did) fails here.
func TestPresetsMatchProviders(t *testing.T) {
	for name, p := range openai.Presets {
		t.Run(name, func(t *testing.T) {
			fp := fakeprovider.NewFor(t, testKey, name)
			c, _ := newClient(t, fp, func(c *openai.Config) {
				*c = openai.ConfigFor(name)
				c.BaseURL, c.APIKey, c.Timeout = fp.URL, testKey, time.Minute
			})
			content := []byte("preset check")
			if _, err := c.Upload(t.Context(), "a.txt", p.Purpose, int64(len(content)), opener(content)); err != nil {
				t.Fatalf("upload with preset %s's purpose %q: %v", name, p.Purpose, err)
			}
			if _, err := c.Upload(t.Context(), "a.txt", "file", int64(len(content)), opener(content)); filehub.ErrorCode(err) == "" {
				t.Errorf("the stand-in for %s accepted the undocumented purpose \"file\"", name)
			}
		})
	}
}
