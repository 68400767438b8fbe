package cleanup_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/files"
)

// TestStress runs uploads of new and duplicate content, deletes, restores
// and purges concurrently with cleanup looping at tiny grace periods on the
// real clock, so every race between a sweep and an upload that revives or
// re-creates the same content gets its chance. Afterwards every live file
// must download with its hash, no blob record may have lost its object, and
// every deletion must be in the audit log.
func TestStress(t *testing.T) {
	duration := 2 * time.Second
	if testing.Short() {
		duration = 300 * time.Millisecond
	}
	e := newEnv(t)
	var err error
	// The file service and cleanup on the real clock: grace periods of a
	// millisecond expire while the operations run.
	e.files, err = files.New(e.meta, e.blobs, files.Config{MinFreeSpace: -1, TrashGrace: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := cleanup.New(t.Context(), e.meta, e.blobs, cleanup.Config{
		TrashGrace: time.Millisecond, BlobGrace: time.Millisecond,
		Interval: 5 * time.Millisecond, Jitter: -1,
		MaxDeleteFraction: 2, // no cap: deleting most blobs is the point here
		Registerer:        prometheus.NewRegistry(),
		Logger:            discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	loopCtx, stopLoop := context.WithCancel(context.Background())
	loopDone := make(chan error, 1)
	go func() { loopDone <- svc.Loop(loopCtx) }()

	// A small pool of contents, so uploads often deduplicate against, or
	// revive, blobs the cleanup is about to sweep.
	pool := make([]string, 8)
	for i := range pool {
		pool[i] = fmt.Sprintf("shared content %d %s", i, strings.Repeat("s", i*100))
	}
	var (
		mu      sync.Mutex
		live    []string // file IDs, possibly stale
		deleted = map[string]bool{}
		wg      sync.WaitGroup
	)
	ctx := filehub.WithActor(context.Background(), "k_stress")
	deadline := time.Now().Add(duration)
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := 0; time.Now().Before(deadline); i++ {
				pick := func() string {
					mu.Lock()
					defer mu.Unlock()
					if len(live) == 0 {
						return ""
					}
					return live[rng.IntN(len(live))]
				}
				switch op := rng.IntN(10); {
				case op < 5:
					content := pool[rng.IntN(len(pool))]
					if op == 0 {
						content = fmt.Sprintf("unique %d/%d", w, i)
					}
					up, err := e.files.Upload(ctx, strings.NewReader(content), "s.txt", "k_stress")
					if err != nil {
						t.Errorf("Upload: %v", err)
						return
					}
					mu.Lock()
					live = append(live, up.ID)
					mu.Unlock()
				case op < 7:
					if id := pick(); id != "" {
						if _, err := e.files.Delete(ctx, id); err == nil {
							mu.Lock()
							deleted[id] = true
							mu.Unlock()
						} else if filehub.ErrorCode(err) != filehub.ENOTFOUND {
							t.Errorf("Delete: %v", err)
						}
					}
				case op < 9:
					if id := pick(); id != "" {
						if _, err := e.files.Restore(ctx, id); err != nil && filehub.ErrorCode(err) != filehub.ENOTFOUND {
							t.Errorf("Restore: %v", err)
						}
					}
				default:
					if id := pick(); id != "" {
						if err := e.files.Discard(ctx, id); err != nil && filehub.ErrorCode(err) != filehub.ENOTFOUND {
							t.Errorf("Discard: %v", err)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	stopLoop()
	if err := <-loopDone; err != nil {
		t.Fatalf("Loop: %v", err)
	}
	// One more run so the checks below also see a quiet store.
	final, err := svc.Run(context.Background(), cleanup.RunOptions{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}

	n := e.mustCheckLive()
	if kr := final.Kinds[cleanup.KindMissingObject]; kr.Found != 0 {
		t.Errorf("blob records without their object after the stress: %+v", kr.Targets)
	}

	audit := e.audit(filehub.AuditFilter{})
	audited := map[string]map[string]bool{}
	for _, a := range audit {
		if audited[a.Action] == nil {
			audited[a.Action] = map[string]bool{}
		}
		audited[a.Action][a.Target] = true
	}
	for id := range deleted {
		if !audited[filehub.AuditFileDeleted][id] {
			t.Errorf("soft delete of %s not audited", id)
		}
	}
	var after int64
	purged := 0
	for {
		events, err := e.meta.ListEvents(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			if ev.Type == filehub.EventFilePurged {
				purged++
				if !audited[filehub.AuditFilePurged][ev.File.ID] {
					t.Errorf("purge of %s not audited", ev.File.ID)
				}
			}
		}
		if len(events) < 1000 {
			break
		}
		after = events[len(events)-1].ID
	}
	swept := len(audited[filehub.AuditBlobSwept])
	if swept == 0 || purged == 0 {
		t.Errorf("the stress did not exercise cleanup: %d blobs swept, %d files purged", swept, purged)
	}
	t.Logf("%d live files intact; %d soft deletes, %d purges, %d sweeps, %d orphan objects deleted, %d audit entries",
		n, len(deleted), purged, swept, len(audited[filehub.AuditObjectDeleted]), len(audit))
}
