package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/filehub/filehub/cleanup"
	main "github.com/filehub/filehub/cmd/filehub"
	"github.com/filehub/filehub/internal/chaosproxy"
	"github.com/filehub/filehub/internal/fakeprovider"
	"github.com/filehub/filehub/internal/nodetest"
	"github.com/filehub/filehub/ui"
)

// TestUIPublicAPIAuthenticated: the dashboard's assets are served to anyone
// with the security headers, while every API path the page's code calls
// refuses a request without a key.
func TestUIPublicAPIAuthenticated(t *testing.T) {
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := hc.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	for _, p := range []string{"/ui/", "/ui/app.css", "/ui/js/main.js", "/ui/js/ws.js"} {
		resp := get(p)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a key: %d, want 200", p, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != ui.ContentSecurityPolicy {
			t.Errorf("GET %s: CSP %q", p, got)
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", p, k, got, want)
			}
		}
	}
	if resp := get("/ui"); resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want a redirect to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}

	paths := pageAPIPaths(t)
	for _, want := range []string{"/v1/files", "/v1/uploads/", "/v1/cleanup/runs", "/v1/cleanup/config", "/v1/audit", "/metrics"} {
		if !slices.Contains(paths, want) {
			t.Errorf("the page's code does not call %s (found %v): the extraction is broken", want, paths)
		}
	}
	for _, p := range paths {
		if p == "/v1/ws" {
			continue // the WebSocket authenticates the hello frame (wsserver tests)
		}
		if p == "/v1/uploads/" {
			// tus answers a request without Tus-Resumable with 412
			// before anything else: ask as the page's tus client does.
			req, _ := http.NewRequest(http.MethodPost, s.URL+p, nil)
			req.Header.Set("Tus-Resumable", "1.0.0")
			req.Header.Set("Upload-Length", "1")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("POST %s without a key: %d, want 401", p, resp.StatusCode)
			}
			continue
		}
		if strings.HasSuffix(p, "/") {
			p += "f_x" // a path built with an id
		}
		if resp := get(p); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a key: %d, want 401", p, resp.StatusCode)
		}
	}
}

// pageAPIPaths returns the API paths the dashboard's modules name in string
// literals ("/v1/…" and "/metrics").
func pageAPIPaths(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join("..", "..", "ui", "assets", "js")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"(/v1/[a-z/]*|/metrics)`)
	var paths []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(paths, m[1]) {
				paths = append(paths, m[1])
			}
		}
	}
	return paths
}

// requireChromium returns the Chromium binary, or skips (fails in CI).
func requireChromium(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(p); err != nil {
		if nodetest.InCI() {
			t.Fatalf("Chromium is not installed at %s (CI must run the browser tests: apt-get install -y chromium)", p)
		}
		t.Skipf("Chromium is not installed at %s: skipping the browser test", p)
	}
	return p
}

