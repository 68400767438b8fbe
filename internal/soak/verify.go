package soak

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os/exec"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
)

// verify checks, after the load: memory and goroutines, every watcher's
// stream, every acknowledged live file, and `filehub check --read-data`.
func (r *run) verify(ctx context.Context) {
	defer func() {
		for _, w := range r.watchers {
			w.stop()
		}
	}()
	if n, err := goroutines(ctx, r.url, r.key); err == nil {
		r.rep.GoroutinesEnd = n
	}
	r.memory()
	r.watchStreams(ctx)
	r.verifyFiles(ctx)
	r.check(ctx)
}

// memory computes the final process's RSS slope over the last half of its
// samples, by least squares.
func (r *run) memory() {
	r.rep.RSS = r.rss
	if len(r.rss) == 0 {
		r.rep.problem("no RSS samples of the server")
		return
	}
	pid := r.rss[len(r.rss)-1].Pid
	var last []Sample
	for _, s := range r.rss {
		if s.Pid == pid {
			last = append(last, s)
		}
	}
	half := last[len(last)/2:]
	if len(half) < 4 {
		return
	}
	var sx, sy, sxx, sxy float64
	for _, s := range half {
		x, y := s.At.Minutes(), float64(s.RSS)/(1<<20)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(half))
	if d := n*sxx - sx*sx; d > 0 {
		r.rep.RSSSlope = (n*sxy - sx*sy) / d
	}
	r.rep.RSSMean = sy / n
	r.rep.RSSWindow = half[len(half)-1].At - half[0].At
	r.rep.RSSGrowth = r.rep.RSSSlope * r.rep.RSSWindow.Minutes()
}

// watchStreams uploads a marker and waits until every watcher has printed
// its event, then checks that each printed the IDs 1, 2, 3, … without a
// gap or a repeat: every event once, in order.
func (r *run) watchStreams(ctx context.Context) {
	var marker *api.Upload
	deadline := time.Now().Add(60 * time.Second)
	for {
		b := []byte("soak marker " + time.Now().String())
		up, err := r.client.Upload(ctx, "marker.txt", bytes.NewReader(b), int64(len(b)))
		if err == nil {
			marker = up
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.rep.problem("marker upload: %v", err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, w := range r.watchers {
		var markerID int64
		for markerID == 0 {
			for _, ev := range w.snapshot() {
				if ev.Type == filehub.EventFileCreated && ev.File != nil && ev.File.ID == marker.ID {
					markerID = ev.ID
				}
			}
			if markerID != 0 {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				r.rep.problem("watcher %d did not print the marker's event within 60s (printed %d events)", i, len(w.snapshot()))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		r.rep.LastEventID = max(r.rep.LastEventID, markerID)
		evs := w.snapshot()
		r.rep.WatcherEvents = append(r.rep.WatcherEvents, len(evs))
		for j, ev := range evs {
			if ev.ID != int64(j+1) {
				r.rep.problem("watcher %d: event %d of its stream has id %d, want %d (a gap, a repeat or a reordering)", i, j, ev.ID, j+1)
				break
			}
		}
		w.mu.Lock()
		if len(w.bad) > 0 {
			r.rep.problem("watcher %d printed %d lines that are not events, first %q", i, len(w.bad), w.bad[0])
		}
		w.mu.Unlock()
	}
}

// verifyFiles downloads every acknowledged live file whole and compares
// its hash.
func (r *run) verifyFiles(ctx context.Context) {
	for _, files := range r.files {
		for id, f := range files {
			if f.state != live {
				continue
			}
			h := sha256.New()
			if _, err := r.client.DownloadTo(ctx, id, h); err != nil {
				r.rep.problem("acknowledged live file %s: %v", id, err)
				continue
			}
			if got, want := hex.EncodeToString(h.Sum(nil)), sum(content(f.k)); got != want {
				r.rep.problem("acknowledged live file %s: content %s, want %s", id, got, want)
				continue
			}
			r.rep.FilesVerified++
		}
	}
}

// check runs `filehub check --read-data` through the server.
func (r *run) check(ctx context.Context) {
	cmd := exec.CommandContext(ctx, r.cfg.Bin, "check", "--read-data", "--json", "--server", r.url, "--key", r.key)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var rep api.CheckReport
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr == nil {
		r.rep.Check = &rep
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.rep.problem("filehub check --read-data: exit %d: %s", exit.ExitCode(), bytes.TrimSpace(stderr.Bytes()))
	case err != nil:
		r.rep.problem("filehub check: %v", err)
	}
}
