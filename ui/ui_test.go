package ui_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/filehub/filehub/ui"
)

func get(t *testing.T, h http.Handler, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// mux mounts the handler the way the daemon does.
func mux() http.Handler {
	m := http.NewServeMux()
	m.Handle("GET "+ui.Prefix, ui.Handler())
	return m
}

func TestAssetsServedWithSecurityHeaders(t *testing.T) {
	h := mux()
	for _, tt := range []struct {
		path, wantType, wantBody string
	}{
		{"/ui/", "text/html", `<script type="module" src="js/main.js">`},
		{"/ui/app.css", "text/css", ".cards"},
		{"/ui/js/main.js", "text/javascript", "sessionStorage"},
		{"/ui/js/ws.js", "text/javascript", "filehub.v1"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, h, tt.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("Content-Type %q, want %s", ct, tt.wantType)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body lacks %q", tt.wantBody)
			}
			for k, want := range map[string]string{
				"Content-Security-Policy": ui.ContentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"X-Frame-Options":         "DENY",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestCSPIsStrict pins the policy's essential directives, so that a later
// "just allow this one inline script" is a visible test change.
func TestCSPIsStrict(t *testing.T) {
	csp := ui.ContentSecurityPolicy
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP lacks %q: %s", want, csp)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP allows %q: %s", bad, csp)
		}
	}
}

func TestNotFoundAndNoListing(t *testing.T) {
	h := mux()
	for _, p := range []string{"/ui/js/", "/ui/nope.js", "/ui/../go.mod"} {
		resp, _ := get(t, h, p)
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET %s: 200, want an error", p)
		}
		if resp.Header.Get("Content-Security-Policy") == "" && resp.StatusCode/100 != 3 {
			t.Errorf("GET %s: no CSP on the error answer", p)
		}
	}
	resp, _ := get(t, h, "/ui")
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want a redirect to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestETagRevalidation(t *testing.T) {
	h := mux()
	resp, _ := get(t, h, "/ui/js/main.js")
	tag := resp.Header.Get("ETag")
	if tag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", tag, resp.Header.Get("Cache-Control"))
	}
	resp, _ = get(t, h, "/ui/js/main.js", "If-None-Match", tag)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: status %d, want 304", resp.StatusCode)
	}
	other, _ := get(t, h, "/ui/js/ws.js")
	if other.Header.Get("ETag") == tag {
		t.Error("two files share an ETag")
	}
}

// TestAssetsNeedNoInlineCode reads the source tree of the embedded assets:
// the CSP forbids inline script and style, so a handler attribute, an
// inline <script> or a style attribute would silently not work; and user
// text must never be parsed as HTML.
func TestAssetsNeedNoInlineCode(t *testing.T) {
	root := "assets"
	bad := []struct {
		re   *regexp.Regexp
		what string
	}{
		{regexp.MustCompile(`(?i)<script(?:\s+type="module")?>`), "inline <script>"},
		{regexp.MustCompile(`(?i)<style`), "inline <style>"},
		{regexp.MustCompile(`(?i)\sstyle=`), "style attribute"},
		{regexp.MustCompile(`(?i)\son[a-z]+="`), "inline event handler"},
		{regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(`), "HTML parsing or eval"},
		{regexp.MustCompile(`(?i)https?://`), "an absolute URL (no CDN, no other origin)"},
		{regexp.MustCompile(`localStorage|document\.cookie`), "a key store other than sessionStorage"},
	}
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		for _, c := range bad {
			if loc := c.re.FindIndex(b); loc != nil {
				t.Errorf("%s contains %s: %q", p, c.what, b[loc[0]:loc[1]])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("read %d asset files, want the whole page", n)
	}
}

// TestModulesResolve checks that every module import and every file the
// page links to is served, so a renamed file fails here, not in a browser.
func TestModulesResolve(t *testing.T) {
	h := mux()
	_, index := get(t, h, "/ui/")
	refs := regexp.MustCompile(`(?:src|href)="([^"#:]+)"`).FindAllStringSubmatch(index, -1)
	seen := map[string]bool{}
	queue := []string{}
	for _, r := range refs {
		queue = append(queue, "/ui/"+r[1])
	}
	imp := regexp.MustCompile(`from "\./([^"]+)"`)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		resp, body := get(t, h, p)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
			continue
		}
		for _, m := range imp.FindAllStringSubmatch(body, -1) {
			queue = append(queue, p[:strings.LastIndex(p, "/")+1]+m[1])
		}
	}
	if !seen["/ui/js/files.js"] || !seen["/ui/js/cleanup.js"] {
		t.Errorf("the import graph misses pages: %v", seen)
	}
}
