package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/client"
	main "github.com/filehub/filehub/cmd/filehub"
)

// NewClient returns an API client with its own transport, closed at the end
// of the test so that no connection goroutine outlives it.
func NewClient(tb testing.TB, url, key string) *client.Client {
	tb.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(tr.CloseIdleConnections)
	return client.New(url, key, client.WithHTTPClient(&http.Client{Transport: tr}))
}

// assertStatus checks the status of GET url with key ("" for none).
func assertStatus(tb testing.TB, url, key string, want int) {
	tb.Helper()
	if got := getStatus(tb, url, key); got != want {
		tb.Errorf("GET %s: status %d, want %d", url, got, want)
	}
}

// getStatus returns the status of GET url with key ("" for none).
func getStatus(tb testing.TB, url, key string) int {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestBootstrapFromEnv(t *testing.T) {
	dataDir := t.TempDir()
	s := MustRunMain(t, dataDir, map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	if k := s.BootstrapKey(); k != "" {
		t.Errorf("serve generated key %q with FILEHUB_BOOTSTRAP_KEY set", k)
	}
	// The key is an admin key: it may read metrics, which needs admin or
	// metrics, and manage files.
	assertStatus(t, s.URL+"/metrics", testKey, 200)
	assertStatus(t, s.URL+"/v1/files", testKey, 200)
	r := MustCLI(t, nil, "keys", "list", "--data-dir", dataDir)
	if !strings.Contains(r.Stdout, "bootstrap") || !strings.Contains(r.Stdout, "admin") {
		t.Errorf("keys list = %q", r.Stdout)
	}
}

func TestBootstrapGenerated(t *testing.T) {
	dataDir := t.TempDir()
	s := MustRunMain(t, dataDir, nil, nil)
	secret := s.BootstrapKey()
	if !strings.HasPrefix(secret, filehub.APIKeyPrefix) {
		t.Fatalf("generated bootstrap key %q, want a new key", secret)
	}
	assertStatus(t, s.URL+"/metrics", secret, 200)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A second start finds the key: nothing is printed and the key still
	// works. A bootstrap key in the environment is ignored now.
	s2 := MustRunMain(t, dataDir, map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	if k := s2.BootstrapKey(); k != "" {
		t.Errorf("second start generated key %q", k)
	}
	assertStatus(t, s2.URL+"/v1/files", secret, 200)
	assertStatus(t, s2.URL+"/v1/files", testKey, 401)
}

func TestBootstrapKeyTooShort(t *testing.T) {
	err := StartErr(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": "short"}, nil)
	if err == nil || !strings.Contains(err.Error(), "too short") {
		t.Fatalf("Run = %v, want a too-short error", err)
	}
}

func TestMetricsListen(t *testing.T) {
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, func(c *main.ServeConfig) {
		c.MetricsListen = "127.0.0.1:0"
	})
	if s.MetricsAddr() == "" {
		t.Fatal("no metrics address")
	}
	murl := "http://" + s.MetricsAddr()
	assertStatus(t, murl+"/metrics", "", 200)
	assertStatus(t, murl+"/readyz", "", 200)
	assertStatus(t, murl+"/v1/files", "", 404)
	// /metrics is gone from the main listener, even for admins.
	assertStatus(t, s.URL+"/metrics", testKey, 404)
	assertStatus(t, s.URL+"/v1/files", testKey, 200)
}

func TestListenInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = StartErr(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, func(c *main.ServeConfig) {
		c.Listen = ln.Addr().String()
	})
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run = %v, want a listen error", err)
	}
}

// uploadsInFlight reads the server's in-flight uploads gauge.
func uploadsInFlight(tb testing.TB, s *Server) float64 {
	tb.Helper()
	mfs, err := s.Registry.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "filehub_uploads_in_flight" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// waitFor polls cond until it holds or the test's deadline is near.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	if d, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		if td, ok := d.Deadline(); ok && td.Before(deadline) {
			deadline = td.Add(-time.Second)
		}
	}
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startSlowUpload starts an upload of body, of which only the first half
// is sent until finish is called, and waits until the server is receiving
// it. finish(true) sends the rest; finish(false) ends the body with an
// error. The channel delivers the upload's outcome.
func startSlowUpload(tb testing.TB, s *Server, c *client.Client, body []byte) (finish func(complete bool), result <-chan error) {
	tb.Helper()
	before := uploadsInFlight(tb, s)
	pr, pw := io.Pipe()
	res := make(chan error, 1)
	go func() {
		_, err := c.Upload(context.Background(), "slow.bin", pr, int64(len(body)))
		pr.CloseWithError(err)
		res <- err
	}()
	half := len(body) / 2
	if _, err := pw.Write(body[:half]); err != nil {
		tb.Fatal(err)
	}
	waitFor(tb, "the upload to be in flight", func() bool { return uploadsInFlight(tb, s) > before })
	return func(complete bool) {
		if complete {
			pw.Write(body[half:])
			pw.Close()
		} else {
			pw.CloseWithError(io.ErrUnexpectedEOF)
		}
	}, res
}

