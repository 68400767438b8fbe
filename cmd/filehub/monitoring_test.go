package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/internal/fakeprovider"
	"github.com/filehub/filehub/internal/nodetest"
)

var (
	dashboardFile = filepath.Join("..", "..", "deploy", "grafana", "filehub.json")
	alertsFile    = filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml")
	alertsTests   = filepath.Join("..", "..", "deploy", "prometheus", "alerts_test.yml")
)

// notFromFilehub are the metric names the rules may use that Prometheus
// records itself rather than scraping them from filehub.
var notFromFilehub = []string{"up"}

// dashboardExprs returns every PromQL expression of the Grafana dashboard:
// the "expr" of every target, at any depth, and the query variables.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
					exprs = append(exprs, strings.TrimSuffix(strings.TrimPrefix(s, "label_values("), ", instance)"))
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(dash)
	return exprs
}

// alertExprs returns the expr of every rule in alerts.yml. It reads only
// the expr fields (plain or "|" block scalars); promtool checks the whole
// file's YAML and PromQL (TestPrometheusRules).
func alertExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	block, indent := false, 0
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if block {
			if ind := len(line) - len(trimmed); trimmed != "" && ind > indent {
				exprs[len(exprs)-1] += " " + trimmed
				continue
			}
			block = false
		}
		if v, ok := strings.CutPrefix(trimmed, "expr:"); ok {
			v = strings.TrimSpace(v)
			exprs = append(exprs, v)
			if v == "|" || v == ">" {
				exprs[len(exprs)-1] = ""
				block, indent = true, len(line)-len(trimmed)
			}
		}
	}
	return exprs
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// metricNames returns the metric names an expression selects: identifiers
// that are not functions or aggregations (followed by "("), keywords,
// label names (inside {…} or a grouping) or parts of numbers.
func metricNames(expr string) []string {
	e := promString.ReplaceAllString(expr, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRange.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringSubmatchIndex(e, -1) {
		if loc[2] >= 0 {
			continue // a function or an aggregation
		}
		if loc[0] > 0 && strings.ContainsRune("0123456789.", rune(e[loc[0]-1])) {
			continue // the exponent of a number
		}
		name := e[loc[0]:loc[1]]
		if slices.Contains(promKeywords, strings.ToLower(name)) || slices.Contains(names, name) {
			continue
		}
		names = append(names, name)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want []string
	}{
		{`up{job="filehub"} == 0`, []string{"up"}},
		{`histogram_quantile(0.99, sum by (instance, le) (rate(a_bucket{x=~"b|c"}[5m]))) > 5 or sum(increase(b_total[10m])) > 0`, []string{"a_bucket", "b_total"}},
		{`time() - c_seconds > 3 * 86400 and c_seconds > 0`, []string{"c_seconds"}},
		{`x / clamp_min(sum without (le) (y{instance=~"$instance"}), 1e-9)`, []string{"x", "y"}},
		{`sum by (code) (rate(z{code=~"5.."}[$__rate_interval])) / on (instance) group_left w`, []string{"z", "w"}},
	} {
		if got := metricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// TestDashboardAndAlertsUseExportedMetrics parses the Grafana dashboard
// and the alert rules, and checks that a running filehub, after some
// traffic of every kind, exports every metric their PromQL names: a
// renamed or removed metric fails here instead of leaving an empty panel
// or an alert that can never fire.
func TestDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	exprs := append(dashboardExprs(t), alertExprs(t)...)
	if len(exprs) < 50 {
		t.Fatalf("found %d expressions in the dashboard and the rules: the extraction is broken", len(exprs))
	}
	used := map[string][]string{}
	for _, e := range exprs {
		for _, n := range metricNames(e) {
			used[n] = append(used[n], e)
		}
	}
	if len(used) < 30 {
		t.Fatalf("found %d metric names: the extraction is broken", len(used))
	}

	reg := exportedAfterTraffic(t)
	for name, in := range used {
		if slices.Contains(notFromFilehub, name) {
			continue
		}
		if !reg.has(name) {
			t.Errorf("metric %s is not exported by filehub; used in %q", name, in[0])
		}
	}
}

// exported is the set of metric families a Gather returned.
type exported map[string]dto.MetricType

func (ex exported) has(name string) bool {
	if _, ok := ex[name]; ok {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if typ, ok := ex[base]; ok && (typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_SUMMARY) {
				return true
			}
		}
	}
	return false
}

// exportedAfterTraffic runs filehub with a provider, makes every kind of
// traffic that creates labelled series (uploads, a deduplicated upload,
// provider pushes and a provider error, a cleanup run, a WebSocket session
// with a request, acks and a resume) and returns the metric families.
func exportedAfterTraffic(t *testing.T) exported {
	t.Helper()
	fp := fakeprovider.New(t, "sk-provider")
	s := MustRunMain(t, t.TempDir(), map[string]string{
		"FILEHUB_BOOTSTRAP_KEY":            testKey,
		"FILEHUB_PROVIDER_TEST_API_KEY":    "sk-provider",
		"FILEHUB_PROVIDER_TEST_BASE_URL":   fp.URL,
		"FILEHUB_PROVIDER_TEST_PURPOSE":    "file-extract",
		"FILEHUB_PROVIDER_TEST_FILE_QUOTA": "100",
	}, nil)
	ctx := context.Background()
	c := NewClient(t, s.URL, testKey)
	up, err := c.Upload(ctx, "a.txt", strings.NewReader("monitoring"), -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Upload(ctx, "b.txt", strings.NewReader("monitoring"), -1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, up.ID, "test"); err != nil {
		t.Fatal(err)
	}
	other, err := c.Upload(ctx, "c.txt", strings.NewReader("refused by the provider"), -1)
	if err != nil {
		t.Fatal(err)
	}
	fp.Inject("POST /files", fakeprovider.Fault{Status: 400})
	if _, err := c.Push(ctx, other.ID, "test"); err == nil {
		t.Fatal("a push the provider refused succeeded")
	}
	if _, err := c.CleanupRun(ctx, api.CleanupRunRequest{}); err != nil {
		t.Fatal(err)
	}
	wsTraffic(t, s.URL)

	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ex := exported{}
	for _, mf := range mfs {
		ex[mf.GetName()] = mf.GetType()
	}
	return ex
}

// wsTraffic opens a WebSocket session, subscribes to events (acking what
// arrives, so ack latency is observed), drops the connection and resumes
// the session.
func wsTraffic(t *testing.T, base string) {
	t.Helper()
	url := "ws" + strings.TrimPrefix(base, "http") + "/v1/ws"
	d := websocket.Dialer{Subprotocols: []string{"filehub.v1"}, HandshakeTimeout: 10 * time.Second}
	hdr := http.Header{"Authorization": {"Bearer " + testKey}}
	dial := func() *websocket.Conn {
		conn, resp, err := d.Dial(url, hdr)
		if err != nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		resp.Body.Close()
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		return conn
	}
	type frame struct {
		Type        string `json:"type"`
		Seq         int64  `json:"seq"`
		SessionID   string `json:"session_id"`
		ResumeToken string `json:"resume_token"`
		Resumed     bool   `json:"resumed"`
	}
	read := func(conn *websocket.Conn) []frame {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var fs []frame
		for line := range bytes.SplitSeq(msg, []byte("\n")) {
			var f frame
			if err := json.Unmarshal(line, &f); err != nil {
				t.Fatalf("frame %q: %v", line, err)
			}
			fs = append(fs, f)
		}
		return fs
	}
	send := func(conn *websocket.Conn, v string) {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}

	conn := dial()
	send(conn, `{"type":"hello"}`)
	welcome := read(conn)[0]
	if welcome.Type != "welcome" {
		t.Fatalf("got %q, want welcome", welcome.Type)
	}
	send(conn, `{"type":"req","seq":1,"id":"s","method":"events.subscribe","params":{"after":0}}`)
	// The res and the uploads' events: acknowledge until at least the res
	// and one event arrived.
	var last int64
	var sawRes, sawEvent bool
	for !sawRes || !sawEvent {
		for _, f := range read(conn) {
			sawRes = sawRes || f.Type == "res"
			sawEvent = sawEvent || f.Type == "event"
			last = max(last, f.Seq)
		}
		send(conn, `{"type":"ack","ack":`+jsonInt(last)+`}`)
	}
	conn.Close()

	conn = dial()
	defer conn.Close()
	send(conn, `{"type":"hello","session_id":"`+welcome.SessionID+`","resume_token":"`+welcome.ResumeToken+`","last_seq":`+jsonInt(last)+`}`)
	if w := read(conn)[0]; w.Type != "welcome" || !w.Resumed {
		t.Fatalf("resume: %+v", w)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestGrafanaDashboardShape checks what Grafana needs to import the file:
// unique panel ids, a data source on every query panel, positions on the
// 24-column grid, and the template variables the queries use.
func TestGrafanaDashboardShape(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int             `json:"id"`
			Type       string          `json:"type"`
			Title      string          `json:"title"`
			Datasource json.RawMessage `json:"datasource"`
			GridPos    struct{ H, W, X, Y int }
			Targets    []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Error("the dashboard needs a title and a uid")
	}
	var vars []string
	for _, v := range dash.Templating.List {
		vars = append(vars, v.Name)
	}
	for _, v := range []string{"datasource", "instance"} {
		if !slices.Contains(vars, v) {
			t.Errorf("no template variable %q", v)
		}
	}
	ids := map[int]bool{}
	queries := 0
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W < 1 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H < 1 {
			t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Datasource) == 0 || len(p.Targets) == 0 {
			t.Errorf("panel %q has no data source or no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			if tg.Expr == "" || tg.RefID == "" {
				t.Errorf("panel %q: a target without expr or refId", p.Title)
			}
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) && !strings.Contains(tg.Expr, "time()") {
				t.Errorf("panel %q ignores the instance variable: %s", p.Title, tg.Expr)
			}
		}
	}
	if queries < 40 {
		t.Errorf("%d queries: the dashboard is incomplete", queries)
	}
}

// TestPrometheusRules runs promtool (Debian's prometheus package) on the
// alert rules: syntax and PromQL (check rules), and the unit tests in
// alerts_test.yml that make each alert fire on synthetic series (test
// rules). Skipped without promtool, except in CI.
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if nodetest.InCI() {
			t.Fatal("promtool is not installed (CI must check the alert rules: apt-get install -y prometheus)")
		}
		t.Skip("promtool is not installed: skipping the alert rule check")
	}
	for _, args := range [][]string{{"check", "rules", alertsFile}, {"test", "rules", alertsTests}} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, promtool, args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
