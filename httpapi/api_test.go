package httpapi_test

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/httpapi"
)

// TestRoutesAuth walks the route table: every route but /healthz refuses a
// missing, malformed, unknown or revoked key (401) and a key without its
// scope (403).
func TestRoutesAuth(t *testing.T) {
	// Failed attempts are the point here; TestAuthFailureLimit covers
	// the limit on them.
	e := newEnv(t, envConfig{http: httpapi.Config{AuthFailureLimit: -1}})
	routes := e.h.Routes()
	if len(routes) < 15 {
		t.Fatalf("Routes() = %d routes, want all 15 (is /metrics missing?)", len(routes))
	}
	// A key lacking each scope.
	lacking := map[filehub.Scope]string{
		filehub.ScopeRead:    keyMetrics,
		filehub.ScopeWrite:   keyRead,
		filehub.ScopeMetrics: keyRW,
		filehub.ScopeAdmin:   keyRW,
	}
	for _, rt := range routes {
		path := strings.ReplaceAll(rt.Path, "{id}", "f_doesnotexist")
		t.Run(rt.Pattern(), func(t *testing.T) {
			if rt.Scope == "" {
				resp, body := e.do(rt.Method, path, "", nil, nil)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("without a key: %d %s, want 200", resp.StatusCode, body)
				}
				return
			}
			for _, auth := range []string{"", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer fhk_unknown", "Bearer " + e.keys[keyRevoked]} {
				hdr := http.Header{}
				if auth != "" {
					hdr.Set("Authorization", auth)
				}
				resp, body := e.do(rt.Method, path, "", nil, hdr)
				wantProblem(t, resp, body, http.StatusUnauthorized, filehub.EUNAUTHORIZED)
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("Authorization %q: WWW-Authenticate = %q", auth, resp.Header.Get("WWW-Authenticate"))
				}
			}
			key, ok := lacking[rt.Scope]
			if !ok {
				t.Fatalf("no key lacking scope %q", rt.Scope)
			}
			resp, body := e.do(rt.Method, path, key, nil, nil)
			wantProblem(t, resp, body, http.StatusForbidden, filehub.EFORBIDDEN)
			// And the admin key gets past authorization.
			resp, body = e.do(rt.Method, path, keyAdmin, nil, nil)
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				t.Errorf("admin key: %d %s", resp.StatusCode, body)
			}
		})
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t, envConfig{})
	resp, body := e.do("GET", "/healthz", "", nil, nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Errorf("healthz = %d %s", resp.StatusCode, body)
	}
	resp, body = e.do("GET", "/readyz", keyMetrics, nil, nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ready"}` {
		t.Errorf("readyz = %d %s", resp.StatusCode, body)
	}
	e.upload("a.txt", []byte("hello"))
	resp, body = e.do("GET", "/metrics", keyMetrics, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("metrics = %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`filehub_http_requests_total{code="201",method="POST",route="POST /v1/files"} 1`,
		`filehub_http_request_duration_seconds_count{method="GET",route="GET /readyz"} 1`,
		`filehub_uploads_total{result="stored"} 1`,
		`filehub_http_rate_limited_total{reason="key"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestReadyzNotReady(t *testing.T) {
	e := newEnv(t, envConfig{files: files.Config{MinFreeSpace: 1 << 30}, free: 1 << 20})
	resp, body := e.do("GET", "/readyz", keyMetrics, nil, nil)
	p := wantProblem(t, resp, body, http.StatusServiceUnavailable, filehub.EUNAVAILABLE)
	if !strings.Contains(p.Detail, "space") {
		t.Errorf("detail %q does not say why", p.Detail)
	}
}

func TestMetricsHandler(t *testing.T) {
	e := newEnv(t, envConfig{})
	mh := e.h.MetricsHandler()
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/metrics", 200},
		{"GET", "/readyz", 200},
		{"GET", "/healthz", 200},
		{"GET", "/v1/files", 404},
		{"POST", "/metrics", 405},
	} {
		rec := httptestRecorder(mh, tc.method, tc.path)
		if rec.Code != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, rec.Code, tc.status)
		}
		if tc.status >= 400 && rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, rec.Header().Get("Content-Type"))
		}
	}
}

func TestUnmatched(t *testing.T) {
	e := newEnv(t, envConfig{})
	resp, body := e.do("GET", "/nope", keyAdmin, nil, nil)
	wantProblem(t, resp, body, http.StatusNotFound, filehub.ENOTFOUND)
	resp, body = e.do("PUT", "/v1/files", keyAdmin, nil, nil)
	wantProblem(t, resp, body, http.StatusMethodNotAllowed, filehub.EINVALID)
	allow := resp.Header.Get("Allow")
	if !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("Allow = %q, want GET and POST", allow)
	}
	// The metrics label is bounded, whatever the path.
	if got := e.counter("filehub_http_requests_total", map[string]string{"route": "unmatched"}); got != 2 {
		t.Errorf("unmatched requests counted %v, want 2", got)
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, tc := range []struct{ in, want string }{
		{"abc-123_X.y", "abc-123_X.y"},
		{"", ""},
		{"has space", ""},
		{strings.Repeat("a", 65), ""},
		{"evil\u202e", ""},
	} {
		hdr := http.Header{}
		if tc.in != "" {
			hdr.Set("X-Request-ID", tc.in)
		}
		resp, _ := e.do("GET", "/healthz", "", nil, hdr)
		got := resp.Header.Get("X-Request-ID")
		if tc.want != "" && got != tc.want {
			t.Errorf("X-Request-ID %q echoed as %q", tc.in, got)
		}
		if tc.want == "" && (got == "" || got == tc.in) {
			t.Errorf("X-Request-ID %q: got %q, want a fresh id", tc.in, got)
		}
	}
}

func TestUploadRawAndDedup(t *testing.T) {
	e := newEnv(t, envConfig{})
	data := []byte("hello, filehub\n")
	up := e.upload("hello.txt", data)
	if up.Name != "hello.txt" || up.Size != int64(len(data)) || up.SHA256 != sum(data) ||
		up.Deduplicated || !strings.HasPrefix(up.ContentType, "text/plain") || up.ID == "" || up.OwnerKeyID == "" || up.CreatedAt.IsZero() {
		t.Errorf("first upload = %+v %+v", up, up.File)
	}
	again := e.upload("copy.txt", data)
	if !again.Deduplicated || again.ID == up.ID || again.SHA256 != up.SHA256 {
		t.Errorf("second upload = %+v %+v, want deduplicated with a new id", again, again.File)
	}
	if s := e.state(); s != (state{records: 2, objects: 1}) {
		t.Errorf("state = %+v, want 2 records sharing 1 object", s)
	}
	// The JSON has exactly the documented members.
	resp, body := e.do("POST", "/v1/files?name=x", keyWrite, strings.NewReader("x"), nil)
	if resp.StatusCode != 201 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var m map[string]any
	mustJSON(t, body, &m)
	for _, k := range []string{"id", "name", "size", "sha256", "content_type", "created_at", "owner_key_id", "deduplicated"} {
		if _, ok := m[k]; !ok {
			t.Errorf("upload JSON lacks %q: %s", k, body)
		}
	}
}

func TestUploadMultipart(t *testing.T) {
	e := newEnv(t, envConfig{})
	t.Run("single", func(t *testing.T) {
		body, ct := multipartBody(t, [3]string{"file", "one.txt", "first"})
		resp, b := e.do("POST", "/v1/files", keyWrite, body, http.Header{"Content-Type": {ct}})
		if resp.StatusCode != 201 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		var up files.Upload
		mustJSON(t, b, &up)
		if up.File == nil || up.Name != "one.txt" || up.SHA256 != sum([]byte("first")) {
			t.Errorf("upload = %s", b)
		}
	})
	t.Run("several", func(t *testing.T) {
		body, ct := multipartBody(t,
			[3]string{"file", "a.txt", "alpha"},
			[3]string{"file", "", "no name"},
			[3]string{"file", `..\..\evil.txt`, "beta"})
		resp, b := e.do("POST", "/v1/files", keyWrite, body, http.Header{"Content-Type": {ct}})
		if resp.StatusCode != 201 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		var out struct{ Files []files.Upload }
		mustJSON(t, b, &out)
		if len(out.Files) != 3 {
			t.Fatalf("files = %s", b)
		}
		for i, want := range []string{"a.txt", "file", "evil.txt"} {
			if out.Files[i].Name != want {
				t.Errorf("file %d name = %q, want %q", i, out.Files[i].Name, want)
			}
		}
	})
}

func TestListPaging(t *testing.T) {
	e := newEnv(t, envConfig{})
	var ids []string
	for i := range 5 {
		ids = append(ids, e.upload(fmt.Sprintf("f%d.txt", i), []byte(fmt.Sprintf("content %d", i))).ID)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		path := "/v1/files?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		resp, body := e.do("GET", path, keyRead, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var page struct {
			Files      []filehub.File `json:"files"`
			NextCursor string         `json:"next_cursor"`
		}
		mustJSON(t, body, &page)
		if len(page.Files) > 2 {
			t.Fatalf("page of %d files with limit 2", len(page.Files))
		}
		for _, f := range page.Files {
			got = append(got, f.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Errorf("listed %v, want %v in upload order", got, ids)
	}
	for _, bad := range []string{"limit=0", "limit=-1", "limit=abc", "limit=1001", "cursor=%ff%fe"} {
		resp, body := e.do("GET", "/v1/files?"+bad, keyRead, nil, nil)
		wantProblem(t, resp, body, http.StatusBadRequest, filehub.EINVALID)
	}
	// An empty store lists [] rather than null.
	e2 := newEnv(t, envConfig{})
	_, body := e2.do("GET", "/v1/files", keyRead, nil, nil)
	if !bytes.Contains(body, []byte(`"files":[]`)) {
		t.Errorf("empty list = %s", body)
	}
}

func TestStatDeleteRestore(t *testing.T) {
	e := newEnv(t, envConfig{})
	up := e.upload("doc.txt", []byte("some document"))
	resp, body := e.do("GET", "/v1/files/"+up.ID, keyRead, nil, nil)
	var f filehub.File
	mustJSON(t, body, &f)
	if resp.StatusCode != 200 || f.ID != up.ID || f.SHA256 != up.SHA256 || f.Deleted() {
		t.Fatalf("stat = %d %s", resp.StatusCode, body)
	}

	resp, body = e.do("DELETE", "/v1/files/"+up.ID, keyWrite, nil, nil)
	mustJSON(t, body, &f)
	if resp.StatusCode != 200 || f.DeletedAt == nil || f.PurgeAfter == nil || !f.PurgeAfter.After(*f.DeletedAt) {
		t.Fatalf("delete = %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/v1/files/" + up.ID, "/v1/files/" + up.ID + "/content"} {
		resp, body = e.do("GET", path, keyRead, nil, nil)
		wantProblem(t, resp, body, http.StatusNotFound, filehub.ENOTFOUND)
	}
	_, body = e.do("GET", "/v1/files", keyRead, nil, nil)
	if bytes.Contains(body, []byte(up.ID)) {
		t.Errorf("deleted file still listed: %s", body)
	}
	resp, body = e.do("DELETE", "/v1/files/"+up.ID, keyWrite, nil, nil)
	wantProblem(t, resp, body, http.StatusNotFound, filehub.ENOTFOUND)

	resp, body = e.do("POST", "/v1/files/"+up.ID+"/restore", keyWrite, nil, nil)
	f = filehub.File{}
	mustJSON(t, body, &f)
	if resp.StatusCode != 200 || f.Deleted() {
		t.Fatalf("restore = %d %s", resp.StatusCode, body)
	}
	resp, body = e.do("GET", "/v1/files/"+up.ID+"/content", keyRead, nil, nil)
	if resp.StatusCode != 200 || string(body) != "some document" {
		t.Errorf("download after restore = %d %q", resp.StatusCode, body)
	}
	_, body = e.do("GET", "/v1/files", keyRead, nil, nil)
	if !bytes.Contains(body, []byte(up.ID)) {
		t.Errorf("restored file not listed: %s", body)
	}
	resp, body = e.do("POST", "/v1/files/"+up.ID+"/restore", keyWrite, nil, nil)
	wantProblem(t, resp, body, http.StatusNotFound, filehub.ENOTFOUND)
}

func TestDownload(t *testing.T) {
	e := newEnv(t, envConfig{})
	data := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	up := e.upload("digits.txt", data)
	path := "/v1/files/" + up.ID + "/content"
	etag := `"` + up.SHA256 + `"`

	resp, body := e.do("GET", path, keyRead, nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("full download = %d %q", resp.StatusCode, body)
	}
	for k, want := range map[string]string{
		"ETag":                    etag,
		"Content-Type":            up.ContentType,
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "sandbox; default-src 'none'",
		"Content-Disposition":     `attachment; filename=digits.txt`,
		"Accept-Ranges":           "bytes",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	for _, tc := range []struct {
		rng, want, contentRange string
	}{
		{"bytes=0-3", "0123", "bytes 0-3/36"},
		{"bytes=10-", "abcdefghijklmnopqrstuvwxyz", "bytes 10-35/36"},
		{"bytes=-3", "xyz", "bytes 33-35/36"},
		{"bytes=30-1000", "uvwxyz", "bytes 30-35/36"},
	} {
		resp, body := e.do("GET", path, keyRead, nil, http.Header{"Range": {tc.rng}})
		if resp.StatusCode != http.StatusPartialContent || string(body) != tc.want || resp.Header.Get("Content-Range") != tc.contentRange {
			t.Errorf("Range %s = %d %q (%s), want 206 %q (%s)", tc.rng, resp.StatusCode, body, resp.Header.Get("Content-Range"), tc.want, tc.contentRange)
		}
	}
	for _, rng := range []string{"bytes=0-1,3-4", "bytes=100-", "bytes=5-2", "bytes=abc", "pages=1-2"} {
		resp, body := e.do("GET", path, keyRead, nil, http.Header{"Range": {rng}})
		wantProblem(t, resp, body, http.StatusRequestedRangeNotSatisfiable, filehub.ERANGE)
	}

	resp, body = e.do("GET", path, keyRead, nil, http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match = %d %q, want 304", resp.StatusCode, body)
	}
	resp, body = e.do("GET", path, keyRead, nil, http.Header{"If-None-Match": {`"other"`}})
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Errorf("If-None-Match other = %d", resp.StatusCode)
	}
	resp, body = e.do("HEAD", path, keyRead, nil, nil)
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(data)) {
		t.Errorf("HEAD = %d len %d body %q", resp.StatusCode, resp.ContentLength, body)
	}
}

// TestDownloadHostileNames checks that names that could escape a download
// directory or disguise themselves arrive neutralized, and that non-ASCII
// names survive through filename*.
func TestDownloadHostileNames(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, tc := range []struct{ name, want string }{
		{"../../etc/passwd", "passwd"},
		{`..\..\windows\system32\cmd.txt`, "cmd.txt"},
		{"invoice\u202Etxt.exe", "invoice_txt.exe"},
		{"résumé 2024.txt", "résumé 2024.txt"},
		{`quo"te;x=1.txt`, "quo_te;x=1.txt"},
		{"nul.txt", "_nul.txt"},
	} {
		up := e.upload(url.QueryEscape(tc.name), []byte("hostile name test "+tc.name))
		resp, _ := e.do("GET", "/v1/files/"+up.ID+"/content", keyRead, nil, nil)
		cd := resp.Header.Get("Content-Disposition")
		disp, params, err := mime.ParseMediaType(cd)
		if err != nil || disp != "attachment" || params["filename"] != tc.want {
			t.Errorf("name %q: Content-Disposition %q parses to %q %v (%v), want filename %q", tc.name, cd, disp, params, err, tc.want)
		}
		if strings.ContainsAny(cd, "\r\n\u202E") || strings.Contains(cd, "/") {
			t.Errorf("name %q: unsafe Content-Disposition %q", tc.name, cd)
		}
	}
}

// TestContentTypeFromContent checks that the stored type comes from the
// bytes, not from the name, and that HTML is never served to be rendered.
func TestContentTypeFromContent(t *testing.T) {
	e := newEnv(t, envConfig{})
	up := e.upload("image.png", []byte("<html><script>alert(1)</script></html>"))
	resp, _ := e.do("GET", "/v1/files/"+up.ID+"/content", keyRead, nil, nil)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want the sniffed text/html", ct)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("HTML served without protection: %v", resp.Header)
	}
}

func httptestRecorder(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}
