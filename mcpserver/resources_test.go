package mcpserver_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/mcpserver"
)

func TestResources(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	// 150 files: two pages of resources/list.
	var ids []string
	for i := range 150 {
		up, err := e.svc.Upload(ctx, strings.NewReader(fmt.Sprint("file number ", i)), fmt.Sprintf("f%03d.txt", i), "k_test")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, up.ID)
	}
	bin := []byte{0, 1, 2, 3, 0xfe, 0xff}
	up, err := e.svc.Upload(ctx, bytes.NewReader(bin), "raw.bin", "k_test")
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, up.ID)
	s := e.connect(keyRead)

	var listed []string
	pages := 0
	cursor := ""
	for {
		res, err := s.ListResources(ctx, &mcp.ListResourcesParams{Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range res.Resources {
			listed = append(listed, strings.TrimPrefix(r.URI, "filehub://files/"))
		}
		if cursor = res.NextCursor; cursor == "" {
			break
		}
	}
	if pages != 2 || !slices.Equal(listed, ids) {
		t.Errorf("resources/list: %d pages, %d resources; want 2 pages with every file in order", pages, len(listed))
	}

	tmpl, err := s.ListResourceTemplates(ctx, nil)
	if err != nil || len(tmpl.ResourceTemplates) != 1 || tmpl.ResourceTemplates[0].URITemplate != "filehub://files/{id}" {
		t.Fatalf("templates = %+v, %v", tmpl, err)
	}

	res, err := s.ReadResource(ctx, &mcp.ReadResourceParams{URI: mcpserver.FileURI(ids[7])})
	if err != nil || len(res.Contents) != 1 || res.Contents[0].Text != "file number 7" || !strings.HasPrefix(res.Contents[0].MIMEType, "text/plain") {
		t.Errorf("read text resource = %+v, %v", res, err)
	}
	res, err = s.ReadResource(ctx, &mcp.ReadResourceParams{URI: mcpserver.FileURI(up.ID)})
	if err != nil || len(res.Contents) != 1 || !bytes.Equal(res.Contents[0].Blob, bin) {
		t.Errorf("read blob resource = %+v, %v", res, err)
	}

	// A deleted file's resource is gone, with a clear message.
	if _, err := e.svc.Delete(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	for _, uri := range []string{mcpserver.FileURI(ids[0]), mcpserver.FileURI("f_nosuchfile")} {
		_, err = s.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if err == nil || !strings.Contains(err.Error(), "not_found") || !strings.Contains(err.Error(), "does not exist or is in the trash") {
			t.Errorf("read %s: %v, want a not-found error", uri, err)
		}
	}
	_, err = s.ReadResource(ctx, &mcp.ReadResourceParams{URI: "filehub://files/../../etc/passwd"})
	if err == nil {
		t.Error("read of a path-like URI succeeded")
	}
}

func TestPrompts(t *testing.T) {
	e := newEnv(t, nil)
	s := e.connect(keyRW)
	var a, b uploadOut
	s.mustCall(t, "upload_file", map[string]any{"name": "a.md", "text": "# A\nfirst"}, &a)
	s.mustCall(t, "upload_file", map[string]any{"name": "b.md", "text": "# B\nsecond"}, &b)

	list, err := s.ListPrompts(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Prompts {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"compare_files", "summarize_file"}) {
		t.Errorf("prompts = %v", names)
	}

	embedded := func(res *mcp.GetPromptResult) []string {
		var out []string
		for _, m := range res.Messages {
			if er, ok := m.Content.(*mcp.EmbeddedResource); ok {
				out = append(out, er.Resource.URI+"="+er.Resource.Text)
			}
		}
		return out
	}
	res, err := s.GetPrompt(t.Context(), &mcp.GetPromptParams{Name: "summarize_file", Arguments: map[string]string{"file_id": a.File.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if got := embedded(res); !slices.Equal(got, []string{a.File.URI + "=# A\nfirst"}) {
		t.Errorf("summarize_file embeds %v", got)
	}
	res, err = s.GetPrompt(t.Context(), &mcp.GetPromptParams{Name: "compare_files", Arguments: map[string]string{"file_id_a": a.File.ID, "file_id_b": b.File.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if got := embedded(res); !slices.Equal(got, []string{a.File.URI + "=# A\nfirst", b.File.URI + "=# B\nsecond"}) {
		t.Errorf("compare_files embeds %v", got)
	}
	_, err = s.GetPrompt(t.Context(), &mcp.GetPromptParams{Name: "summarize_file", Arguments: map[string]string{"file_id": "f_nosuchfile"}})
	if err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("prompt for an unknown file: %v", err)
	}
}

func TestResourceNotifications(t *testing.T) {
	e := newEnv(t, nil)
	watcher := e.connect(keyRead)
	other := e.connect(keyRead)
	actor := e.connect(keyRW)

	var up uploadOut
	actor.mustCall(t, "upload_file", map[string]any{"name": "watched.txt", "text": "watch me"}, &up)
	// Everyone hears that the list changed.
	for _, s := range []*session{watcher, other} {
		s.waitFor(t, "list_changed after an upload", func(_ []string, changed int) bool { return changed > 0 })
	}
	if err := watcher.Subscribe(t.Context(), &mcp.SubscribeParams{URI: up.File.URI}); err != nil {
		t.Fatal(err)
	}
	actor.mustCall(t, "delete_file", map[string]any{"id": up.File.ID}, nil)
	watcher.waitFor(t, "resources/updated after the delete", func(u []string, _ int) bool { return slices.Contains(u, up.File.URI) })

	// A change made outside MCP (the HTTP API, another instance) comes
	// through the event log too.
	if _, err := e.svc.Restore(t.Context(), up.File.ID); err != nil {
		t.Fatal(err)
	}
	watcher.waitFor(t, "resources/updated after the restore", func(u []string, _ int) bool { return len(u) == 2 && u[1] == up.File.URI })

	// Only the subscriber hears about the file.
	other.mu.Lock()
	defer other.mu.Unlock()
	if len(other.updated) != 0 {
		t.Errorf("an unsubscribed session got resources/updated for %v", other.updated)
	}
}

func TestHTTPAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name, key string
		status    int
		code      string
	}{
		{"no key", "", http.StatusUnauthorized, filehub.EUNAUTHORIZED},
		{"unknown key", "fhk_nope", http.StatusUnauthorized, filehub.EUNAUTHORIZED},
		{"revoked key", e.keys[keyRevoked], http.StatusUnauthorized, filehub.EUNAUTHORIZED},
		{"metrics key", e.keys[keyMetrics], http.StatusForbidden, filehub.EFORBIDDEN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), "POST", e.http.URL+"/v1/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			resp, err := e.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p struct{ Code string }
			body, _ := io.ReadAll(resp.Body)
			_ = json.Unmarshal(body, &p)
			if resp.StatusCode != tc.status || p.Code != tc.code || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%d %s %s, want %d with code %s", resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status, tc.code)
			}
		})
	}
}

// TestFailedAuthenticationsLimited: /v1/mcp charges bad keys to the
// authenticator's per-address limiter, like the HTTP API.
func TestFailedAuthenticationsLimited(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 100 {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", e.http.URL+"/v1/mcp", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer fhk_guess")
		resp, err := e.http.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			return
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, resp.StatusCode)
		}
	}
	t.Error("100 bad keys in a row were never limited")
}

