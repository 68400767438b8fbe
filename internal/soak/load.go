package soak

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/filehub/filehub"
)

// fileState is what a worker knows of one of its files.
type fileState int

const (
	live    fileState = iota // acknowledged upload or restore
	trashed                  // acknowledged delete
)

type file struct {
	k     uint64 // content number
	state fileState
}

// watcher is one `filehub watch --json` process and the events it printed.
type watcher struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	events []filehub.Event
	bad    []string // lines that are not events
}

func (w *watcher) snapshot() []filehub.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]filehub.Event(nil), w.events...)
}

// startWatcher runs `filehub watch` against the proxy.
func (r *run) startWatcher() (*watcher, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, r.cfg.Bin, "watch", "--json", "--server", "http://"+r.proxy.Addr(), "--key", r.key)
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	w := &watcher{cmd: cmd, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var ev filehub.Event
			w.mu.Lock()
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.ID == 0 {
				w.bad = append(w.bad, sc.Text())
			} else {
				w.events = append(w.events, ev)
			}
			w.mu.Unlock()
		}
		_ = cmd.Wait()
	}()
	return w, nil
}

func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

// load runs the workers, the killer, the proxy's cutter and the memory
// sampler for the configured duration, then leaves the server running.
func (r *run) load(ctx context.Context) {
	loadCtx, stop := context.WithTimeout(ctx, r.cfg.Duration)
	defer stop()
	var wg sync.WaitGroup
	for i := range r.cfg.Watchers {
		w, err := r.startWatcher()
		if err != nil {
			r.rep.problem("start watcher %d: %v", i, err)
			continue
		}
		r.watchers = append(r.watchers, w)
	}
	r.files = make([]map[string]*file, r.cfg.Workers)
	for i := range r.cfg.Workers {
		r.files[i] = map[string]*file{}
		rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(i)))
		wg.Go(func() { r.worker(loadCtx, i, rng) })
	}
	wg.Go(func() { r.killer(loadCtx) })
	wg.Go(func() { r.cutter(loadCtx) })
	wg.Go(func() { r.sampler(loadCtx) })
	wg.Wait()
}

// killer SIGKILLs and restarts the server at random intervals until the
// last third of the run.
func (r *run) killer(ctx context.Context) {
	if r.cfg.KillEvery < 0 {
		return
	}
	rng := rand.New(rand.NewPCG(r.cfg.Seed, 0xdead))
	until := r.start.Add(r.cfg.Duration * 2 / 3)
	for {
		d := r.cfg.KillEvery/2 + time.Duration(rng.Int64N(int64(r.cfg.KillEvery)))
		if time.Now().Add(d).After(until) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		if err := r.srv.restart(context.WithoutCancel(ctx)); err != nil {
			r.rep.problem("restart: %v", err)
			return
		}
	}
}

// cutter cuts the watchers' connections every CutEvery.
func (r *run) cutter(ctx context.Context) {
	t := time.NewTicker(r.cfg.CutEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.proxy.CutAll()
		}
	}
}

// sampler records the server's RSS every 250ms, and its goroutines once
// the kills have stopped (two thirds into the run).
func (r *run) sampler(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	quiet := r.start.Add(r.cfg.Duration * 2 / 3)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pid := r.srv.pid()
		if v, err := rss(pid); err == nil {
			r.rss = append(r.rss, Sample{At: time.Since(r.start), RSS: v, Pid: pid})
		}
		if r.rep.GoroutinesMid == 0 && time.Now().After(quiet) {
			if n, err := goroutines(ctx, r.url, r.key); err == nil {
				r.rep.GoroutinesMid = n
			}
		}
	}
}

