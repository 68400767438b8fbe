package mcpserver_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/filehub/filehub/auth"
	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/mcpserver"
)

// BenchmarkGetFileMCPvsHTTP measures get_file over Streamable HTTP against
// its baseline, GET /v1/files/{id} of the HTTP API, on the same stores and
// key, one client each, sequential calls, in alternating rounds of b.N/rounds
// calls each. It reports both rates (medians over the rounds) and the median
// of the per-round ratios; docs/benchmarks.md has the command and figures.
func BenchmarkGetFileMCPvsHTTP(b *testing.B) {
	e := newBenchEnv(b)
	const rounds = 5
	per := max(1, b.N/rounds)
	var mcpRates, httpRates, ratios, rawRates []float64
	b.ResetTimer()
	for range rounds {
		start := time.Now()
		for range per {
			res, err := e.session.CallTool(b.Context(), &mcp.CallToolParams{Name: "get_file", Arguments: map[string]any{"id": e.id}})
			if err != nil || res.IsError {
				b.Fatalf("get_file: %v %v", err, res)
			}
		}
		m := float64(per) / time.Since(start).Seconds()
		start = time.Now()
		for range per {
			req, _ := http.NewRequestWithContext(b.Context(), "GET", e.srv.URL+"/v1/files/"+e.id, nil)
			req.Header.Set("Authorization", "Bearer "+e.key)
			resp, err := e.hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("GET: %d", resp.StatusCode)
			}
		}
		h := float64(per) / time.Since(start).Seconds()
		start = time.Now()
		for i := range per {
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"get_file","arguments":{"id":%q}}}`, 1000000+i, e.id)
			req, _ := http.NewRequestWithContext(b.Context(), "POST", e.srv.URL+"/v1/mcp", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+e.key)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", e.session.ID())
			req.Header.Set("Mcp-Protocol-Version", e.session.InitializeResult().ProtocolVersion)
			resp, err := e.hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			rb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(rb), `"structuredContent"`) {
				b.Fatalf("raw tools/call: %d %s", resp.StatusCode, rb)
			}
		}
		r := float64(per) / time.Since(start).Seconds()
		mcpRates, httpRates, ratios = append(mcpRates, m), append(httpRates, h), append(ratios, m/h)
		rawRates = append(rawRates, r)
	}
	b.StopTimer()
	b.ReportMetric(median(mcpRates), "mcp-calls/s")
	b.ReportMetric(median(httpRates), "http-gets/s")
	b.ReportMetric(median(ratios), "mcp/http")
	b.ReportMetric(median(rawRates), "raw-mcp-posts/s")
	b.Logf("rounds of %d: mcp %s, http %s, ratio %s, raw mcp posts %s", per, fmtRates(mcpRates), fmtRates(httpRates), fmtRates(ratios), fmtRates(rawRates))
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtRates(v []float64) string {
	var parts []string
	for _, x := range v {
		parts = append(parts, fmt.Sprintf("%.3g", x))
	}
	return strings.Join(parts, " ")
}

type benchEnv struct {
	srv     *httptest.Server
	hc      *http.Client
	session *mcp.ClientSession
	key, id string
}

// newBenchEnv serves the HTTP API and /v1/mcp on one listener, as the
// daemon does, with one file stored.
func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	e := newEnvTB(b, func(c *mcpserver.Config) { c.Logger = nil })
	api := httpapi.New(e.svc, e.meta, httpapi.Config{})
	mux := http.NewServeMux()
	mux.Handle("/v1/mcp", e.srv.HTTPHandler(mcpserver.FromAuthenticator(auth.New(e.meta, auth.Config{}))))
	mux.Handle("/", api)
	srv := httptest.NewServer(mux)
	up, err := e.svc.Upload(b.Context(), strings.NewReader("benchmark me"), "bench.txt", "k_bench")
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	cs, err := c.Connect(b.Context(), &mcp.StreamableClientTransport{
		Endpoint:   srv.URL + "/v1/mcp",
		HTTPClient: &http.Client{Transport: bearer{e.keys[keyRead], &http.Transport{MaxIdleConnsPerHost: 4}}},
		MaxRetries: -1,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cs.Close()
		srv.Close()
		hc.CloseIdleConnections()
	})
	return &benchEnv{srv: srv, hc: hc, session: cs, key: e.keys[keyRead], id: up.ID}
}