func TestSessionBoundToKey(t *testing.T) {
	e := newEnv(t, nil)
	s := e.connect(keyRead)
	req, _ := http.NewRequestWithContext(t.Context(), "POST", e.http.URL+"/v1/mcp",
		strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"delete_file","arguments":{"id":"f_x"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", s.ID())
	req.Header.Set("Authorization", "Bearer "+e.keys[keyAdmin])
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("another key on the session: %d, want 403", resp.StatusCode)
	}
}

func TestSessionLimit(t *testing.T) {
	e := newEnv(t, func(c *mcpserver.Config) { c.MaxSessions = 1 })
	e.connect(keyRead)
	if _, err := e.tryConnect(keyRead); err == nil || !strings.Contains(err.Error(), "503") && !strings.Contains(err.Error(), "Service Unavailable") {
		t.Errorf("second session: %v, want 503", err)
	}
	if got := metricValue(t, e, "filehub_mcp_refused_requests_total", "reason", "sessions"); got < 1 {
		t.Errorf("refused sessions metric = %v", got)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	s := e.connect(keyRead)
	s.mustFail(t, "get_file", map[string]any{"id": "f_x"}, "not_found")
	s.mustCall(t, "list_files", nil, nil)
	s.mustFail(t, "upload_file", map[string]any{"name": "x", "text": "x"}, "forbidden")
	for _, tc := range []struct{ tool, result string }{
		{"get_file", "not_found"}, {"list_files", "ok"}, {"upload_file", "forbidden"},
	} {
		if got := metricValue(t, e, "filehub_mcp_tool_calls_total", "tool", tc.tool, "result", tc.result); got != 1 {
			t.Errorf("tool_calls_total{%s,%s} = %v, want 1", tc.tool, tc.result, got)
		}
	}
	if n, err := testutil.GatherAndCount(e.reg, "filehub_mcp_sessions"); err != nil || n != 1 {
		t.Errorf("sessions gauge: %d, %v", n, err)
	}
}

// metricValue returns the value of the counter name with the given label
// pairs, 0 if it has not been counted.
func metricValue(t *testing.T, e *env, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestIdleSessionClosed(t *testing.T) {
	e := newEnv(t, func(c *mcpserver.Config) { c.SessionIdleTimeout = 300 * time.Millisecond })
	s := e.connect(keyRead)
	s.mustCall(t, "list_files", nil, nil)
	deadline := time.Now().Add(20 * time.Second)
	for metricGauge(t, e, "filehub_mcp_sessions") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the idle session is still open")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: "list_files"}); err == nil {
		t.Error("a call on the closed session succeeded")
	}
}

func metricGauge(t *testing.T, e *env, name string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

func TestLargeRequestsBounded(t *testing.T) {
	e := newEnv(t, func(c *mcpserver.Config) { c.MaxLargeRequests = 1 })
	s := e.connect(keyRW)
	post := func(body io.Reader, length int64) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", e.http.URL+"/v1/mcp", body)
		req.ContentLength = length
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", s.ID())
		req.Header.Set("Mcp-Protocol-Version", s.InitializeResult().ProtocolVersion)
		req.Header.Set("Authorization", "Bearer "+e.keys[keyRW])
		return e.http.Client().Do(req)
	}
	// A large request whose body is still arriving holds the one slot.
	call := fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"upload_file","arguments":{"name":"big.txt","text":%q}}}`, strings.Repeat("x", 100<<10))
	pr, pw := io.Pipe()
	first := make(chan *http.Response, 1)
	go func() {
		resp, err := post(pr, int64(len(call)))
		if err != nil {
			t.Errorf("first request: %v", err)
		}
		first <- resp
	}()
	if _, err := pw.Write([]byte(call[:1000])); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for metricGauge(t, e, "filehub_mcp_large_requests") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first large request never took its slot")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := post(strings.NewReader(call), int64(len(call)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second large request: %d, want 503 with Retry-After", resp.StatusCode)
	}
	// Small requests are not held up.
	s.mustCall(t, "list_files", nil, nil)
	if _, err := pw.Write([]byte(call[1000:])); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if r := <-first; r != nil {
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			t.Errorf("first large request: %d", r.StatusCode)
		}
	}
}