func TestGracefulShutdown(t *testing.T) {
	dataDir := t.TempDir()
	s := MustRunMain(t, dataDir, map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	c := NewClient(t, s.URL, testKey)
	body := bytes.Repeat([]byte("graceful "), 100_000)
	finish, result := startSlowUpload(t, s, c, body)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()

	// The listener stops accepting at once…
	waitFor(t, "the listener to close", func() bool {
		conn, err := net.Dial("tcp", s.Addr())
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	// …while the upload in flight holds up the shutdown…
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v with an upload in flight", err)
	default:
	}
	// …and completes.
	finish(true)
	if err := <-result; err != nil {
		t.Fatalf("upload in flight during shutdown failed: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}

	// The file is stored durably: a new server lists and serves it.
	s2 := MustRunMain(t, dataDir, nil, nil)
	c2 := NewClient(t, s2.URL, testKey)
	list, _, err := c2.List(context.Background(), 0, "")
	if err != nil || len(list) != 1 || list[0].SHA256 != sum(body) {
		t.Fatalf("after restart: %v, %v", list, err)
	}
}

func TestShutdownTimeout(t *testing.T) {
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, func(c *main.ServeConfig) {
		c.ShutdownTimeout = 50 * time.Millisecond
	})
	c := NewClient(t, s.URL, testKey)
	finish, result := startSlowUpload(t, s, c, bytes.Repeat([]byte("x"), 1<<20))

	// The upload never completes: Close must not wait for it beyond the
	// timeout, and the upload fails rather than being recorded.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The client notices the cut connection once it tries to send more.
	finish(false)
	if err := <-result; err == nil {
		t.Fatal("upload cut by shutdown succeeded")
	}
}

// TestServeCommand runs "filehub serve" itself in-process, as main does,
// and stops it by canceling its context.
func TestServeCommand(t *testing.T) {
	dataDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	code := make(chan int, 1)
	go func() {
		code <- main.Execute(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--min-free-space", "0", "--log-format", "json"},
			main.Env{Stdout: stdout, Stderr: stderr, Getenv: func(k string) string {
				return map[string]string{"FILEHUB_DATA_DIR": dataDir}[k]
			}})
	}()
	var addr string
	waitFor(t, "the listening log line", func() bool {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				addr = rec.Addr
				return true
			}
		}
		return false
	})
	assertStatus(t, "http://"+addr+"/healthz", "", 200)
	if !strings.Contains(stdout.String(), filehub.APIKeyPrefix) {
		t.Errorf("serve printed no bootstrap key: %q", stdout.String())
	}
	cancel()
	if c := <-code; c != main.ExitOK {
		t.Errorf("serve exited %d after its context ended\n%s", c, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dataDir, "filehub.db")); err != nil {
		t.Errorf("FILEHUB_DATA_DIR not used: %v", err)
	}
}

func TestServeRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"log level", []string{"--log-level", "loud"}, main.ExitUsage, "--log-level"},
		{"MIME pattern", []string{"--allow-types", "images"}, main.ExitFailure, "invalid MIME pattern"},
		{"listen address", []string{"--listen", "127.0.0.1:99999"}, main.ExitFailure, "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			args := append([]string{"serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0"}, tt.args...)
			r := CLI(t, nil, nil, args...)
			// serve logs to stderr too; the error is its last line.
			lines := strings.Split(strings.TrimSuffix(r.Stderr, "\n"), "\n")
			last := lines[len(lines)-1]
			if r.Code != tt.code || !strings.HasPrefix(last, "filehub: ") || !strings.Contains(last, tt.want) {
				t.Errorf("exit %d, last line %q; want exit %d and %q", r.Code, last, tt.code, tt.want)
			}
			// A start that fails creates no key: the next one must still
			// print the generated key.
			if strings.Contains(r.Stdout, filehub.APIKeyPrefix) {
				t.Errorf("failed start printed a key: %q", r.Stdout)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	r := MustCLI(t, nil, "version")
	if !strings.HasPrefix(r.Stdout, "filehub ") || !strings.Contains(r.Stdout, "go1.") {
		t.Errorf("version printed %q", r.Stdout)
	}
}

func TestDataDirLocked(t *testing.T) {
	dataDir := t.TempDir()
	MustRunMain(t, dataDir, map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)

	err := StartErr(t, dataDir, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second server on the same data dir: Run = %v, want an in-use error", err)
	}
	// The CLI's keys commands are not servers and still work.
	MustCLI(t, nil, "keys", "list", "--data-dir", dataDir)
}
