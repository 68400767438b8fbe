package main_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	main "github.com/filehub/filehub/cmd/filehub"
	"github.com/filehub/filehub/internal/apitest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testKey is the bootstrap admin key of the servers the tests start.
const testKey = "fhk_test-bootstrap-key-0123456789"

// syncBuffer is a bytes.Buffer safe for concurrent writes (the daemon logs
// from many goroutines).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Server is a daemon running in-process for a test.
type Server struct {
	*main.Main
	DataDir string
	URL     string
	Stdout  *syncBuffer // what serve printed (a generated bootstrap key)
}

// MustRunMain starts the real daemon on 127.0.0.1:0 with its data in
// dataDir, using env for its environment (FILEHUB_BOOTSTRAP_KEY). configure,
// if not nil, adjusts the configuration first. The server is closed when the
// test ends; its logs are shown if the test failed.
func MustRunMain(tb testing.TB, dataDir string, env map[string]string, configure func(*main.ServeConfig)) *Server {
	tb.Helper()
	logs := &syncBuffer{}
	s := &Server{Main: main.NewMain(), DataDir: dataDir, Stdout: &syncBuffer{}}
	s.Config.DataDir = dataDir
	s.Config.Listen = "127.0.0.1:0"
	s.Config.MinFreeSpace = 0 // the test machine's free space is not under test
	s.Config.RateLimit = 0
	if configure != nil {
		configure(&s.Config)
	}
	s.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.Main.Stdout = s.Stdout
	s.Getenv = func(k string) string { return env[k] }
	s.Environ = func() []string {
		var kv []string
		for k, v := range env {
			kv = append(kv, k+"="+v)
		}
		return kv
	}
	s.Registry = prometheus.NewRegistry()
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close server: %v", err)
		}
		if tb.Failed() {
			tb.Logf("server logs:\n%s", logs.String())
		}
	})
	if err := s.Run(context.Background()); err != nil {
		tb.Fatalf("run server: %v", err)
	}
	// Every exchange through s.URL (the CLI's, the clients', raw
	// requests) is checked against the OpenAPI document.
	s.URL = apitest.Proxy(tb, "http://"+s.Addr())
	return s
}

// Result is the outcome of one CLI invocation.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// CLI runs the filehub command line in-process with the given environment.
func CLI(tb testing.TB, env map[string]string, stdin io.Reader, args ...string) Result {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	code := main.Execute(context.Background(), args, main.Env{
		Stdin:  stdin,
		Stdout: &stdout,
		Stderr: &stderr,
		Getenv: func(k string) string { return env[k] },
	})
	return Result{Code: code, Stdout: stdout.String(), Stderr: stderr.String()}
}

// MustCLI runs the command line and fails the test unless it exits 0.
func MustCLI(tb testing.TB, env map[string]string, args ...string) Result {
	tb.Helper()
	r := CLI(tb, env, nil, args...)
	if r.Code != main.ExitOK {
		tb.Fatalf("filehub %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// MustFail runs the command line and fails the test unless it exits with
// code and prints exactly one "filehub: …" line on stderr containing want.
func MustFail(tb testing.TB, env map[string]string, code int, want string, args ...string) Result {
	tb.Helper()
	r := CLI(tb, env, nil, args...)
	if r.Code != code {
		tb.Fatalf("filehub %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, code, r.Stdout, r.Stderr)
	}
	if !strings.HasPrefix(r.Stderr, "filehub: ") || strings.Count(r.Stderr, "\n") != 1 || !strings.HasSuffix(r.Stderr, "\n") {
		tb.Errorf("filehub %s: stderr is not one \"filehub: …\" line: %q", strings.Join(args, " "), r.Stderr)
	}
	if !strings.Contains(strings.ToLower(r.Stderr), strings.ToLower(want)) {
		tb.Errorf("filehub %s: stderr %q does not mention %q", strings.Join(args, " "), r.Stderr, want)
	}
	return r
}
