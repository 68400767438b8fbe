package s3_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/filehub/filehub/s3"
)

const testBucket = "filehub-test"

// fakeS3 is an in-process S3-compatible server (gofakes3 with its in-memory
// backend) on 127.0.0.1, reached over real HTTP by the real client.
type fakeS3 struct {
	srv     *httptest.Server
	backend *s3mem.Backend

	mu        sync.Mutex
	intercept func(w http.ResponseWriter, r *http.Request, next http.Handler) bool // true: handled
	requests  []string                                                             // "METHOD path?query" of every request
}

// newFakeS3 starts a server with an empty bucket testBucket; it is closed by
// t.Cleanup.
func newFakeS3(t testing.TB) *fakeS3 {
	t.Helper()
	f := &fakeS3{backend: s3mem.New()}
	if err := f.backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	h := gofakes3.New(f.backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		icpt := f.intercept
		f.mu.Unlock()
		if icpt != nil && icpt(w, r, h) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeS3) setIntercept(fn func(w http.ResponseWriter, r *http.Request, next http.Handler) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.intercept = fn
}

// takeRequests returns the requests seen since the last call.
func (f *fakeS3) takeRequests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

func (f *fakeS3) url(extra string) string {
	return "s3://" + testBucket + "?endpoint=" + f.srv.URL + "&region=us-east-1&path_style=true" + extra
}

// testConfig has static credentials and a short backoff, so retry tests do
// not sleep long.
func testConfig() s3.Config {
	return s3.Config{AccessKeyID: "test", SecretAccessKey: "test", MaxBackoff: 5 * time.Millisecond}
}

// mustOpen opens a store on f (closed by t.Cleanup).
func mustOpen(t testing.TB, f *fakeS3, extra string, cfg s3.Config) *s3.Store {
	t.Helper()
	s, err := s3.Open(context.Background(), f.url(extra), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sumOf(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// faultTransport fails the requests fail picks with an S3 error answer
// before they reach the server, and counts the attempts it sees.
type faultTransport struct {
	base *http.Transport

	mu       sync.Mutex
	fail     func(r *http.Request, attempt int) (status int, code string) // status 0: pass
	attempts map[string]int                                               // by "METHOD path?query"
}

func newFaultTransport(t testing.TB) *faultTransport {
	ft := &faultTransport{base: http.DefaultTransport.(*http.Transport).Clone(), attempts: map[string]int{}}
	t.Cleanup(ft.base.CloseIdleConnections)
	return ft
}

func (ft *faultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ft.mu.Lock()
	id := r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery
	ft.attempts[id]++
	n := ft.attempts[id]
	var status int
	var code string
	if ft.fail != nil {
		status, code = ft.fail(r, n)
	}
	ft.mu.Unlock()
	if status == 0 {
		return ft.base.RoundTrip(r)
	}
	if r.Body != nil {
		r.Body.Close()
	}
	body := "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code + "</Code><Message>injected</Message></Error>"
	return &http.Response{
		StatusCode:    status,
		Status:        http.StatusText(status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/xml"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}, nil
}

func (ft *faultTransport) setFail(fn func(r *http.Request, attempt int) (int, string)) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.fail = fn
	ft.attempts = map[string]int{}
}

// count returns how many requests with the given method whose query has key
// were seen.
func (ft *faultTransport) count(method, queryKey string) int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	n := 0
	for id, c := range ft.attempts {
		m, rest, _ := strings.Cut(id, " ")
		if m == method && (queryKey == "" || strings.Contains(rest, queryKey)) {
			n += c
		}
	}
	return n
}

// blobBytes returns n reproducible pseudo-random bytes.
func blobBytes(seed byte, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// stageCommit stages data in odd-sized writes and commits it under its sum.
func stageCommit(t testing.TB, s *s3.Store, data []byte) string {
	t.Helper()
	return stage(t, s, data, false)
}

// stageSyncCommit is stageCommit with a Sync before the Commit, which
// stores a temp object first and makes Commit copy it.
func stageSyncCommit(t testing.TB, s *s3.Store, data []byte) string {
	t.Helper()
	return stage(t, s, data, true)
}

func stage(t testing.TB, s *s3.Store, data []byte, sync bool) string {
	t.Helper()
	ctx := context.Background()
	sum := sumOf(data)
	b, err := s.Stage(ctx)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	defer b.Close(context.Background())
	writeOdd(t, b, data)
	if sync {
		if err := b.Sync(); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}
	if err := b.Commit(ctx, sum); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return sum
}

func writeOdd(t testing.TB, w io.Writer, data []byte) {
	t.Helper()
	for rest, chunk := data, 1000; len(rest) > 0; chunk = chunk*7%300_007 + 1 {
		n := min(chunk, len(rest))
		if m, err := w.Write(rest[:n]); err != nil || m != n {
			t.Fatalf("Write(%d bytes) = %d, %v", n, m, err)
		}
		rest = rest[n:]
	}
}

func readAll(t testing.TB, s *s3.Store, sum string) []byte {
	t.Helper()
	r, err := s.Open(context.Background(), sum)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return data
}
