package main

// An internal test: "watch" is built by newWatchCommand, which this file
// runs directly against the real session server on real stores.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/sqlite"
	"github.com/filehub/filehub/wsserver"
)

// watchServer is wsserver on sqlite + localfs in dir, on a fixed address so
// that it can be restarted in place.
type watchServer struct {
	dir, addr, key string
	db             *sqlite.DB
	files          *files.Service
	ws             *wsserver.Server
	hs             *http.Server
	cancel         context.CancelFunc
	done           chan error
}

func startWatchServer(tb testing.TB, dir, addr, key string) *watchServer {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"), sqlite.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	blobs, err := localfs.Open(filepath.Join(dir, "blobs"), localfs.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := files.New(db, blobs, files.Config{MinFreeSpace: -1})
	if err != nil {
		tb.Fatal(err)
	}
	if key == "" {
		key = filehub.NewAPIKeySecret()
		if err := db.CreateAPIKey(ctx, &filehub.APIKey{ID: filehub.NewID("k_"), Name: "watch",
			Scopes: []filehub.Scope{filehub.ScopeRead}, CreatedAt: time.Now(), Hash: filehub.HashAPIKey(key)}); err != nil {
			tb.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	s := &watchServer{dir: dir, addr: ln.Addr().String(), key: key, db: db, files: svc, done: make(chan error, 2)}
	s.ws = wsserver.New(svc, db, wsserver.Config{Logger: slog.New(slog.DiscardHandler), EventPollInterval: 5 * time.Millisecond})
	mux := http.NewServeMux()
	mux.Handle("GET /v1/ws", s.ws)
	s.hs = &http.Server{Handler: mux}
	var runCtx context.Context
	runCtx, s.cancel = context.WithCancel(ctx)
	go func() { s.done <- s.ws.Run(runCtx) }()
	go func() {
		if err := s.hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.done <- err
			return
		}
		s.done <- nil
	}()
	return s
}

func (s *watchServer) stop(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := errors.Join(s.ws.Shutdown(ctx), s.hs.Close())
	s.cancel()
	if err = errors.Join(err, <-s.done, <-s.done, s.db.Close()); err != nil {
		tb.Errorf("stop server: %v", err)
	}
}

func (s *watchServer) upload(tb testing.TB, name string) {
	tb.Helper()
	if _, err := s.files.Upload(context.Background(), strings.NewReader(name), name, "k_test"); err != nil {
		tb.Fatal(err)
	}
	s.ws.Notify()
}

// lockedBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// watchRun is a running "watch".
type watchRun struct {
	stdout, stderr *lockedBuffer
	cancel         context.CancelFunc
	errc           chan error
	once           sync.Once
	err            error
}

// runWatch starts "watch args…"; it is interrupted when the test ends.
func runWatch(tb testing.TB, args ...string) *watchRun {
	tb.Helper()
	w := &watchRun{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, errc: make(chan error, 1)}
	cmd := newWatchCommand(Env{Stdout: w.stdout, Stderr: w.stderr, Getenv: func(string) string { return "" }})
	cmd.SetArgs(args)
	cmd.SetOut(w.stdout)
	cmd.SetErr(w.stderr)
	var ctx context.Context
	ctx, w.cancel = context.WithCancel(context.Background())
	go func() { w.errc <- cmd.ExecuteContext(ctx) }()
	tb.Cleanup(func() { w.stop() })
	return w
}

// wait returns watch's error once it ends by itself.
func (w *watchRun) wait(tb testing.TB) error {
	tb.Helper()
	select {
	case err := <-w.errc:
		w.once.Do(func() { w.err = err })
		return err
	case <-time.After(20 * time.Second): // a hang guard
		tb.Fatal("watch did not end")
		return nil
	}
}

// stop interrupts watch and returns its error.
func (w *watchRun) stop() error {
	w.once.Do(func() {
		w.cancel()
		w.err = <-w.errc
	})
	return w.err
}

// waitLines waits until out holds n lines and returns them.
func waitLines(tb testing.TB, out *lockedBuffer, n int) []string {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second) // a hang guard, not a timing assertion
	for {
		s := out.String()
		lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		if s == "" {
			lines = nil
		}
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			tb.Fatalf("got %d of %d lines: %q", len(lines), n, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watch --json prints every event once, in order, as exactly the event's
// JSON, and keeps going across server restarts (which lose the session).
func TestWatchJSONAcrossServerRestarts(t *testing.T) {
	srv := startWatchServer(t, t.TempDir(), "127.0.0.1:0", "")
	defer func() { srv.stop(t) }()
	for i := range 3 {
		srv.upload(t, fmt.Sprintf("before-%d", i))
	}
	w := runWatch(t, "--json", "--since", "1", "--server", "http://"+srv.addr, "--key", srv.key)
	waitLines(t, w.stdout, 2) // events 2 and 3
	for r := range 2 {
		srv.upload(t, fmt.Sprintf("pre-restart-%d", r))
		srv.stop(t)
		srv = startWatchServer(t, srv.dir, srv.addr, srv.key)
		srv.upload(t, fmt.Sprintf("post-restart-%d", r))
	}
	lines := waitLines(t, w.stdout, 6)
	if err := w.stop(); err != nil {
		t.Fatalf("watch: %v", err)
	}
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6: %q", len(lines), lines)
	}
	log, err := srv.db.ListEvents(context.Background(), 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != len(lines) {
		t.Fatalf("log has %d events after 1, watch printed %d", len(log), len(lines))
	}
	for i, line := range lines {
		want, _ := json.Marshal(log[i])
		if line != string(want) {
			t.Errorf("line %d:\n got %s\nwant %s", i, line, want)
		}
		var shape map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &shape); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"id", "type", "time", "file"} {
			if _, ok := shape[k]; !ok {
				t.Errorf("line %d lacks %q: %s", i, k, line)
			}
		}
	}
}

func TestWatchText(t *testing.T) {
	srv := startWatchServer(t, t.TempDir(), "127.0.0.1:0", "")
	defer srv.stop(t)
	srv.upload(t, "report.pdf")
	w := runWatch(t, "--server", "http://"+srv.addr, "--key", srv.key)
	line := waitLines(t, w.stdout, 1)[0]
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	f := strings.Split(line, "\t")
	if len(f) != 5 || f[0] != "1" || f[2] != filehub.EventFileCreated || !strings.HasPrefix(f[3], "f") || f[4] != "report.pdf" {
		t.Errorf("line %q", line)
	}
}

func TestWatchGap(t *testing.T) {
	srv := startWatchServer(t, t.TempDir(), "127.0.0.1:0", "")
	defer srv.stop(t)
	for i := range 4 {
		srv.upload(t, fmt.Sprintf("f%d", i))
	}
	if _, err := srv.db.TrimEvents(context.Background(), time.Unix(0, 0), 2); err != nil { // keeps 3 and 4
		t.Fatal(err)
	}
	server := "http://" + srv.addr

	// Without --allow-gap, watch refuses to skip events.
	err := runWatch(t, "--since", "1", "--server", server, "--key", srv.key).wait(t)
	if err == nil || !strings.Contains(err.Error(), "trimmed") {
		t.Errorf("watch over a gap = %v, want an error about trimmed events", err)
	}

	// With it, watch warns and continues from the oldest retained event.
	w := runWatch(t, "--allow-gap", "--since", "1", "--server", server, "--key", srv.key)
	lines := waitLines(t, w.stdout, 2)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(lines[0], "3\t") || !strings.HasPrefix(lines[1], "4\t") {
		t.Errorf("lines %q, want events 3 and 4", lines)
	}
	if !strings.Contains(w.stderr.String(), "warning") {
		t.Errorf("stderr %q has no warning", w.stderr.String())
	}
}

func TestWatchUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no key", []string{"--server", "http://127.0.0.1:1"}, "no API key"},
		{"negative since", []string{"--since", "-1", "--key", "k"}, "--since"},
		{"bad server", []string{"--server", "ftp://x", "--key", "k"}, "scheme"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := runWatch(t, tt.args...).wait(t)
			if !isUsageError(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want a usage error mentioning %q", err, tt.want)
			}
		})
	}
}

// A bad key is permanent: watch stops with a clear error instead of
// retrying forever.
func TestWatchBadKey(t *testing.T) {
	srv := startWatchServer(t, t.TempDir(), "127.0.0.1:0", "")
	defer srv.stop(t)
	err := runWatch(t, "--server", "http://"+srv.addr, "--key", "fhk_wrong").wait(t)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("watch with a bad key = %v, want a 401 error", err)
	}
}
