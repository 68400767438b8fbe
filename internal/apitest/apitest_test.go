package apitest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/filehub/filehub/internal/apitest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a testing.TB that keeps the mismatches reported to it.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestTransport runs exchanges against a fake server and checks which ones
// the transport reports: it must catch each kind of drift and pass the
// exchanges that match the document.
func TestTransport(t *testing.T) {
	const file = `{"id":"f_1","name":"a.txt","size":5,"sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824","content_type":"text/plain","created_at":"2026-11-27T06:00:00Z","owner_key_id":"k_1"}`
	problem := func(status int, code string) string {
		return fmt.Sprintf(`{"type":"urn:filehub:error:%s","title":"x","status":%d,"detail":"x","code":"%s"}`, code, status, code)
	}
	for _, tc := range []struct {
		name, method, path, auth string
		status                   int
		ctype, body              string
		header                   map[string]string
		wantErr                  string // "" for no report
	}{
		{name: "healthz ok", method: "GET", path: "/healthz", status: 200, ctype: "application/json", body: `{"status":"ok"}`},
		{name: "body off schema", method: "GET", path: "/healthz", status: 200, ctype: "application/json", body: `{"status":"fine"}`, wantErr: "does not match the document"},
		{name: "unknown field", method: "GET", path: "/v1/files/f_1", auth: "Bearer k", status: 200, ctype: "application/json",
			body: strings.Replace(file, `{`, `{"extra":1,`, 1), wantErr: "does not match the document"},
		{name: "stat ok", method: "GET", path: "/v1/files/f_1", auth: "Bearer k", status: 200, ctype: "application/json", body: file},
		{name: "undocumented status", method: "GET", path: "/v1/files/f_1", auth: "Bearer k", status: 418, ctype: "application/problem+json",
			body: problem(418, "invalid"), wantErr: "status is not supported"},
		{name: "code off status", method: "GET", path: "/v1/files/f_1", auth: "Bearer k", status: 404, ctype: "application/problem+json",
			body: problem(404, "conflict"), wantErr: "does not match the document"},
		{name: "429 without Retry-After", method: "GET", path: "/v1/files", auth: "Bearer k", status: 429, ctype: "application/problem+json",
			body: problem(429, "rate_limited"), wantErr: "Retry-After"},
		{name: "429 with Retry-After", method: "GET", path: "/v1/files", auth: "Bearer k", status: 429, ctype: "application/problem+json",
			body: problem(429, "rate_limited"), header: map[string]string{"Retry-After": "1"}},
		{name: "no key accepted", method: "GET", path: "/v1/files/f_1", status: 200, ctype: "application/json", body: file,
			wantErr: "violates the document, yet the server answered 200"},
		{name: "no key refused", method: "GET", path: "/v1/files/f_1", status: 401, ctype: "application/problem+json",
			body: problem(401, "unauthorized"), header: map[string]string{"WWW-Authenticate": `Bearer realm="filehub"`}},
		{name: "bad limit accepted", method: "GET", path: "/v1/files?limit=0", auth: "Bearer k", status: 200, ctype: "application/json",
			body: `{"files":[]}`, wantErr: "violates the document"},
		{name: "undocumented route served", method: "GET", path: "/v1/secret", auth: "Bearer k", status: 200, ctype: "application/json",
			body: `{}`, wantErr: "not in the document"},
		{name: "undocumented route refused", method: "GET", path: "/v1/secret", status: 404, ctype: "application/problem+json", body: problem(404, "not_found")},
		{name: "content any type", method: "GET", path: "/v1/files/f_1/content", auth: "Bearer k", status: 200, ctype: "image/png", body: "\x89PNG",
			header: map[string]string{"ETag": `"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"`, "Content-Disposition": "attachment; filename=a.png",
				"Last-Modified": "Fri, 27 Nov 2026 06:00:00 GMT", "Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff"}},
		{name: "content without ETag", method: "GET", path: "/v1/files/f_1/content", auth: "Bearer k", status: 200, ctype: "image/png", body: "\x89PNG",
			header: map[string]string{"Content-Disposition": "attachment; filename=a.png", "Last-Modified": "Fri, 27 Nov 2026 06:00:00 GMT",
				"Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff"}, wantErr: "ETag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			rec := &recorder{TB: t}
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: apitest.Transport(rec, tr)}
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != tc.body {
				t.Errorf("the client read %q, want the server's %q", body, tc.body)
			}
			got := strings.Join(rec.errs, "\n")
			switch {
			case tc.wantErr == "" && got != "":
				t.Errorf("reported a mismatch for a matching exchange:\n%s", got)
			case tc.wantErr != "" && !strings.Contains(got, tc.wantErr):
				t.Errorf("reported %q, want a report containing %q", got, tc.wantErr)
			}
		})
	}
}

// TestProxyStreams checks that the proxy passes a streamed body on at once
// (it buffers only JSON) and that its clean-up does not wait for a stream
// the test left open.
func TestProxyStreams(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "first line\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer backend.Close()
	defer close(release) // in case the proxy fails to end the request
	t.Run("open stream", func(t *testing.T) {
		// Registered first, so run last: after the proxy's clean-up,
		// which must not wait for this body.
		var body io.Closer
		tr := &http.Transport{}
		t.Cleanup(func() {
			body.Close()
			tr.CloseIdleConnections()
		})
		rec := &recorder{TB: t}
		url := apitest.Proxy(rec, backend.URL)
		req, _ := http.NewRequest("GET", url+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer k")
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body = resp.Body
		buf := make([]byte, len("first line\n"))
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first line\n" {
			t.Fatalf("read %q, %v: the proxy did not stream", buf, err)
		}
		if len(rec.errs) != 0 {
			t.Errorf("reported: %v", rec.errs)
		}
		// The body stays open: the proxy's clean-up must end it.
	})
}
