package server

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/auth"
	"github.com/filehub/filehub/internal/testlog"
	"github.com/filehub/filehub/sqlite"
)

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInstancesShareSQLite runs the heartbeat service on a SQLite store
// while two other instances come and go (heartbeats written beside it):
// the limiters' share and the gauge follow the count 1 → 3 → 1, and the
// service removes its own row when it stops.
func TestInstancesShareSQLite(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "filehub.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	const interval = 100 * time.Millisecond
	httpLimits, mcpLimits := auth.NewLimiters(30, 60, 100), auth.NewLimiters(9, 18, 100)
	reg := prometheus.NewRegistry()
	in := newInstances(db, "self", interval, []*auth.Limiters{httpLimits, nil, mcpLimits}, reg, testlog.New(t))
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- in.Run(runCtx) }()

	shares := func(n int) func() bool {
		return func() bool {
			return httpLimits.Share() == n && mcpLimits.Share() == n && testutil.ToFloat64(in.count) == float64(n)
		}
	}
	live := func() int {
		n, err := db.LiveInstances(ctx, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	waitFor(t, "this instance's first heartbeat", func() bool { return live() == 1 })
	waitFor(t, "a share of 1", shares(1))

	// Two more instances heartbeat at the same interval.
	others := []string{"b", "c"}
	var wg sync.WaitGroup
	othersCtx, othersStop := context.WithCancel(ctx)
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			for _, id := range others {
				if err := db.HeartbeatInstance(othersCtx, id, time.Now()); err != nil && othersCtx.Err() == nil {
					t.Errorf("heartbeat of %s: %v", id, err)
				}
			}
			select {
			case <-othersCtx.Done():
				return
			case <-tick.C:
			}
		}
	})
	waitFor(t, "a share of 3", shares(3))
	if lim := httpLimits.Get("k"); lim.Limit() != 10 || lim.Burst() != 20 {
		t.Errorf("a key's limiter at share 3: %g/s, burst %d; want 10/s, burst 20", lim.Limit(), lim.Burst())
	}

	// b stops gracefully (its row goes), c dies (its row ages out).
	othersStop()
	wg.Wait()
	if err := db.RemoveInstance(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a share of 1 again", shares(1))
	if lim := httpLimits.Get("k"); lim.Limit() != 30 || lim.Burst() != 60 {
		t.Errorf("a key's limiter back at share 1: %g/s, burst %d; want 30/s, burst 60", lim.Limit(), lim.Burst())
	}

	stop()
	if err := <-runErr; err != nil {
		t.Errorf("Run = %v", err)
	}
	// Only c's stale row is left: the service removed its own.
	n, err := db.LiveInstances(ctx, time.Time{})
	if err != nil || n != 1 {
		t.Errorf("after Run: %d instances (%v), want only the dead one", n, err)
	}
}

// flakyInstances is an InstanceStore whose calls fail while down is set.
type flakyInstances struct {
	mu    sync.Mutex
	down  bool
	live  int
	beats int
}

var errDown = errors.New("store down")

func (f *flakyInstances) HeartbeatInstance(context.Context, string, time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beats++
	if f.down {
		return errDown
	}
	return nil
}

func (f *flakyInstances) LiveInstances(context.Context, time.Time) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errDown
	}
	return f.live, nil
}

func (f *flakyInstances) RemoveInstance(context.Context, string) error { return nil }

func (f *flakyInstances) set(down bool, live int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down, f.live = down, live
	return f.beats
}

func (f *flakyInstances) beatCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.beats
}

var _ filehub.InstanceStore = (*flakyInstances)(nil)

// While the store cannot be reached the shares stay as they were (the
// cluster did not shrink because this instance cannot see it), and a
// count of 0 — a store that lost this instance's row — is taken as 1.
func TestInstancesStoreDown(t *testing.T) {
	store := &flakyInstances{live: 4}
	limits := auth.NewLimiters(40, 80, 100)
	in := newInstances(store, "self", 10*time.Millisecond, []*auth.Limiters{limits}, prometheus.NewRegistry(), testlog.New(t))
	ctx, stop := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- in.Run(ctx) }()
	defer func() {
		stop()
		<-runErr
	}()

	waitFor(t, "a share of 4", func() bool { return limits.Share() == 4 })
	beats := store.set(true, 1)
	waitFor(t, "heartbeats failing", func() bool { return store.beatCount() >= beats+3 })
	if got := limits.Share(); got != 4 {
		t.Errorf("share while the store is down = %d, want 4 (kept)", got)
	}
	store.set(false, 0)
	waitFor(t, "a share of 1", func() bool { return limits.Share() == 1 })
}
