package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago: the server must come back on the same address after a kill, so
// "127.0.0.1:0" will not do.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestWatchSurvivesSIGKILL runs the real binary twice: "filehub serve",
// killed with SIGKILL three times while files are uploaded, and
// "filehub watch --json" connected to it throughout. Every event must reach
// watch exactly once and in order: ids 1..N with no gap and no duplicate,
// one per acknowledged upload.
func TestWatchSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	addr := freeAddr(t)
	start := func() *Process {
		return StartProcess(t, bin, dataDir, "--listen", addr)
	}
	p := start()
	c := NewClient(t, p.URL, testKey)

	watch := exec.Command(bin, "watch", "--json", "--server", p.URL, "--key", testKey)
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	watch.Stderr = &stderr
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		lines []string
		read  = make(chan struct{})
	)
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		watch.Process.Kill()
		<-read
		watch.Wait()
		if t.Failed() {
			t.Logf("watch stderr:\n%s", stderr.String())
		}
	})

	uploaded := 0
	for round := range 4 {
		for i := range 5 {
			name := fmt.Sprintf("r%d-%d.txt", round, i)
			if _, err := c.Upload(context.Background(), name, strings.NewReader(name), int64(len(name))); err != nil {
				t.Fatalf("upload %s: %v", name, err)
			}
			uploaded++
		}
		if round == 3 {
			break
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		p = start()
	}

	waitFor(t, "watch to print every event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(lines) >= uploaded
	})
	// Give a duplicate, if any were coming, the chance to show up.
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != uploaded {
		t.Fatalf("watch printed %d events for %d uploads", len(lines), uploaded)
	}
	for i, line := range lines {
		var ev struct {
			ID   int64  `json:"id"`
			Type string `json:"type"`
			File struct {
				Name string `json:"name"`
			} `json:"file"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %d is not JSON: %q", i, line)
		}
		if ev.ID != int64(i+1) || ev.Type != "file.created" {
			t.Fatalf("line %d: event %d %s, want event %d file.created", i, ev.ID, ev.Type, i+1)
		}
		if want := fmt.Sprintf("r%d-%d.txt", i/5, i%5); ev.File.Name != want {
			t.Fatalf("event %d is for %s, want %s", ev.ID, ev.File.Name, want)
		}
	}
}
