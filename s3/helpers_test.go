package s3_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
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
	intercept func(w http.ResponseWriter, r *http.Request) bool // true: handled
	requests  []string                                          // "METHOD path?query" of every request
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
		if icpt != nil && icpt(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeS3) setIntercept(fn func(w http.ResponseWriter, r *http.Request) bool) {
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
