package main_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/cleanup"
	main "github.com/filehub/filehub/cmd/filehub"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/wsclient"
	"github.com/filehub/filehub/wsserver"
)

// runCleanupServer starts a server whose grace periods are so short that
// anything deleted or planted is due at the next run, with no scheduled
// runs: the tests trigger every run themselves.
func runCleanupServer(t *testing.T, dataDir string) *Server {
	t.Helper()
	return MustRunMain(t, dataDir, map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, func(c *main.ServeConfig) {
		c.TrashGrace = time.Nanosecond
		c.BlobGrace = time.Nanosecond
		c.CleanupInterval = 0
	})
}

// plantOrphan commits content as an object with no blob record, as a crash
// between storing an upload and recording it would, and returns its sum.
func plantOrphan(t *testing.T, dataDir, content string) string {
	t.Helper()
	ctx := context.Background()
	store, err := localfs.Open(dataDir, localfs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	if _, err := io.WriteString(st, content); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, sum([]byte(content))); err != nil {
		t.Fatal(err)
	}
	return sum([]byte(content))
}

func objectExists(t *testing.T, dataDir, sum string) bool {
	t.Helper()
	store, err := localfs.Open(dataDir, localfs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Stat(context.Background(), sum)
	return err == nil
}

// uploadFile stores content through the CLI and returns the record.
func uploadFile(t *testing.T, env map[string]string, name, content string) uploaded {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	var up uploaded
	if err := json.Unmarshal([]byte(MustCLI(t, env, "upload", "--json", p).Stdout), &up); err != nil {
		t.Fatal(err)
	}
	return up
}

// runFinished reports whether cleanup run id has ended, whatever its status.
func runFinished(t *testing.T, env map[string]string, id int64) bool {
	t.Helper()
	r := CLI(t, env, nil, "cleanup", "report", "--run", fmt.Sprint(id), "--format", "json")
	if r.Code != main.ExitOK {
		return false
	}
	return mustReport(t, r.Stdout).Status != filehub.RunRunning
}

func mustReport(t *testing.T, out string) *cleanup.Report {
	t.Helper()
	var r cleanup.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	return &r
}

// target returns the target of kind k named name, or fails.
func target(t *testing.T, r *cleanup.Report, k cleanup.Kind, name string) cleanup.Target {
	t.Helper()
	kr := r.Kinds[k]
	if kr != nil {
		for _, tg := range kr.Targets {
			if tg.FileID == name || tg.SHA256 == name || tg.Name == name {
				return tg
			}
		}
	}
	t.Fatalf("run %d: no %s target %s in %+v", r.RunID, k, name, kr)
	return cleanup.Target{}
}

// watcher runs "filehub watch --json" until stopped.
type watcher struct {
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

func startWatch(t *testing.T, env map[string]string) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{out: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		w.done <- main.Execute(ctx, []string{"watch", "--json"}, main.Env{
			Stdout: w.out, Stderr: io.Discard, Getenv: func(k string) string { return env[k] },
		})
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *watcher) stop() {
	if w.cancel != nil {
		w.cancel()
		<-w.done
		w.cancel = nil
	}
}

// waitEvents waits until the watcher printed every event type in want, and
// returns the events; it fails after a generous deadline.
func (w *watcher) waitEvents(t *testing.T, want ...string) []filehub.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var evs []filehub.Event
		var types []string
		for line := range strings.Lines(w.out.String()) {
			var ev filehub.Event
			if json.Unmarshal([]byte(line), &ev) == nil {
				evs = append(evs, ev)
				types = append(types, ev.Type)
			}
		}
		missing := slices.DeleteFunc(slices.Clone(want), func(s string) bool { return slices.Contains(types, s) })
		if len(missing) == 0 {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch did not see %v; printed %q", missing, w.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCleanupEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	s := runCleanupServer(t, dataDir)
	env := clientEnv(s, testKey)

	kept := uploadFile(t, env, "kept.txt", "kept content")
	trashed := uploadFile(t, env, "trashed.txt", "trashed content")
	MustCLI(t, env, "rm", trashed.ID)
	orphan := plantOrphan(t, dataDir, "an orphan object")

	// A dry run lists the targets and changes nothing.
	dry := mustReport(t, MustCLI(t, env, "cleanup", "run", "--dry-run", "--json").Stdout)
	if !dry.DryRun || dry.Status != filehub.RunOK {
		t.Fatalf("dry run = %+v", dry)
	}
	if tg := target(t, dry, cleanup.KindTrash, trashed.ID); tg.Action != cleanup.ActionWouldDelete {
		t.Errorf("dry run trash target = %+v", tg)
	}
	if tg := target(t, dry, cleanup.KindOrphanObject, orphan); tg.Action != cleanup.ActionWouldDelete {
		t.Errorf("dry run orphan target = %+v", tg)
	}
	if !objectExists(t, dataDir, orphan) {
		t.Fatal("the dry run deleted the orphan")
	}
	MustCLI(t, env, "restore", trashed.ID) // still restorable: not purged
	MustCLI(t, env, "rm", trashed.ID)

	// The real run, watched: cleanup.started, file.purged and
	// cleanup.finished reach WebSocket subscribers.
	w := startWatch(t, env)
	real := mustReport(t, MustCLI(t, env, "cleanup", "run", "--json").Stdout)
	if real.DryRun || real.Status != filehub.RunOK || real.Trigger != "api" {
		t.Fatalf("run = %+v", real)
	}
	if tg := target(t, real, cleanup.KindTrash, trashed.ID); tg.Action != cleanup.ActionDeleted {
		t.Errorf("trash target = %+v", tg)
	}
	if tg := target(t, real, cleanup.KindOrphanObject, orphan); tg.Action != cleanup.ActionDeleted {
		t.Errorf("orphan target = %+v", tg)
	}
	if kr := real.Kinds[cleanup.KindOrphanObject]; kr.Deleted != 1 || kr.BytesFreed != int64(len("an orphan object")) {
		t.Errorf("orphan_object = %+v", kr)
	}
	if objectExists(t, dataDir, orphan) {
		t.Error("the orphan survived the run")
	}
	MustFail(t, env, main.ExitFailure, "not found", "restore", trashed.ID)
	MustCLI(t, env, "get", kept.ID, "-o", filepath.Join(t.TempDir(), "kept.txt"))

	evs := w.waitEvents(t, filehub.EventCleanupStarted, filehub.EventFilePurged, filehub.EventCleanupFinished)
	w.stop()
	for _, ev := range evs {
		switch ev.Type {
		case filehub.EventFilePurged:
			if ev.File == nil || ev.File.ID != trashed.ID {
				t.Errorf("file.purged event = %+v", ev)
			}
		case filehub.EventCleanupStarted, filehub.EventCleanupFinished:
			if ev.Run == nil || ev.Run.ID != real.RunID {
				t.Errorf("%s event for run %+v, want %d (dry runs have none)", ev.Type, ev.Run, real.RunID)
			}
		}
	}

	// Reports in every format.
	r := MustCLI(t, env, "cleanup", "report", "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(r.Stdout)).ReadAll()
	if err != nil {
		t.Fatalf("csv %q: %v", r.Stdout, err)
	}
	var found bool
	for _, row := range rows[1:] {
		if row[0] == fmt.Sprint(real.RunID) && row[4] == "trash" && row[9] == trashed.ID && row[11] == cleanup.ActionDeleted {
			found = true
		}
	}
	if rows[0][0] != "run_id" || !found {
		t.Errorf("csv report lacks the purge of %s:\n%s", trashed.ID, r.Stdout)
	}
	r = MustCLI(t, env, "cleanup", "report", "--format", "markdown", "--run", fmt.Sprint(real.RunID))
	for _, want := range []string{fmt.Sprintf("## Cleanup run %d", real.RunID), "| trash | 1 | 1 | 1 |", "`" + orphan + "`"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("markdown report lacks %q:\n%s", want, r.Stdout)
		}
	}
	r = MustCLI(t, env, "cleanup", "report", "--format", "json", "--last", "2")
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 2 || mustReport(t, lines[0]).RunID != real.RunID || mustReport(t, lines[1]).RunID != dry.RunID {
		t.Errorf("report --last 2 --format json = %q", r.Stdout)
	}
	r = MustCLI(t, env, "cleanup", "report")
	for _, want := range []string{"KIND", "orphan_object", orphan, trashed.ID, "deleted"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("table report lacks %q:\n%s", want, r.Stdout)
		}
	}
	MustFail(t, env, main.ExitFailure, "not found", "cleanup", "report", "--run", "999")
	MustFail(t, env, main.ExitUsage, "--format", "cleanup", "report", "--format", "xml")
	MustFail(t, env, main.ExitUsage, "either --run or --last", "cleanup", "report", "--run", "1", "--last", "2")

	// Settings, changed without a restart.
	r = MustCLI(t, env, "cleanup", "config", "set", "blob_grace=1h")
	if !strings.Contains(r.Stdout, "blob_grace") || !strings.Contains(r.Stdout, "1h0m0s") {
		t.Errorf("config set printed %q", r.Stdout)
	}
	var st cleanup.Settings
	if err := json.Unmarshal([]byte(MustCLI(t, env, "cleanup", "config", "show", "--json").Stdout), &st); err != nil || time.Duration(st.BlobGrace) != time.Hour {
		t.Errorf("config show --json = %+v, %v; want blob_grace 1h", st, err)
	}
	MustFail(t, env, main.ExitFailure, "unknown cleanup setting", "cleanup", "config", "set", "nope=1h")
	MustFail(t, env, main.ExitUsage, "KEY=VALUE", "cleanup", "config", "set", "blob_grace")
	// The new grace applies to the next run: a fresh orphan is kept.
	young := plantOrphan(t, dataDir, "a young orphan")
	next := mustReport(t, MustCLI(t, env, "cleanup", "run", "--json", "--only", "orphan_object").Stdout)
	if kr := next.Kinds[cleanup.KindOrphanObject]; kr.Found != 0 || !objectExists(t, dataDir, young) {
		t.Errorf("a run with blob_grace 1h touched a new orphan: %+v", kr)
	}

	// The audit log: one JSON object per line, the purge with its actor
	// (the key that ran it) and run.
	r = MustCLI(t, env, "audit", "--json", "--since", "1h")
	var deletedBy string
	var purge *filehub.AuditEntry
	for line := range strings.Lines(r.Stdout) {
		var a filehub.AuditEntry
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		switch {
		case a.Action == filehub.AuditFileDeleted && a.Target == trashed.ID:
			deletedBy = a.Actor
		case a.Action == filehub.AuditFilePurged && a.Target == trashed.ID:
			purge = &a
		}
	}
	if purge == nil || purge.RunID != real.RunID || !strings.HasPrefix(purge.Actor, "k_") || purge.Actor != deletedBy {
		t.Errorf("purge audit entry = %+v (deleted by %q), want the run %d and the admin key", purge, deletedBy, real.RunID)
	}
	r = MustCLI(t, env, "audit", "--action", filehub.AuditObjectDeleted)
	if !strings.Contains(r.Stdout, orphan) || strings.Contains(r.Stdout, filehub.AuditFilePurged) {
		t.Errorf("audit --action object.deleted = %q", r.Stdout)
	}
	if r := MustCLI(t, env, "audit", "--json", "--since", time.Now().Add(time.Hour).Format(time.RFC3339)); r.Stdout != "" {
		t.Errorf("audit since the future = %q", r.Stdout)
	}
	MustFail(t, env, main.ExitUsage, "--since", "audit", "--since", "last week")
}

// TestCleanupSafetyCap: a run that would delete most blobs is refused with
// a 409 that says to force it, through HTTP and the CLI, and deletes nothing
// until forced.
func TestCleanupSafetyCap(t *testing.T) {
	dataDir := t.TempDir()
	s := runCleanupServer(t, dataDir)
	env := clientEnv(s, testKey)
	uploadFile(t, env, "kept.txt", "kept")
	var orphans []string
	for i := range cleanup.DefaultMinDeleteAllowance + 1 {
		orphans = append(orphans, plantOrphan(t, dataDir, fmt.Sprintf("orphan %d", i)))
	}

	req, err := http.NewRequest("POST", s.URL+"/v1/cleanup/runs", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var p struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(body, &p); err != nil || resp.StatusCode != http.StatusConflict ||
		resp.Header.Get("Content-Type") != "application/problem+json" || p.Code != filehub.ECONFLICT || !strings.Contains(p.Detail, "force") {
		t.Fatalf("POST /v1/cleanup/runs = %d %s, want a 409 problem saying to use force", resp.StatusCode, body)
	}

	r := MustFail(t, env, main.ExitFailure, "--force", "cleanup", "run")
	if !strings.Contains(r.Stderr, "safety cap") {
		t.Errorf("stderr %q does not name the safety cap", r.Stderr)
	}
	for _, o := range orphans {
		if !objectExists(t, dataDir, o) {
			t.Fatal("a refused run deleted an orphan")
		}
	}
	refused := mustReport(t, strings.SplitN(MustCLI(t, env, "cleanup", "report", "--format", "json").Stdout, "\n", 2)[0])
	if refused.Status != filehub.RunRefused || len(refused.Kinds[cleanup.KindOrphanObject].Targets) != len(orphans) {
		t.Errorf("refused run's report = %+v, want every target listed", refused)
	}

	forced := mustReport(t, MustCLI(t, env, "cleanup", "run", "--force", "--json").Stdout)
	if kr := forced.Kinds[cleanup.KindOrphanObject]; kr.Deleted != int64(len(orphans)) || !forced.Force {
		t.Errorf("forced run = %+v", kr)
	}

	// The service's collectors are on the server's registry.
	req, _ = http.NewRequest("GET", s.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`filehub_cleanup_runs_total{result="refused"} 2`,
		`filehub_cleanup_runs_total{result="ok"} 1`,
		fmt.Sprintf(`filehub_cleanup_deleted_total{kind="orphan_object"} %d`, len(orphans)),
		`filehub_cleanup_missing_objects 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestCleanupScheduler: with --cleanup-interval the server runs cleanups
// by itself, as the system actor.
func TestCleanupScheduler(t *testing.T) {
	dataDir := t.TempDir()
	s := MustRunMain(t, dataDir, map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, func(c *main.ServeConfig) {
		c.BlobGrace = time.Nanosecond
		c.CleanupInterval = 10 * time.Millisecond
	})
	env := clientEnv(s, testKey)
	orphan := plantOrphan(t, dataDir, "found by the scheduler")
	deadline := time.Now().Add(10 * time.Second)
	for objectExists(t, dataDir, orphan) {
		if time.Now().After(deadline) {
			t.Fatal("no scheduled run deleted the orphan")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The object is deleted inside the transaction that appends its audit
	// entry, so the entry may commit just after the object is gone.
	var r Result
	for {
		r = MustCLI(t, env, "audit", "--json", "--action", filehub.AuditObjectDeleted)
		if strings.TrimSpace(r.Stdout) != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var a filehub.AuditEntry
	if err := json.Unmarshal([]byte(r.Stdout), &a); err != nil || a.Actor != filehub.ActorSystem || a.Target != orphan {
		t.Fatalf("audit = %q, %v; want the orphan deleted by system", r.Stdout, err)
	}
	for !runFinished(t, env, a.RunID) {
		if time.Now().After(deadline) {
			t.Fatalf("run %d did not finish", a.RunID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	run := mustReport(t, MustCLI(t, env, "cleanup", "report", "--run", fmt.Sprint(a.RunID), "--format", "json").Stdout)
	if run.Trigger != "schedule" {
		t.Errorf("run %d trigger = %q, want schedule", run.RunID, run.Trigger)
	}
}

// TestCleanupDataDir: with --data-dir the commands open the data directory
// themselves; "cleanup run" refuses while a server holds it.
func TestCleanupDataDir(t *testing.T) {
	dataDir := t.TempDir()
	s := runCleanupServer(t, dataDir)
	env := clientEnv(s, testKey)
	MustCLI(t, env, "cleanup", "run", "--dry-run")
	local := map[string]string{"USER": "tester"}

	// While the server runs: no run, but reading works.
	r := MustFail(t, local, main.ExitFailure, "in use", "cleanup", "run", "--data-dir", dataDir)
	if !strings.Contains(r.Stderr, "--server") {
		t.Errorf("refusal %q does not say to go through the server", r.Stderr)
	}
	r = MustCLI(t, local, "cleanup", "report", "--data-dir", dataDir, "--format", "json")
	if rep := mustReport(t, r.Stdout); !rep.DryRun {
		t.Errorf("report through the data dir = %+v", rep)
	}
	MustCLI(t, local, "cleanup", "config", "show", "--data-dir", dataDir)
	MustFail(t, local, main.ExitUsage, "not both", "cleanup", "report", "--data-dir", dataDir, "--server", s.URL)
	MustFail(t, local, main.ExitFailure, "no filehub database", "cleanup", "report", "--data-dir", t.TempDir())

	// Stopped: the run works on the data dir, audited as the local user.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	orphan := plantOrphan(t, dataDir, "orphan after the server stopped")
	// The blob grace comes from the same variable as the server's.
	local["FILEHUB_BLOB_GRACE"] = "1ns"
	rep := mustReport(t, MustCLI(t, local, "cleanup", "run", "--data-dir", dataDir, "--json").Stdout)
	if tg := target(t, rep, cleanup.KindOrphanObject, orphan); tg.Action != cleanup.ActionDeleted || rep.Trigger != "cli" {
		t.Errorf("local run = %+v, target %+v", rep, tg)
	}
	if objectExists(t, dataDir, orphan) {
		t.Error("the local run left the orphan")
	}
	r = MustCLI(t, local, "audit", "--data-dir", dataDir, "--json", "--action", filehub.AuditObjectDeleted)
	var a filehub.AuditEntry
	if err := json.Unmarshal([]byte(r.Stdout), &a); err != nil || a.Actor != "cli:tester" || a.RunID != rep.RunID || a.Target != orphan {
		t.Errorf("audit of the local run = %q, %v", r.Stdout, err)
	}
	MustCLI(t, local, "cleanup", "config", "set", "--data-dir", dataDir, "interval=2h")
	if r := MustCLI(t, local, "cleanup", "config", "show", "--data-dir", dataDir); !strings.Contains(r.Stdout, "2h0m0s") {
		t.Errorf("config show after set = %q", r.Stdout)
	}
}

// TestCleanupErrors: usage mistakes exit 2, refusals 1, with one line.
func TestCleanupErrors(t *testing.T) {
	s := runCleanupServer(t, t.TempDir())
	env := clientEnv(s, testKey)
	tests := []struct {
		name string
		env  map[string]string
		code int
		want string
		args []string
	}{
		{"unknown kind", env, main.ExitUsage, "unknown cleanup kind", []string{"cleanup", "run", "--only", "everything"}},
		{"no key", map[string]string{"FILEHUB_SERVER": s.URL}, main.ExitUsage, "FILEHUB_KEY", []string{"cleanup", "run"}},
		{"arguments", env, main.ExitUsage, "no arguments", []string{"cleanup", "run", "now"}},
		{"bad --last", env, main.ExitUsage, "--last", []string{"cleanup", "report", "--last", "0"}},
		{"config set nothing", env, main.ExitUsage, "at least 1", []string{"cleanup", "config", "set"}},
		{"bad value", env, main.ExitFailure, "positive duration", []string{"cleanup", "config", "set", "blob_grace=soon"}},
		{"negative since", env, main.ExitUsage, "negative", []string{"audit", "--since", "-1h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			MustFail(t, tt.env, tt.code, tt.want, tt.args...)
		})
	}
}

// TestCleanupNotAdmin: a key without the admin scope is refused by the
// server, with one line and exit 1.
func TestCleanupNotAdmin(t *testing.T) {
	dataDir := t.TempDir()
	s := runCleanupServer(t, dataDir)
	secret := strings.TrimSpace(MustCLI(t, map[string]string{"FILEHUB_DATA_DIR": dataDir}, "keys", "create", "--name", "rw", "--scope", "read,write").Stdout)
	env := clientEnv(s, secret)
	for _, args := range [][]string{{"cleanup", "run"}, {"cleanup", "report"}, {"cleanup", "config", "show"}, {"audit"}} {
		MustFail(t, env, main.ExitFailure, "admin", args...)
	}
}

// TestCleanupOverWebSocket: the server wires cleanup.run to its cleanup
// service; the run is audited with the session's key.
func TestCleanupOverWebSocket(t *testing.T) {
	dataDir := t.TempDir()
	s := runCleanupServer(t, dataDir)
	orphan := plantOrphan(t, dataDir, "orphan for the websocket")
	ctx := t.Context()
	c, err := wsclient.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws", wsclient.Options{Key: testKey, IgnoreMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var dry cleanup.Report
	if err := c.Call(ctx, wsserver.MethodCleanupRun, api.CleanupRunRequest{DryRun: true}, &dry); err != nil {
		t.Fatal(err)
	}
	if tg := target(t, &dry, cleanup.KindOrphanObject, orphan); tg.Action != cleanup.ActionWouldDelete || dry.Trigger != "websocket" {
		t.Errorf("dry run over the WebSocket = %+v, target %+v", dry, tg)
	}
	var rep cleanup.Report
	if err := c.Call(ctx, wsserver.MethodCleanupRun, map[string]any{"only": []string{"orphan_object"}}, &rep); err != nil {
		t.Fatal(err)
	}
	if tg := target(t, &rep, cleanup.KindOrphanObject, orphan); tg.Action != cleanup.ActionDeleted || objectExists(t, dataDir, orphan) {
		t.Errorf("run over the WebSocket = %+v", tg)
	}
	err = c.Call(ctx, wsserver.MethodCleanupRun, map[string]any{"only": []string{"everything"}}, nil)
	if filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("unknown kind: %v, want invalid", err)
	}
}
