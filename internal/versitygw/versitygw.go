// Package versitygw runs a real S3 server for tests and benchmarks: the
// Versity S3 Gateway (github.com/versity/versitygw) with its posix backend
// on a temp directory, listening on 127.0.0.1.
//
// The gateway is a separate program, built from source with "go install
// PACKAGE@VERSION" into the user's cache directory the first time it is
// needed and reused after that. It is not a dependency of filehub's module:
// its own go.mod and go.sum pin what it is built from (checked against
// the checksum database like any module), and its many dependencies stay
// out of filehub's module graph. A test that needs it calls Start; without
// the Go toolchain or the module proxy, Start fails the test in CI (CI set
// to "true") and skips it elsewhere, saying why.
package versitygw

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version and Package name what Binary builds.
const (
	Version = "v1.8.0"
	Package = "github.com/versity/versitygw/cmd/versitygw"
)

// BinaryEnv, if set, is the path of a versitygw binary to use instead of
// building one (for machines without the module proxy).
const BinaryEnv = "FILEHUB_VERSITYGW"

// Root credentials and region of every gateway Start runs. They protect
// nothing: the gateway listens on 127.0.0.1 only and lives for one test.
const (
	AccessKey = "filehub-test"
	SecretKey = "filehub-test-secret"
	Region    = "us-east-1"
)

// Server is a running gateway.
type Server struct {
	// Endpoint is the gateway's base URL, http://127.0.0.1:PORT.
	Endpoint string
	// Root is the posix backend's directory: each bucket is a
	// subdirectory, each object a file.
	Root string

	client *awss3.Client
	http   *http.Transport
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the path of the versitygw binary: BinaryEnv if set, else
// the copy in the user's cache directory, which it builds with "go
// install" if it is not there yet (a few minutes with a cold build cache,
// a few seconds to link with a warm one). Concurrent builds, by test
// binaries running in parallel, each install into a directory of their
// own and rename it into place, so a half-written binary is never run.
func Binary(ctx context.Context) (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		return p, nil
	}
	buildOnce.Do(func() { buildPath, buildErr = build(ctx) })
	return buildPath, buildErr
}

func build(ctx context.Context) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the versitygw binary: %w", err)
	}
	dir := filepath.Join(cache, "filehub-test", "versitygw-"+Version+"-"+runtime.GOOS+"-"+runtime.GOARCH)
	bin := filepath.Join(dir, "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building versitygw needs the go command: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, goTool, "install", "-trimpath", "-ldflags=-s -w", Package+"@"+Version)
	// Outside any module, so that filehub's go.mod plays no part; GOBIN
	// receives the binary. GOFLAGS from the caller could carry -mod or
	// tags meant for filehub, not for this build.
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "GO111MODULE=on", "GOWORK=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", Package, Version, err, out.Bytes())
	}
	fmt.Fprintf(os.Stderr, "versitygw: built %s@%s in %v\n", Package, Version, time.Since(start).Round(time.Second))
	if err := os.Rename(tmp, dir); err != nil {
		// Another build won the race: use its binary.
		if _, statErr := os.Stat(bin); statErr == nil {
			return bin, nil
		}
		return "", fmt.Errorf("install versitygw: %w", err)
	}
	return bin, nil
}

// inCI reports whether a missing gateway must fail the test.
func inCI() bool { return os.Getenv("CI") == "true" }

// Start runs a gateway on a new temp root and stops it when the test
// ends. It skips the test under -short (building the gateway takes
// minutes on a cold cache), and when the gateway cannot be built or
// started outside CI; in CI it fails the test instead.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: skipping the tests against a real S3 server (versitygw)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := Binary(ctx)
	if err != nil {
		if inCI() {
			tb.Fatalf("versitygw: %v", err)
		}
		tb.Skipf("versitygw is not available (set %s to a binary, or let the go command reach the module proxy): %v", BinaryEnv, err)
	}
	var s *Server
	// The port is picked by binding and releasing it, since the gateway
	// does not report a port it chose itself; another process may take
	// it meanwhile, so a start that fails is tried again on a new port.
	for attempt := 1; ; attempt++ {
		s, err = start(tb, bin)
		if err == nil || attempt == 3 {
			break
		}
		tb.Logf("versitygw start attempt %d: %v", attempt, err)
	}
	if err != nil {
		tb.Fatalf("versitygw: %v", err)
	}
	return s
}

func start(tb testing.TB, bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	root := tb.TempDir()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin,
		"--access", AccessKey, "--secret", SecretKey, "--region", Region,
		"--port", addr, "--quiet", "--health", "/healthz",
		"posix", root)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			return fmt.Errorf("did not stop within 10s of SIGTERM: %w", <-exited)
		}
	}
	s := &Server{Endpoint: "http://" + addr, Root: root, http: &http.Transport{}}
	if err := s.waitHealthy(exited); err != nil {
		s.http.CloseIdleConnections()
		return nil, errors.Join(err, stop(), fmt.Errorf("output:\n%s", out.String()))
	}
	tb.Cleanup(func() {
		s.http.CloseIdleConnections()
		if err := stop(); err != nil && !isTermination(err) {
			tb.Errorf("versitygw: %v\noutput:\n%s", err, out.String())
		}
	})
	s.client = awss3.New(awss3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		HTTPClient:   &http.Client{Transport: s.http},
	})
	return s, nil
}

// isTermination reports whether err is the exit of a process that a
// signal ended or that exited on it with a non-zero status.
func isTermination(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

// waitHealthy polls the health endpoint until it answers 200, the process
// exits, or a minute has passed.
func (s *Server) waitHealthy(exited <-chan error) error {
	c := &http.Client{Transport: s.http, Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := c.Get(s.Endpoint + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health check: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy within a minute: %w", err)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited before answering: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// CreateBucket creates an empty bucket with a new name and returns it.
func (s *Server) CreateBucket(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "filehub-" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		tb.Fatalf("versitygw: create bucket %s: %v", name, err)
	}
	return name
}

// Client returns an AWS SDK client of the gateway with its root
// credentials, for tests that look at the bucket directly and for the
// direct-SDK baselines of benchmarks.
func (s *Server) Client() *awss3.Client { return s.client }

// URL returns the filehub blob-store URL of bucket (see package s3); extra
// is appended to its query, e.g. "&prefix=a/b".
func (s *Server) URL(bucket, extra string) string {
	return "s3://" + bucket + "?endpoint=" + s.Endpoint + "&region=" + Region + "&path_style=true" + extra
}

// syncBuffer collects the gateway's output from the copying goroutines.
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
