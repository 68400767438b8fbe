package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/filehub/filehub/client"
	main "github.com/filehub/filehub/cmd/filehub"
	"github.com/filehub/filehub/internal/nodetest"
)

// mcpKeys starts the daemon and creates a read-write and a read-only key.
func mcpKeys(t *testing.T) (srv *Server, rw, ro string) {
	t.Helper()
	dataDir := t.TempDir()
	srv = MustRunMain(t, dataDir, map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	env := map[string]string{"FILEHUB_DATA_DIR": dataDir}
	rw = strings.TrimSpace(MustCLI(t, env, "keys", "create", "--name", "mcp-rw", "--scope", "read,write").Stdout)
	ro = strings.TrimSpace(MustCLI(t, env, "keys", "create", "--name", "mcp-ro", "--scope", "read").Stdout)
	return srv, rw, ro
}

// runTypeScriptMCP runs e2e/mcp-client.mjs (the official TypeScript SDK)
// in the given mode and returns what it reported.
func runTypeScriptMCP(t *testing.T, mode string, extraEnv ...string) map[string]any {
	t.Helper()
	srv, rw, ro := mcpKeys(t)
	env := append([]string{"MCP_MODE=" + mode, "FILEHUB_SERVER=" + srv.URL, "FILEHUB_RW_KEY=" + rw, "FILEHUB_READ_KEY=" + ro}, extraEnv...)
	out := nodetest.Run(t, 3*time.Minute, env, "mcp-client.mjs")
	t.Logf("mcp-client.mjs (%s): %s", mode, out)
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("mcp-client.mjs printed %q: %v", out, err)
	}
	for _, k := range []string{"readBack", "badInput"} {
		if got[k] != true {
			t.Errorf("%s: %s not confirmed: %s", mode, k, out)
		}
	}
	if got["updated"] == nil || got["readOnlyRefusal"] == nil {
		t.Errorf("%s: notification or refusal missing: %s", mode, out)
	}
	return got
}

// TestMCPTypeScriptStreamableHTTP: the official TypeScript SDK against
// /v1/mcp on the real daemon, with API keys.
func TestMCPTypeScriptStreamableHTTP(t *testing.T) {
	runTypeScriptMCP(t, "http")
}

// TestMCPTypeScriptStdio: the official TypeScript SDK starting the real
// binary's `filehub mcp`, which talks to the daemon over HTTP.
func TestMCPTypeScriptStdio(t *testing.T) {
	nodetest.Require(t)
	bin := buildBinary(t)
	runTypeScriptMCP(t, "stdio", "FILEHUB_BIN="+bin)
}

