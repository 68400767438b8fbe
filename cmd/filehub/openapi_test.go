package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub/internal/apitest"
	"github.com/filehub/filehub/internal/nodetest"
)

// TestOpenAPIRoutesServed asks the assembled daemon for every operation of
// api/openapi.yaml, without a key and straight to its listener: each must be
// routed (answered by something other than the "no such endpoint" 404 or a
// 405), which covers the routes mounted beside the API handler (/v1/ws) that
// httpapi's TestOpenAPIRoutes cannot see. Operations marked
// x-filehub-unreleased must not be routed yet: once they are, the marker has
// to go and their description be checked against what is served.
func TestOpenAPIRoutesServed(t *testing.T) {
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	direct := "http://" + s.Addr()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: time.Minute}

	// The WebSocket endpoint's refusals, through the validating proxy; first,
	// before the keyless probes below trip the limit on failed
	// authentications from this address.
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"no subprotocol", nil, http.StatusUpgradeRequired},
		{"not a handshake", map[string]string{"Sec-WebSocket-Protocol": "filehub.v1"}, http.StatusBadRequest},
		{"unknown key", map[string]string{"Sec-WebSocket-Protocol": "filehub.v1", "Authorization": "Bearer fhk_unknown"}, http.StatusUnauthorized},
	} {
		req, err := http.NewRequest(http.MethodGet, s.URL+"/v1/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("GET /v1/ws, %s: %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}

	doc := apitest.Load(t).Doc
	n := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			n++
			p := method + " " + path
			unreleased, _ := op.Extensions["x-filehub-unreleased"].(bool)
			// Released operations are asked through the validating proxy,
			// so that each one's refusal of a keyless request is checked
			// against the document too.
			base := s.URL
			if unreleased {
				base = direct
			}
			url := base + strings.NewReplacer("{id}", "1", "{name}", "x", "{upload_id}", "x").Replace(path)
			req, err := http.NewRequest(method, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			routed := resp.StatusCode != http.StatusMethodNotAllowed &&
				!(resp.StatusCode == http.StatusNotFound && (len(body) == 0 || strings.Contains(string(body), "no such endpoint")))
			switch {
			case unreleased && routed:
				t.Errorf("%s is served (%d): remove its x-filehub-unreleased and check the document against it", p, resp.StatusCode)
			case !unreleased && !routed:
				t.Errorf("api/openapi.yaml documents %s, but the daemon answers %d %s", p, resp.StatusCode, body)
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d operations in the document", n)
	}

	// The other way round: every pattern the listener serves is in the
	// document (a pattern without a method, or a subtree ending in "/",
	// by at least one operation under it).
	routes := s.Routes()
	if len(routes) < 15 {
		t.Fatalf("Routes() = %v: too few to be the listener's", routes)
	}
	for _, pattern := range routes {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "", pattern
		}
		found := false
		for docPath, item := range doc.Paths.Map() {
			if docPath != path && !(strings.HasSuffix(path, "/") && strings.HasPrefix(docPath, path)) {
				continue
			}
			found = found || method == "" || item.GetOperation(method) != nil
		}
		if !found {
			t.Errorf("the daemon serves %q, which api/openapi.yaml does not document", pattern)
		}
	}

}

// TestOpenAPITypeScriptClient generates TypeScript types from the document
// with openapi-typescript, type-checks e2e/openapi-client.ts against them
// with tsc (strict), and runs the compiled script against a real daemon:
// it uploads (raw and multipart), lists every page, downloads whole, by
// range and conditionally, deletes and restores, all with fetch, typed only
// by the generated types. Its traffic goes through the validating proxy too.
func TestOpenAPITypeScriptClient(t *testing.T) {
	nodetest.Require(t)
	e2e := nodetest.Dir()
	dir := t.TempDir()
	// openapi-typescript lints with Redocly as it bundles; the lint proper
	// is api's TestOpenAPILint, with its justified exceptions, which this
	// run cannot read. Here only the document's structure matters.
	mustWrite(t, filepath.Join(dir, "redocly.yaml"), "extends: [minimal]\n")
	nodetest.Run(t, 2*time.Minute, nil, "node_modules/openapi-typescript/bin/cli.js",
		filepath.Join(e2e, "..", "api", "openapi.yaml"), "--redocly", filepath.Join(dir, "redocly.yaml"),
		"--output", filepath.Join(dir, "filehub-api.d.ts"))

	src, err := os.ReadFile(filepath.Join(e2e, "openapi-client.ts"))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "openapi-client.ts"), string(src))
	// Browser-style globals (fetch, FormData, Blob, crypto.subtle) come
	// from the DOM library, which Node 20 implements; no @types needed.
	mustWrite(t, filepath.Join(dir, "tsconfig.json"), `{
  "compilerOptions": {
    "target": "es2022", "module": "es2022", "moduleResolution": "bundler",
    "lib": ["es2022", "dom", "dom.iterable"], "types": [],
    "strict": true, "noEmitOnError": true, "outDir": "out"
  },
  "files": ["openapi-client.ts", "filehub-api.d.ts"]
}`)
	nodetest.Run(t, 2*time.Minute, nil, "node_modules/typescript/bin/tsc", "--project", filepath.Join(dir, "tsconfig.json"))
	mustWrite(t, filepath.Join(dir, "out", "package.json"), `{"type": "module"}`)

	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	out := nodetest.Run(t, 2*time.Minute, []string{"FILEHUB_URL=" + s.URL, "FILEHUB_KEY=" + testKey},
		filepath.Join(dir, "out", "openapi-client.js"))
	var sum struct {
		Uploaded     string   `json:"uploaded"`
		Multipart    []string `json:"multipart"`
		Listed       int      `json:"listed"`
		SecondDelete string   `json:"second_delete"`
	}
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("script output %q: %v", out, err)
	}
	if sum.Uploaded == "" || len(sum.Multipart) != 2 || sum.Listed != 3 || sum.SecondDelete != "not_found" {
		t.Errorf("script summary %+v, want 1 + 2 uploads, 3 listed, not_found for the second delete (the file is no longer live)", sum)
	}
	// What the script did is visible to the Go client.
	f, err := NewClient(t, s.URL, testKey).Stat(t.Context(), sum.Uploaded)
	if err != nil || f.Deleted() {
		t.Errorf("Stat(%s) = %+v, %v; want the restored file", sum.Uploaded, f, err)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
