package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/client"
	"github.com/filehub/filehub/postgres"
)

// watchProcess is "filehub watch --json" running against a server.
type watchProcess struct {
	mu    sync.Mutex
	lines []string
}

// startWatchJSON runs bin watch --json against url until the test ends.
func startWatchJSON(t *testing.T, bin, url string) *watchProcess {
	t.Helper()
	cmd := exec.Command(bin, "watch", "--json", "--server", url, "--key", testKey)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &watchProcess{}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-read
		cmd.Wait()
		if t.Failed() {
			t.Logf("watch stderr:\n%s", stderr.String())
		}
	})
	return w
}

// events returns the events watch printed so far.
func (w *watchProcess) events(t *testing.T) []filehub.Event {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	evs := make([]filehub.Event, len(w.lines))
	for i, line := range w.lines {
		if err := json.Unmarshal([]byte(line), &evs[i]); err != nil {
			t.Fatalf("watch printed %q: %v", line, err)
		}
	}
	return evs
}

// TestTwoInstances runs two real filehub processes on different ports that
// share one PostgreSQL schema and one bucket, and checks that they act as
// one service: files, dedup and reference counts, events and cleanup runs.
func TestTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	db := mustPostgresSchema(t)
	s3srv := newFakeS3(t)
	bin := buildBinary(t)
	ctx := context.Background()

	dirs := []string{t.TempDir(), t.TempDir()}
	start := func(dir string) *Process {
		return StartProcessEnv(t, bin, dir, s3srv.Env, "--db", db, "--blobs", s3srv.URL, "--cleanup-interval", "0")
	}
	p1 := start(dirs[0])
	p2 := start(dirs[1])
	c1, c2 := NewClient(t, p1.URL, testKey), NewClient(t, p2.URL, testKey)
	// Events are read from the second instance throughout.
	watch := startWatchJSON(t, bin, p2.URL)

	t.Run("a file through one, listed, downloaded and deleted through the other", func(t *testing.T) {
		content := []byte("uploaded through the first instance")
		up, err := c1.Upload(ctx, "hello.txt", bytes.NewReader(content), int64(len(content)))
		if err != nil {
			t.Fatal(err)
		}
		if !listed(t, c2, up.File.ID) {
			t.Fatalf("file %s uploaded through one instance is not listed by the other", up.File.ID)
		}
		var buf bytes.Buffer
		if _, err := c2.DownloadTo(ctx, up.File.ID, &buf); err != nil || !bytes.Equal(buf.Bytes(), content) {
			t.Fatalf("download through the other instance: %v, %q", err, buf.String())
		}
		if _, err := c2.Delete(ctx, up.File.ID); err != nil {
			t.Fatal(err)
		}
		if f, err := c1.Stat(ctx, up.File.ID); filehub.ErrorCode(err) != filehub.ENOTFOUND {
			t.Fatalf("after a delete through the other instance, the first finds %+v, %v; want not found", f, err)
		}
		if listed(t, c1, up.File.ID) {
			t.Error("a file deleted through one instance is still listed by the other")
		}
		// The soft delete is shared too: the first restores it.
		if _, err := c1.Restore(ctx, up.File.ID); err != nil {
			t.Fatalf("restore through the first instance: %v", err)
		}
		if !listed(t, c2, up.File.ID) {
			t.Error("a file restored through one instance is not listed by the other")
		}
	})

	t.Run("identical content uploaded concurrently through both is one blob", func(t *testing.T) {
		content := make([]byte, 256<<10)
		rng := rand.New(rand.NewPCG(5, 6))
		for i := range content {
			content[i] = byte(rng.Uint32())
		}
		const each = 20
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			stored  int
			created int
		)
		for i := range 2 * each {
			c := []*client.Client{c1, c2}[i%2]
			wg.Go(func() {
				up, err := c.Upload(ctx, fmt.Sprintf("same-%02d.bin", i), bytes.NewReader(content), int64(len(content)))
				if err != nil {
					t.Errorf("upload %d: %v", i, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				created++
				if !up.Deduplicated {
					stored++
				}
			})
		}
		wg.Wait()
		if created != 2*each || stored != 1 {
			t.Fatalf("%d uploads succeeded, %d of them stored the content; want %d and 1", created, stored, 2*each)
		}
		sum := sum(content)
		if n := blobRefCount(t, db, sum); n != 2*each {
			t.Errorf("blob reference count %d, want %d", n, 2*each)
		}
		var objects []string
		for _, k := range s3srv.keys(t, "blobs/") {
			if strings.HasSuffix(k, sum) {
				objects = append(objects, k)
			}
		}
		if want := "blobs/" + sum[:2] + "/" + sum; len(objects) != 1 || objects[0] != want {
			t.Errorf("objects of the content: %v, want only %s", objects, want)
		}
		if tmp := s3srv.keys(t, "tmp/"); len(tmp) > 0 {
			t.Errorf("staged objects left in the bucket after every upload finished: %v", tmp)
		}
	})

	t.Run("events written on one are streamed by watch on the other", func(t *testing.T) {
		var ids []string
		for i := range 3 {
			name := fmt.Sprintf("event-%d.txt", i)
			up, err := c1.Upload(ctx, name, strings.NewReader(name), int64(len(name)))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, up.File.ID)
		}
		waitFor(t, "watch on the second instance to print the first one's uploads", func() bool {
			seen := map[string]bool{}
			for _, ev := range watch.events(t) {
				if ev.Type == filehub.EventFileCreated && ev.File != nil {
					seen[ev.File.ID] = true
				}
			}
			for _, id := range ids {
				if !seen[id] {
					return false
				}
			}
			return true
		})
		evs := watch.events(t)
		for i := 1; i < len(evs); i++ {
			if evs[i].ID <= evs[i-1].ID {
				t.Fatalf("watch printed event %d after %d", evs[i].ID, evs[i-1].ID)
			}
		}
	})

	t.Run("one cleanup at a time across instances", func(t *testing.T) {
		// Start runs on both at the same moment until one of them has
		// been refused; every run must either succeed or be refused as
		// "already running".
		var ok, conflicts int
		for round := 0; conflicts == 0 || ok < 2; round++ {
			if round == 30 {
				t.Fatalf("no run refused in %d rounds of simultaneous runs on both instances (%d ran)", round, ok)
			}
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				gate = make(chan struct{})
			)
			for _, c := range []*client.Client{c1, c2} {
				wg.Go(func() {
					<-gate
					rep, err := c.CleanupRun(ctx, api.CleanupRunRequest{})
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil && rep.Status == filehub.RunOK:
						ok++
					case filehub.ErrorCode(err) == filehub.ECONFLICT && strings.Contains(filehub.ErrorMessage(err), "already running"):
						conflicts++
					default:
						t.Errorf("cleanup run: %+v, %v", rep, err)
					}
				})
			}
			close(gate)
			wg.Wait()
			if t.Failed() {
				return
			}
		}

		// The event log, as watch on the second instance printed it,
		// shows the runs one after the other: each run's start is
		// followed by its own finish before any other run starts.
		waitFor(t, "watch to print every cleanup run", func() bool {
			n := 0
			for _, ev := range watch.events(t) {
				if ev.Type == filehub.EventCleanupFinished {
					n++
				}
			}
			return n >= ok
		})
		var running int64
		finished := 0
		for _, ev := range watch.events(t) {
			switch ev.Type {
			case filehub.EventCleanupStarted:
				if running != 0 {
					t.Fatalf("run %d started while run %d was running", ev.Run.ID, running)
				}
				running = ev.Run.ID
			case filehub.EventCleanupFinished:
				if ev.Run.ID != running {
					t.Fatalf("run %d finished while run %d was the one running", ev.Run.ID, running)
				}
				running = 0
				finished++
			}
		}
		if finished != ok {
			t.Errorf("%d runs finished in the event log, %d succeeded", finished, ok)
		}
		runs, err := c1.CleanupRuns(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != ok {
			t.Errorf("%d runs recorded, %d succeeded", len(runs), ok)
		}
		for _, r := range runs {
			if r.Status != filehub.RunOK {
				t.Errorf("run %d: status %s, want %s", r.RunID, r.Status, filehub.RunOK)
			}
		}
	})

	// With PostgreSQL and S3 the data dir is not used: no lock, no files.
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > 0 {
			t.Errorf("data dir %s of a server on shared stores holds %d entries, want none", dir, len(entries))
		}
	}
}

// listed reports whether the live files c lists include id.
func listed(t *testing.T, c *client.Client, id string) bool {
	t.Helper()
	cursor := ""
	for {
		files, next, err := c.List(context.Background(), 1000, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if f.ID == id {
				return true
			}
		}
		if next == "" {
			return false
		}
		cursor = next
	}
}

// blobRefCount reads the reference count of blob sum from the database at
// url.
func blobRefCount(t *testing.T, url, sum string) int64 {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, url, postgres.Config{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, err := db.FindBlob(ctx, sum)
	if err != nil {
		t.Fatal(err)
	}
	return b.RefCount
}
