package main_test

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/filehub/filehub/internal/nodetest"
)

// tusResult is what e2e/tus-upload.mjs prints.
type tusResult struct {
	OK           bool   `json:"ok"`
	Error        string `json:"error"`
	URL          string `json:"url"`
	FileID       string `json:"fileId"`
	Deduplicated string `json:"deduplicated"`
	ResumedFrom  int64  `json:"resumedFrom"`
	Accepted     int64  `json:"accepted"`
}

// writeRandomFile writes n random bytes to a new file and returns its path
// and SHA-256.
func writeRandomFile(t *testing.T, n int) (string, string) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	path := filepath.Join(t.TempDir(), fmt.Sprintf("source-%d.bin", n))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return path, hex.EncodeToString(s[:])
}

// fileSHA256 returns the sha256 the API lists for the file id.
func fileSHA256(t *testing.T, baseURL, id string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", baseURL+"/v1/files/"+url.PathEscape(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var f struct {
		SHA256 string `json:"sha256"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/files/%s: %d", id, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		t.Fatal(err)
	}
	return f.SHA256
}

func parseTusResult(t *testing.T, out []byte) tusResult {
	t.Helper()
	var r tusResult
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("tus-upload.mjs output %q: %v", out, err)
	}
	return r
}

// TestTusJSClient uploads with the real tus-js-client (e2e/, pinned by its
// lockfile) against the real filehub binary: 50 MiB in 5 MiB chunks, the
// same with parallelUploads: 4 (tus concatenation), and an upload whose
// server is killed with SIGKILL midway and that is resumed from its stored
// URL after a restart. Each must end as a file whose SHA-256 is the
// source's.
func TestTusJSClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary and Node")
	}
	node, e2eDir := nodetest.Require(t)
	bin := buildBinary(t)
	const size = 50 << 20

	t.Run("Chunks5MiB", func(t *testing.T) {
		p := StartProcess(t, bin, t.TempDir())
		src, sum := writeRandomFile(t, size)
		out := nodetest.Run(t, 3*time.Minute, []string{"FILEHUB_URL=" + p.URL, "FILEHUB_KEY=" + testKey, "FILE=" + src,
			"CHUNK_SIZE=" + strconv.Itoa(5<<20)}, "tus-upload.mjs")
		r := parseTusResult(t, out)
		if !r.OK || !strings.HasPrefix(r.FileID, "f_") || r.Deduplicated != "false" {
			t.Fatalf("tus-js-client: %+v", r)
		}
		if got := fileSHA256(t, p.URL, r.FileID); got != sum {
			t.Fatalf("file sha256 %s, want %s", got, sum)
		}
	})

	t.Run("Parallel4", func(t *testing.T) {
		p := StartProcess(t, bin, t.TempDir())
		src, sum := writeRandomFile(t, size)
		out := nodetest.Run(t, 3*time.Minute, []string{"FILEHUB_URL=" + p.URL, "FILEHUB_KEY=" + testKey, "FILE=" + src,
			"CHUNK_SIZE=" + strconv.Itoa(5<<20), "PARALLEL=4"}, "tus-upload.mjs")
		r := parseTusResult(t, out)
		if !r.OK || !strings.HasPrefix(r.FileID, "f_") {
			t.Fatalf("tus-js-client with parallelUploads 4: %+v", r)
		}
		if got := fileSHA256(t, p.URL, r.FileID); got != sum {
			t.Fatalf("file sha256 %s, want %s", got, sum)
		}
	})

	t.Run("KillResume", func(t *testing.T) {
		testTusKillResume(t, bin, node, e2eDir, size)
	})
}

// testTusKillResume starts an upload in 1 MiB chunks, kills the server
// with SIGKILL once the client has been told some offset, restarts it on
// the same data dir and port, checks that the acknowledged offset survived,
// and resumes from the URL the client stored.
func testTusKillResume(t *testing.T, bin, node, e2eDir string, size int) {
	dataDir := t.TempDir()
	p := StartProcess(t, bin, dataDir)
	src, sum := writeRandomFile(t, size)
	urlFile := filepath.Join(t.TempDir(), "upload-url")
	cmd := exec.CommandContext(t.Context(), node, "tus-upload.mjs")
	cmd.Dir = e2eDir
	cmd.Env = append(os.Environ(), "FILEHUB_URL="+p.URL, "FILEHUB_KEY="+testKey, "FILE="+src,
		"CHUNK_SIZE="+strconv.Itoa(1<<20), "URL_FILE="+urlFile, "NO_RETRY=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var told atomic.Int64
	reached := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var n int64
			if _, err := fmt.Sscanf(sc.Text(), "accepted %d", &n); err == nil {
				if told.Swap(n) < 10<<20 && n >= 10<<20 {
					close(reached)
				}
			}
		}
	}()
	select {
	case <-reached:
	case <-scanned:
		t.Fatalf("the client ended before 10 MiB were acknowledged: %s", stdout.String())
	case <-time.After(2 * time.Minute):
		t.Fatal("the client did not get 10 MiB acknowledged in 2 minutes")
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	<-scanned
	if err := cmd.Wait(); err == nil {
		t.Fatalf("the client succeeded although its server was killed: %s", stdout.String())
	}
	acked := told.Load()
	stored, err := os.ReadFile(urlFile)
	if err != nil {
		t.Fatalf("the client stored no upload URL: %v", err)
	}
	uploadURL := string(stored)

	// Same data dir, same port: the stored URL is valid again.
	_, port, err := net.SplitHostPort(strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	p2 := StartProcess(t, bin, dataDir, "--listen", "127.0.0.1:"+port)
	req, err := http.NewRequestWithContext(t.Context(), "HEAD", uploadURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Tus-Resumable", "1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	off, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("HEAD after the restart: %d, Upload-Offset %q", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	// Every offset the client was told is durable; the server never
	// claims more than the file.
	if off < acked || off > int64(size) {
		t.Fatalf("offset after SIGKILL and restart = %d, but the client had been told %d", off, acked)
	}
	t.Logf("killed after %d bytes acknowledged; %d durable after the restart", acked, off)

	out := nodetest.Run(t, 3*time.Minute, []string{"FILEHUB_URL=" + p2.URL, "FILEHUB_KEY=" + testKey, "FILE=" + src,
		"CHUNK_SIZE=" + strconv.Itoa(5<<20), "UPLOAD_URL=" + uploadURL}, "tus-upload.mjs")
	r := parseTusResult(t, out)
	if !r.OK || r.ResumedFrom != off || !strings.HasPrefix(r.FileID, "f_") {
		t.Fatalf("resumed upload: %+v, want it resumed from %d", r, off)
	}
	if got := fileSHA256(t, p2.URL, r.FileID); got != sum {
		t.Fatalf("file sha256 after kill and resume %s, want %s", got, sum)
	}
}
