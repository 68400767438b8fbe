package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/internal/apitest"
)

// besideRoutes are documented routes that the daemon serves next to this
// handler rather than through it; cmd/filehub's TestOpenAPIRoutesServed
// checks them against the assembled daemon.
var besideRoutes = []string{
	"GET /v1/ws", // wsserver: authenticates by itself, also in its hello frame
	// ui: the dashboard's public static files (and ServeMux's redirect).
	"GET /ui", "GET /ui/", "GET /ui/{file}", "GET /ui/js/{module}",
	// mcpserver: the MCP endpoint, authenticated by itself.
	"POST /v1/mcp", "GET /v1/mcp", "DELETE /v1/mcp",
	// tus, mounted on this handler with Mount (not in its route table).
	"OPTIONS /v1/uploads/", "POST /v1/uploads/", "HEAD /v1/uploads/{upload_id}", "PATCH /v1/uploads/{upload_id}",
	"POST /v1/uploads/{upload_id}", "DELETE /v1/uploads/{upload_id}",
}

// documentedOps returns the document's operations as "METHOD /path"
// patterns with the scope each one declares, and the set of those marked
// x-filehub-unreleased (routes being built on other branches).
func documentedOps(t *testing.T) (scopes map[string]string, unreleased map[string]bool) {
	t.Helper()
	doc := apitest.Load(t).Doc
	scopes, unreleased = map[string]string{}, map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			p := method + " " + path
			scope, _ := op.Extensions["x-filehub-scope"].(string)
			if scope == "" {
				t.Errorf("%s: no x-filehub-scope", p)
			}
			desc := strings.Join(strings.Fields(op.Description), " ")
			want := "Scope: `" + scope + "`"
			if scope == "none" {
				want = "No authentication"
			}
			if !strings.Contains(desc, want) {
				t.Errorf("%s: the description does not say %q", p, want)
			}
			scopes[p] = scope
			if u, _ := op.Extensions["x-filehub-unreleased"].(bool); u {
				unreleased[p] = true
			}
		}
	}
	return scopes, unreleased
}

// TestOpenAPIRoutes enumerates the handler's route table and the document's
// operations: each route must be documented with the scope it enforces,
// and each documented operation must be a route (HEAD is served by GET
// routes), served beside the handler, or marked unreleased.
func TestOpenAPIRoutes(t *testing.T) {
	e := newEnv(t, envConfig{})
	scopes, unreleased := documentedOps(t)
	served := map[string]bool{}
	for _, rt := range e.h.Routes() {
		p := rt.Pattern()
		served[p] = true
		scope, ok := scopes[p]
		if !ok {
			t.Errorf("route %s is not in api/openapi.yaml", p)
			continue
		}
		want := string(rt.Scope)
		if want == "" {
			want = "none"
		}
		if scope != want {
			t.Errorf("%s: x-filehub-scope %q, but the route needs %q", p, scope, want)
		}
		if unreleased[p] {
			t.Errorf("%s is served: remove its x-filehub-unreleased and check its description against the server", p)
		}
	}
	for p := range scopes {
		method, path, _ := strings.Cut(p, " ")
		switch {
		case served[p], method == http.MethodHead && served["GET "+path]:
		case slices.Contains(besideRoutes, p), unreleased[p]:
		default:
			t.Errorf("api/openapi.yaml documents %s, which the server does not serve", p)
		}
	}
}

// TestOpenAPIServed fetches the document without a key, as JSON and YAML.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, envConfig{})
	resp, body := e.do("GET", "/v1/openapi.json", "", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/openapi.json = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, api.OpenAPIJSON()) {
		t.Error("GET /v1/openapi.json is not the embedded document")
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.OpenAPI != "3.1.0" || doc.Paths["/v1/files"] == nil {
		t.Errorf("GET /v1/openapi.json: openapi %q, %d paths, err %v", doc.OpenAPI, len(doc.Paths), err)
	}
	resp, body = e.do("GET", "/v1/openapi.yaml", "", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(body, api.OpenAPIYAML()) {
		t.Errorf("GET /v1/openapi.yaml = %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin = %q, want * (browser tools fetch the document)", got)
	}
}

// TestOpenAPIRefusals sends every authenticated route the refusals any of
// them can get, so that the document's 429 (with Retry-After) and 503 (with
// Retry-After) are checked on each route by the validating client, not
// just where a feature test happens to meet them.
func TestOpenAPIRefusals(t *testing.T) {
	paths := strings.NewReplacer("{id}", "1", "{name}", "x")
	t.Run("rate limited", func(t *testing.T) {
		// A burst of one request and a refill far slower than the test:
		// after the first request, the key is refused everywhere.
		e := newEnv(t, envConfig{http: httpapi.Config{RateLimit: 0.001, RateBurst: 1}})
		e.do("GET", "/v1/files", keyAdmin, nil, nil)
		for _, rt := range e.h.Routes() {
			if rt.Scope == "" {
				continue
			}
			resp, body := e.do(rt.Method, paths.Replace(rt.Path), keyAdmin, nil, nil)
			wantProblem(t, resp, body, http.StatusTooManyRequests, filehub.ERATELIMIT)
		}
	})
	t.Run("key store down", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		if err := e.meta.Close(); err != nil {
			t.Fatal(err)
		}
		for _, rt := range e.h.Routes() {
			if rt.Scope == "" {
				continue
			}
			resp, body := e.do(rt.Method, paths.Replace(rt.Path), keyAdmin, nil, nil)
			wantProblem(t, resp, body, http.StatusServiceUnavailable, filehub.EUNAVAILABLE)
		}
	})
}

// TestOpenAPILimits meets, through the validating client, the documented
// limits that the feature tests check over raw connections: a stalled
// upload body (408), oversized JSON bodies (413) and a failed precondition
// on a download (412).
func TestOpenAPILimits(t *testing.T) {
	e := newEnv(t, envConfig{
		http:    httpapi.Config{UploadStallTimeout: 200 * time.Millisecond},
		cleanup: &cleanup.Config{},
	})

	// The body sends one byte, then nothing until the server gives up.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("x"))
	}()
	resp, body := e.do("POST", "/v1/files?name=stalled", keyWrite, pr, nil)
	pw.Close()
	wantProblem(t, resp, body, http.StatusRequestTimeout, filehub.ETIMEOUT)

	// One byte over the 64 KiB limit: the server reads it all before it
	// refuses, so the client is never cut off while still sending.
	big := strings.Repeat(" ", 64<<10+1)
	for _, p := range []string{"POST /v1/cleanup/runs", "PATCH /v1/cleanup/config"} {
		method, path, _ := strings.Cut(p, " ")
		resp, body := e.do(method, path, keyAdmin, strings.NewReader(big), http.Header{"Content-Type": {"application/json"}})
		wantProblem(t, resp, body, http.StatusRequestEntityTooLarge, filehub.ETOOLARGE)
	}

	up := e.upload("a.txt", []byte("hello"))
	resp, body = e.do("GET", "/v1/files/"+up.ID+"/content", keyRead, nil, http.Header{"If-Match": {`"0000"`}})
	if resp.StatusCode != http.StatusPreconditionFailed || len(body) != 0 {
		t.Errorf("If-Match mismatch: %d %q, want 412 without a body", resp.StatusCode, body)
	}
}