// TestUIBrowser drives the dashboard in a real Chromium (e2e/ui.mjs): sign
// in, upload through the file chooser (by tus, resumed after a cut-off
// chunk and after a page reload; POST /v1/files when tus is not offered),
// list, live feed, download, delete
// and restore, a hostile name shown as text, the live feed surviving cut
// connections (the page resumes its session), the cleanup preview and a
// run refused by the safety cap, then forced by the admin (the
// confirmation shows the dry run's findings, the run is listed, its
// deletions filter in the audit log by action and by run), the trash size
// on the overview after a delete,
// and a read-only key without delete buttons; any console error or failed
// request fails it. Screenshots go to the test's artifact directory
// (go test -artifacts keeps them).
func TestUIBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser test takes a while; skipped with -short")
	}
	chromium := requireChromium(t)
	nodetest.Require(t)
	dataDir := t.TempDir()
	// Orphan objects are due at once, and there are more than a run may
	// delete under the safety cap: the page's real run must be refused.
	// A provider (the files API stand-in) for the providers page.
	fp := fakeprovider.New(t, "sk-provider")
	s := MustRunMain(t, dataDir, map[string]string{
		"FILEHUB_BOOTSTRAP_KEY":            testKey,
		"FILEHUB_PROVIDER_TEST_API_KEY":    "sk-provider",
		"FILEHUB_PROVIDER_TEST_BASE_URL":   fp.URL,
		"FILEHUB_PROVIDER_TEST_PURPOSE":    "file-extract",
		"FILEHUB_PROVIDER_TEST_FILE_QUOTA": "100",
	}, func(c *main.ServeConfig) {
		c.BlobGrace = time.Nanosecond
		c.CleanupInterval = 0
	})
	for i := range cleanup.DefaultMinDeleteAllowance + 1 {
		plantOrphan(t, dataDir, fmt.Sprintf("orphan %d", i))
	}
	reader := strings.TrimSpace(MustCLI(t, map[string]string{"FILEHUB_DATA_DIR": dataDir}, "keys", "create", "--name", "reader", "--scope", "read").Stdout)
	// The browser reaches the server through a proxy that the script can
	// ask (POST to FILEHUB_CUT_URL) to cut every connection, as a network
	// failure would: the page must resume its WebSocket session.
	proxy, err := chaosproxy.New(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/cut" {
			http.NotFound(w, r)
			return
		}
		proxy.CutAll()
	}))
	t.Cleanup(control.Close)
	out := t.ArtifactDir()
	stdout := nodetest.Run(t, 3*time.Minute, []string{
		"FILEHUB_URL=http://" + proxy.Addr(),
		"FILEHUB_CUT_URL=" + control.URL + "/cut",
		"FILEHUB_EXPECT_CAP=1",
		"FILEHUB_EXPECT_PROVIDER=test",
		"FILEHUB_ADMIN_KEY=" + testKey,
		"FILEHUB_READ_KEY=" + reader,
		"UI_OUT_DIR=" + out,
		"CHROMIUM=" + chromium,
		// UI_DOCS_SHOT=$PWD/docs/img/dashboard-overview.png go test
		// -run TestUIBrowser ./cmd/filehub/ renews the docs' screenshot.
		"UI_DOCS_SHOT=" + os.Getenv("UI_DOCS_SHOT"),
	}, "ui.mjs")
	t.Logf("%s", stdout)
	if n := counterValue(t, s, "filehub_ws_resumes_total", "result", "resumed"); n < 1 {
		t.Errorf("the server resumed %v sessions after the cut, want the page's session resumed", n)
	}
	for _, name := range []string{"overview", "files", "files-hostile", "cleanup", "cleanup-confirm", "cleanup-force", "audit-filtered", "providers", "files-read-only"} {
		if fi, err := os.Stat(filepath.Join(out, name+".png")); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s.png missing: %v", name, err)
		}
	}
}

// counterValue returns the value of the counter name{label="value"} in
// the server's registry (0 if absent).
func counterValue(t *testing.T, s *Server, name, label, value string) float64 {
	t.Helper()
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestUIMetricsParser runs the dashboard's Prometheus text parser in Node
// (e2e/ui-metrics.mjs: known tricky lines, garbage) and on a real /metrics
// answer: it must find every family the registry holds (histograms as
// _bucket, _sum and _count) and the right value of a known counter.
func TestUIMetricsParser(t *testing.T) {
	nodetest.Require(t)
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	c := NewClient(t, s.URL, testKey)
	for _, body := range []string{"one", "two"} {
		if _, err := c.Upload(context.Background(), body+".txt", strings.NewReader(body), -1); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodGet, s.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	file := filepath.Join(t.TempDir(), "metrics.txt")
	if err := os.WriteFile(file, text, 0o600); err != nil {
		t.Fatal(err)
	}
	out := nodetest.Run(t, time.Minute, nil, "ui-metrics.mjs", file)
	var got struct {
		Names         []string `json:"names"`
		UploadsStored float64  `json:"uploadsStored"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("ui-metrics.mjs printed %q: %v", out, err)
	}
	if got.UploadsStored != 2 {
		t.Errorf("the page reads filehub_uploads_total{result=\"stored\"} = %v, want 2", got.UploadsStored)
	}
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names := []string{mf.GetName()}
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			names = []string{mf.GetName() + "_bucket", mf.GetName() + "_sum", mf.GetName() + "_count"}
		}
		for _, n := range names {
			if !slices.Contains(got.Names, n) {
				t.Errorf("the page's parser misses %s", n)
			}
		}
	}
}