// worker runs operations on its own files until ctx ends.
func (r *run) worker(ctx context.Context, id int, rng *rand.Rand) {
	files := r.files[id]
	var ks []uint64 // contents this worker has uploaded, for duplicates
	for ctx.Err() == nil {
		var err error
		switch p := rng.IntN(100); {
		case p < 45 || len(files) == 0:
			k := rng.Uint64()
			if len(ks) > 0 && rng.IntN(100) < 30 {
				k = ks[rng.IntN(len(ks))]
				r.count(&r.rep.Duplicates)
			}
			err = r.upload(ctx, files, k)
			ks = append(ks, k)
		case p < 75:
			err = r.rangedDownload(ctx, files, rng)
		case p < 88:
			err = r.deleteOne(ctx, files, rng)
		default:
			err = r.restoreOne(ctx, files, rng)
		}
		r.ops.Add(1)
		if err != nil && ctx.Err() == nil {
			r.count(&r.rep.Errors)
			// The server is probably restarting: let it.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

func (r *run) count(n *int64) {
	r.rep.mu.Lock()
	*n++
	r.rep.mu.Unlock()
}

func pick(files map[string]*file, state fileState, rng *rand.Rand) (string, *file) {
	var ids []string
	for id, f := range files {
		if f.state == state {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return "", nil
	}
	// Map order is random but not uniform enough to matter; sort-free
	// pick by index keeps it cheap.
	id := ids[rng.IntN(len(ids))]
	return id, files[id]
}

func (r *run) upload(ctx context.Context, files map[string]*file, k uint64) error {
	b := content(k)
	up, err := r.client.Upload(ctx, "soak-"+strconv.FormatUint(k, 36)+".bin", bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return err // not acknowledged: it may or may not exist, and is not tracked
	}
	if up.SHA256 != sum(b) || up.Size != int64(len(b)) {
		r.rep.problem("upload of content %d acknowledged with sha256 %s size %d, want %s %d", k, up.SHA256, up.Size, sum(b), len(b))
	}
	files[up.ID] = &file{k: k, state: live}
	r.count(&r.rep.Uploads)
	return nil
}

// rangedDownload reads a random range of a live file and checks its hash.
func (r *run) rangedDownload(ctx context.Context, files map[string]*file, rng *rand.Rand) error {
	id, f := pick(files, live, rng)
	if f == nil {
		return nil
	}
	b := content(f.k)
	from := rng.IntN(len(b))
	to := from + rng.IntN(len(b)-from)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/v1/files/"+id+"/content", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.key)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode >= 500:
		return fmt.Errorf("download: %s", resp.Status)
	case resp.StatusCode != http.StatusPartialContent:
		r.rep.problem("ranged download of live file %s: %s %q", id, resp.Status, bytes.TrimSpace(got[:min(len(got), 200)]))
	case sha256.Sum256(got) != sha256.Sum256(b[from:to+1]):
		r.rep.problem("ranged download of file %s bytes %d-%d: content differs", id, from, to)
	default:
		r.count(&r.rep.Downloads)
	}
	return nil
}

func (r *run) deleteOne(ctx context.Context, files map[string]*file, rng *rand.Rand) error {
	id, f := pick(files, live, rng)
	if f == nil {
		return nil
	}
	if _, err := r.client.Delete(ctx, id); err != nil {
		if filehub.ErrorCode(err) == filehub.ENOTFOUND {
			r.rep.problem("delete of live file %s: %v", id, err)
		}
		delete(files, id) // its state is unknown now
		return err
	}
	f.state = trashed
	r.count(&r.rep.Deletes)
	return nil
}

func (r *run) restoreOne(ctx context.Context, files map[string]*file, rng *rand.Rand) error {
	id, f := pick(files, trashed, rng)
	if f == nil {
		return nil
	}
	if _, err := r.client.Restore(ctx, id); err != nil {
		delete(files, id) // purged by the cleanup (ENOTFOUND), or unknown
		if filehub.ErrorCode(err) == filehub.ENOTFOUND {
			return nil
		}
		return err
	}
	f.state = live
	r.count(&r.rep.Restores)
	return nil
}
