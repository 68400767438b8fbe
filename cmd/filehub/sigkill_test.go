package main_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// built is the filehub binary the tests run, built once per test run:
// linking it takes seconds, and many tests need it.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// buildBinary returns the filehub binary, building it into a temporary
// directory (removed by removeBuiltBinary at the end of the run) the first
// time.
func buildBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "filehub-test-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.dir = dir
		bin := filepath.Join(dir, "filehub")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		built.bin = bin
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// removeBuiltBinary removes what buildBinary built; TestMain calls it.
func removeBuiltBinary() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// Process is the real filehub binary running "serve".
type Process struct {
	cmd    *exec.Cmd
	URL    string
	logs   *syncBuffer
	exited chan struct{} // closed when stderr is drained and the process waited for
	err    error         // of Wait, once exited is closed
}

var listeningAddr = regexp.MustCompile(`msg=listening addr=(\S+)`)

// StartProcess runs bin serve on dataDir and waits until it listens.
// Extra flags are appended to the defaults of the test.
func StartProcess(t *testing.T, bin, dataDir string, flags ...string) *Process {
	t.Helper()
	return StartProcessEnv(t, bin, dataDir, nil, flags...)
}

// StartProcessEnv is StartProcess with env (KEY=value) added to the
// process's environment.
func StartProcessEnv(t *testing.T, bin, dataDir string, env []string, flags ...string) *Process {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0",
		"--min-free-space", "0", "--rate-limit", "0", "--shutdown-timeout", "5s"}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"FILEHUB_BOOTSTRAP_KEY=" + testKey, "PATH=" + os.Getenv("PATH")}, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.logs, line)
			if m := listeningAddr.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("filehub serve logs:\n%s", p.logs.String())
		}
	})
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.exited:
		t.Fatalf("filehub serve exited: %v\n%s", p.err, p.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("filehub serve did not log its address:\n%s", p.logs.String())
	}
	return p
}

// TestSIGKILLDuringUploads kills the real server with SIGKILL while uploads
// are in flight and checks that after a restart on the same data dir every
// listed file downloads intact and no staged upload is left behind.
func TestSIGKILLDuringUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	p := StartProcess(t, bin, dataDir)
	c := NewClient(t, p.URL, testKey)

	// 20 uploads of 3 MiB drawn from 6 contents, so several are identical.
	// Half are sent whole; the other half send part of their body and
	// stall, so they are surely in flight when the server is killed.
	const n, distinct, size = 20, 6, 3 << 20
	contents := make([][]byte, distinct)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range contents {
		contents[i] = make([]byte, size)
		for j := range contents[i] {
			contents[i][j] = byte(rng.Uint32())
		}
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		completed = map[string]int{} // file ID → content index
		stalled   []*io.PipeWriter
		sent      sync.WaitGroup // stalled uploads that sent their first part
	)
	for i := range n {
		ci := i % distinct
		name := fmt.Sprintf("file-%02d-content-%d.bin", i, ci)
		var body io.Reader = bytes.NewReader(contents[ci])
		if i%2 == 1 {
			pr, pw := io.Pipe()
			stalled = append(stalled, pw)
			body = pr
			sent.Add(1)
			go func() {
				defer sent.Done()
				pw.Write(contents[ci][:size/3])
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			up, err := c.Upload(context.Background(), name, body, size)
			if err != nil {
				if i%2 == 0 {
					t.Errorf("upload %s: %v", name, err)
				}
				return
			}
			mu.Lock()
			completed[up.ID] = ci
			mu.Unlock()
		}()
	}
	// Wait until the whole uploads are done and the stalled ones are being
	// received, then kill the server without warning.
	sent.Wait()
	waitFor(t, "the complete uploads", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(completed) == n/2 || t.Failed()
	})
	waitFor(t, "the stalled uploads to be in flight", func() bool {
		return metricValue(t, p.URL, "filehub_uploads_in_flight") >= n/2
	})
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	for _, pw := range stalled {
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}
	wg.Wait()
	if staged := tmpFiles(t, dataDir); len(staged) == 0 {
		t.Error("no staged upload in tmp/ after the kill: the test did not kill mid-upload")
	}

	// Restart on the same data dir.
	p2 := StartProcess(t, bin, dataDir)
	if staged := tmpFiles(t, dataDir); len(staged) > 0 {
		t.Errorf("staged uploads left after restart: %v", staged)
	}
	c2 := NewClient(t, p2.URL, testKey)
	list, _, err := c2.List(context.Background(), 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(completed) {
		t.Errorf("%d files listed after restart, want the %d completed uploads", len(list), len(completed))
	}
	for _, f := range list {
		ci, ok := completed[f.ID]
		if !ok {
			t.Errorf("listed file %s (%s) was never acknowledged", f.ID, f.Name)
			continue
		}
		if want := sum(contents[ci]); f.SHA256 != want {
			t.Errorf("file %s: sha256 %s, want %s", f.ID, f.SHA256, want)
		}
		var buf bytes.Buffer
		d, err := c2.DownloadTo(context.Background(), f.ID, &buf) // verifies size and sha256
		if err != nil {
			t.Errorf("download %s: %v", f.ID, err)
			continue
		}
		if d.SHA256 != f.SHA256 || !bytes.Equal(buf.Bytes(), contents[ci]) {
			t.Errorf("file %s: content differs", f.ID)
		}
	}

	// SIGTERM stops the restarted server cleanly.
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p2.exited
	if p2.err != nil {
		t.Errorf("filehub serve after SIGTERM: %v", p2.err)
	}
	if !strings.Contains(p2.logs.String(), "msg=stopped") {
		t.Error("no \"stopped\" log line after SIGTERM")
	}
}

// tmpFiles lists the staged uploads in the data dir's tmp/.
func tmpFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "probe-") { // readiness probes come and go
			names = append(names, e.Name())
		}
	}
	return names
}

// metricValue scrapes url's /metrics for the value of an unlabelled
// metric; -1 if it is absent or the scrape fails.
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	return -1
}

// TestSecondSignalExitsAtOnce checks that a second SIGTERM ends a server
// that is waiting for an in-flight upload to finish its graceful shutdown.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin := buildBinary(t)
	p := StartProcess(t, bin, t.TempDir(), "--shutdown-timeout", "1h")
	c := NewClient(t, p.URL, testKey)

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := c.Upload(context.Background(), "stalled.bin", pr, 1<<20)
		done <- err
	}()
	pw.Write(make([]byte, 1<<10))
	waitFor(t, "the upload to be in flight", func() bool {
		return metricValue(t, p.URL, "filehub_uploads_in_flight") >= 1
	})

	p.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, "the graceful shutdown to start", func() bool {
		return strings.Contains(p.logs.String(), `msg="shutting down"`)
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-done

	var exit *exec.ExitError
	if !errors.As(p.err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit after a second signal: %v, want exit status 1", p.err)
	}
	if !strings.Contains(p.logs.String(), "second signal") {
		t.Error("no log line about the second signal")
	}
}