// TestMCPStdioGo drives `filehub mcp` with the Go SDK's client: scopes
// probed from the server select the tools, content round-trips, a change
// made over the HTTP API reaches a resource subscriber through the event
// stream, and a bad key stops the command with a clear error.
func TestMCPStdioGo(t *testing.T) {
	bin := buildBinary(t)
	srv, rw, ro := mcpKeys(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	connect := func(key string, updated chan<- string) *mcp.ClientSession {
		cmd := exec.Command(bin, "mcp", "--server", srv.URL)
		cmd.Env = []string{"FILEHUB_KEY=" + key}
		c := mcp.NewClient(&mcp.Implementation{Name: "filehub-test", Version: "1"}, &mcp.ClientOptions{
			ResourceUpdatedHandler: func(_ context.Context, r *mcp.ResourceUpdatedNotificationRequest) {
				if updated != nil {
					updated <- r.Params.URI
				}
			},
		})
		cs, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
		if err != nil {
			t.Fatalf("connect to filehub mcp: %v", err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	names := func(cs *mcp.ClientSession) []string {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, tl := range res.Tools {
			n = append(n, tl.Name)
		}
		slices.Sort(n)
		return n
	}

	updated := make(chan string, 10)
	cs := connect(rw, updated)
	if got, want := names(cs), []string{"delete_file", "get_file", "list_files", "push_to_provider", "read_file", "restore_file", "storage_stats", "upload_file"}; !slices.Equal(got, want) {
		t.Errorf("tools of a read-write key: %v, want %v", got, want)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "upload_file", Arguments: map[string]any{"name": "stdio.txt", "text": "over stdio"}})
	if err != nil || res.IsError {
		t.Fatalf("upload_file: %v %+v", err, res)
	}
	var up struct {
		File struct{ ID, URI string } `json:"file"`
	}
	b, _ := json.Marshal(res.StructuredContent)
	json.Unmarshal(b, &up)
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: up.File.URI})
	if err != nil || rr.Contents[0].Text != "over stdio" {
		t.Fatalf("read back: %+v %v", rr, err)
	}
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: up.File.URI}); err != nil {
		t.Fatal(err)
	}
	// Deleted by someone else, over the HTTP API.
	if _, err := client.New(srv.URL, testKey).Delete(ctx, up.File.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case uri := <-updated:
		if uri != up.File.URI {
			t.Errorf("resources/updated for %s, want %s", uri, up.File.URI)
		}
	case <-ctx.Done():
		t.Fatal("no resources/updated after the delete")
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "storage_stats"})
	if err != nil || res.IsError {
		t.Fatalf("storage_stats: %v %+v", err, res)
	}
	// Over stdio the totals come from GET /v1/stats: the trash is counted.
	var st struct {
		Files      int64  `json:"files"`
		TrashFiles *int64 `json:"trash_files"`
	}
	b, _ = json.Marshal(res.StructuredContent)
	json.Unmarshal(b, &st)
	if st.Files != 0 || st.TrashFiles == nil || *st.TrashFiles != 1 {
		t.Errorf("storage_stats over stdio = %s, want no live file and one in the trash", b)
	}

	read := connect(ro, nil)
	if got, want := names(read), []string{"get_file", "list_files", "read_file", "storage_stats"}; !slices.Equal(got, want) {
		t.Errorf("tools of a read key: %v, want %v", got, want)
	}
	res, err = read.CallTool(ctx, &mcp.CallToolParams{Name: "upload_file", Arguments: map[string]any{"name": "x.txt", "text": "x"}})
	if err != nil || !res.IsError {
		t.Errorf("upload_file with a read key: %v %+v, want a tool error", err, res)
	}

	// An admin key: the admin tools, and what the HTTP API cannot do is a
	// clear tool error.
	admin := connect(testKey, nil)
	if got := names(admin); !slices.Contains(got, "cleanup_preview") {
		t.Errorf("tools of an admin key: %v", got)
	}
	res, err = admin.CallTool(ctx, &mcp.CallToolParams{Name: "cleanup_preview"})
	if err != nil || res.IsError {
		t.Errorf("cleanup_preview over stdio: %v %+v", err, res)
	}
	res, err = admin.CallTool(ctx, &mcp.CallToolParams{Name: "list_files", Arguments: map[string]any{"include_deleted": true}})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "include_deleted is not available over stdio") {
		t.Errorf("include_deleted over stdio: %v %+v", err, res)
	}

	// A bad key: the command says so on stderr and exits 1.
	cmd := exec.CommandContext(ctx, bin, "mcp", "--server", srv.URL)
	cmd.Env = []string{"FILEHUB_KEY=fhk_wrong"}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "unknown API key") {
		t.Errorf("filehub mcp with a bad key: %v, %s", err, out)
	}
}

// TestMCPSessionsDoNotHoldShutdown: a client connected to /v1/mcp (with its
// event stream open) does not keep the daemon's graceful shutdown waiting.
func TestMCPSessionsDoNotHoldShutdown(t *testing.T) {
	srv := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, func(c *main.ServeConfig) {
		c.ShutdownTimeout = time.Hour // a held shutdown would hang the test
	})
	c := mcp.NewClient(&mcp.Implementation{Name: "filehub-test", Version: "1"}, nil)
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint:   srv.URL + "/v1/mcp",
		HTTPClient: &http.Client{Transport: bearerTransport(testKey)},
		MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.ListTools(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("graceful shutdown still waiting for the MCP session")
	}
}

// bearerTransport sends every request with the API key.
func bearerTransport(key string) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+key)
		return http.DefaultTransport.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
