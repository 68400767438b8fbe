package main_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	main "github.com/filehub/filehub/cmd/filehub"
	"github.com/filehub/filehub/internal/apitest"
	"github.com/filehub/filehub/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		removeBuiltBinary()
		os.Exit(code)
	}))
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
	*server.Server
	DataDir  string
	URL      string
	Registry *prometheus.Registry // every metric of the daemon
}

// serverConfig is the daemon's configuration as "filehub serve" would
// build it for a test: on 127.0.0.1:0 with its data in dataDir, env as its
// environment (FILEHUB_BOOTSTRAP_KEY, FILEHUB_PROVIDER_*), no free-space
// floor and no rate limit; configure, if not nil, adjusts the command
// line's settings first.
func serverConfig(tb testing.TB, dataDir string, env map[string]string, configure func(*main.ServeConfig)) (server.Config, error) {
	tb.Helper()
	cfg := main.DefaultServeConfig()
	cfg.DataDir = dataDir
	cfg.Listen = "127.0.0.1:0"
	cfg.MinFreeSpace = 0 // the test machine's free space is not under test
	cfg.RateLimit = 0
	if configure != nil {
		configure(&cfg)
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	sc, err := cfg.ServerConfig(environ)
	if err != nil {
		return sc, err
	}
	sc.BootstrapKey = env["FILEHUB_BOOTSTRAP_KEY"]
	return sc, nil
}

// StartErr builds a daemon as MustRunMain does and returns the error of
// server.New (closing the server if there was none): for tests of starts
// that must fail.
func StartErr(tb testing.TB, dataDir string, env map[string]string, configure func(*main.ServeConfig)) error {
	tb.Helper()
	sc, err := serverConfig(tb, dataDir, env, configure)
	if err != nil {
		return err
	}
	srv, err := server.New(context.Background(), sc)
	if err != nil {
		return err
	}
	if err := srv.Close(); err != nil {
		tb.Errorf("close server: %v", err)
	}
	return nil
}

// MustRunMain starts the real daemon (server.New, then Run) on
// 127.0.0.1:0 with its data in dataDir, using env for its environment
// (FILEHUB_BOOTSTRAP_KEY). configure, if not nil, adjusts the command
// line's settings first. The server is closed when the test ends; its logs
// are shown if the test failed.
func MustRunMain(tb testing.TB, dataDir string, env map[string]string, configure func(*main.ServeConfig)) *Server {
	tb.Helper()
	logs := &syncBuffer{}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("server logs:\n%s", logs.String())
		}
	})
	sc, err := serverConfig(tb, dataDir, env, configure)
	if err != nil {
		tb.Fatalf("server config: %v", err)
	}
	reg := prometheus.NewRegistry()
	sc.Registerer, sc.Gatherer = reg, reg
	sc.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(context.Background(), sc)
	if err != nil {
		tb.Fatalf("run server: %v", err)
	}
	// Close returns Run's result.
	go srv.Run(context.Background()) //nolint:errcheck
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Errorf("close server: %v", err)
		}
	})
	// Every exchange through URL (the CLI's, the clients', raw requests)
	// is checked against the OpenAPI document; the proxy is closed
	// before the server.
	url := apitest.Proxy(tb, "http://"+srv.Addr())
	return &Server{Server: srv, DataDir: dataDir, URL: url, Registry: reg}
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
