package cleanup_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/sqlite"
)

// hookedStore is the test's store with hooks in front of some methods, for
// a second instance to act at the worst moment of the first.
type hookedStore struct {
	*sqlite.DB
	beforeSweep func()
	renewals    atomic.Int64
	renewMu     sync.Mutex // held by a test to keep renewals out
	lost        atomic.Bool
}

func (h *hookedStore) SweepBlob(ctx context.Context, f filehub.Fence, sum string, before time.Time,
	del func(ctx context.Context) error, audit filehub.AuditEntry) (bool, error) {
	if h.beforeSweep != nil {
		h.beforeSweep()
	}
	return h.DB.SweepBlob(ctx, f, sum, before, del, audit)
}

func (h *hookedStore) RenewLease(ctx context.Context, f filehub.Fence, now time.Time, ttl time.Duration) error {
	h.renewMu.Lock()
	defer h.renewMu.Unlock()
	h.renewals.Add(1)
	err := h.DB.RenewLease(ctx, f, now, ttl)
	if errors.Is(err, filehub.ErrLeaseLost) {
		h.lost.Store(true)
	}
	return err
}

func (e *env) serviceOn(meta filehub.MetaStore, mod func(*cleanup.Config)) *cleanup.Service {
	e.t.Helper()
	cfg := cleanup.Config{Now: e.clock.Now, Registerer: prometheus.NewRegistry(), Logger: discard}
	if mod != nil {
		mod(&cfg)
	}
	s, err := cleanup.New(e.t.Context(), meta, e.blobs, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// deletionsByRun returns, per run, how many blob.swept, object.deleted and
// file.purged audit entries name each target: the deletions each run made.
func (e *env) deletionsByRun() map[int64]map[string]int {
	e.t.Helper()
	out := make(map[int64]map[string]int)
	for _, action := range []string{filehub.AuditBlobSwept, filehub.AuditObjectDeleted, filehub.AuditFilePurged} {
		for _, a := range e.audit(filehub.AuditFilter{Action: action}) {
			if out[a.RunID] == nil {
				out[a.RunID] = make(map[string]int)
			}
			out[a.RunID][a.Target]++
		}
	}
	return out
}

// TestStalledRunIsFencedInTheStore is issue 15's overlap: instance A plans,
// then stalls inside its sweep for longer than the lease (here: the clock
// jumps past the TTL just before A's first deletion, and no renewal
// happened). Instance B takes the expired lease and is still running when
// A's stale deletion reaches the store. The fence refuses it and A's run
// stops; B then deletes everything due, each target once, and every live
// file is intact. Without the fence, A sweeps while B holds the lease.
func TestStalledRunIsFencedInTheStore(t *testing.T) {
	e := newEnv(t)
	p := e.plantAll()
	var live []*filehub.File
	for i := range 3 {
		live = append(live, e.upload("live "+string(rune('a'+i))))
	}
	e.clock.Advance(8 * day)

	bHolds, releaseB := make(chan struct{}), make(chan struct{})
	b := e.service(func(c *cleanup.Config) {
		c.InstanceID = "b"
		c.BeforePhase = func(ph string) error {
			if ph == cleanup.PhasePlan {
				close(bHolds)
				<-releaseB
			}
			return nil
		}
	})
	type result struct {
		r   *cleanup.Report
		err error
	}
	bDone := make(chan result, 1)
	hooked := &hookedStore{DB: e.meta}
	started := false
	hooked.beforeSweep = func() {
		if started {
			return
		}
		started = true
		e.clock.Advance(cleanup.DefaultLeaseTTL + time.Second)
		go func() {
			r, err := b.Run(context.Background(), cleanup.RunOptions{Trigger: "test"})
			bDone <- result{r, err}
		}()
		<-bHolds // B holds the lease now, and A goes on with its sweep
	}
	a := e.serviceOn(hooked, func(c *cleanup.Config) { c.InstanceID = "a" })
	aReport, aErr := a.Run(context.Background(), cleanup.RunOptions{Trigger: "test"})
	close(releaseB)
	if !started {
		t.Fatal("A never reached its sweep")
	}
	bRes := <-bDone

	if bRes.err != nil || bRes.r.Status != filehub.RunOK {
		t.Fatalf("B's run: %+v, %v", bRes.r, bRes.err)
	}
	if !errors.Is(aErr, filehub.ErrLeaseLost) || aReport == nil || aReport.Status != filehub.RunFailed {
		t.Fatalf("A's run = %+v, %v; want failed with ErrLeaseLost", aReport, aErr)
	}
	if kr := aReport.Kinds[cleanup.KindUnreferencedBlob]; kr.Deleted != 0 {
		t.Errorf("A swept %d blobs while B held the lease", kr.Deleted)
	}
	byRun := e.deletionsByRun()
	for target := range byRun[aReport.RunID] {
		// A purged trash and deleted orphans in its earlier phases, while
		// it still held the lease; B must not have found them again.
		if byRun[bRes.r.RunID][target] > 0 {
			t.Errorf("%s deleted by both runs", target)
		}
	}
	for run, targets := range byRun {
		for target, n := range targets {
			if n != 1 {
				t.Errorf("run %d deleted %s %d times", run, target, n)
			}
		}
	}
	if byRun[bRes.r.RunID][p.unref] != 1 || byRun[aReport.RunID][p.unref] != 0 {
		t.Errorf("the unreferenced blob's sweep: %v; want by B (run %d) alone", byRun, bRes.r.RunID)
	}
	for _, f := range append(live, p.live) {
		e.mustDownload(f)
	}
}

// TestStalledRunStopsAtItsNextPhase: A stalls before a phase while B takes
// the expired lease, runs and releases it. The old checkpoint took the
// lease anew (it was free) and went on with A's stale plan; a renewal of
// A's tenure must fail instead.
func TestStalledRunStopsAtItsNextPhase(t *testing.T) {
	e := newEnv(t)
	p := e.plantAll()
	e.clock.Advance(8 * day)
	b := e.service(func(c *cleanup.Config) { c.InstanceID = "b" })
	var bErr error
	ran := false
	a := e.service(func(c *cleanup.Config) {
		c.InstanceID = "a"
		c.BeforePhase = func(ph string) error {
			if ph == cleanup.PhaseTrash && !ran {
				ran = true
				e.clock.Advance(cleanup.DefaultLeaseTTL + time.Second)
				_, bErr = b.Run(context.Background(), cleanup.RunOptions{Trigger: "test"})
			}
			return nil
		}
	})
	r, err := a.Run(context.Background(), cleanup.RunOptions{Trigger: "test"})
	if bErr != nil {
		t.Fatalf("B's run: %v", bErr)
	}
	if !errors.Is(err, filehub.ErrLeaseLost) || r.Status != filehub.RunFailed {
		t.Fatalf("A's run = %s, %v; want failed with ErrLeaseLost", r.Status, err)
	}
	for k, kr := range r.Kinds {
		if kr.Deleted != 0 || kr.Skipped != 0 {
			t.Errorf("A acted on kind %s after losing the lease: %+v", k, kr)
		}
	}
	e.mustDownload(p.live)
}

// TestLongPhaseKeepsTheLease: a phase that lasts twice the lease's TTL
// keeps the lease through the background renewals, so another instance
// cannot start meanwhile (before issue 15 it could: the lease was renewed
// only between phases).
func TestLongPhaseKeepsTheLease(t *testing.T) {
	e := newEnv(t)
	e.plantAll()
	e.clock.Advance(8 * day)
	const ttl = time.Minute
	b := e.service(func(c *cleanup.Config) { c.InstanceID = "b"; c.LeaseTTL = ttl })
	hooked := &hookedStore{DB: e.meta}
	var bErr error
	a := e.serviceOn(hooked, func(c *cleanup.Config) {
		c.InstanceID = "a"
		c.LeaseTTL = ttl
		c.RenewEvery = time.Millisecond // real time; the lease runs on e.clock
		c.BeforePhase = func(ph string) error {
			if ph != cleanup.PhaseSweep {
				return nil
			}
			// The phase lasts 2×TTL by the lease's clock, with renewals
			// happening all along.
			for range 8 {
				e.clock.Advance(ttl / 4)
				n := hooked.renewals.Load()
				waitUntil(t, func() bool { return hooked.renewals.Load() > n+1 })
			}
			_, bErr = b.Run(context.Background(), cleanup.RunOptions{Trigger: "test"})
			return nil
		}
	})
	r := mustRun(t, a, cleanup.RunOptions{Trigger: "test"})
	if filehub.ErrorCode(bErr) != filehub.ECONFLICT || errors.Is(bErr, filehub.ErrLeaseLost) {
		t.Errorf("B's run during A's long phase: %v, want ECONFLICT (a cleanup is already running)", bErr)
	}
	if kr := r.Kinds[cleanup.KindUnreferencedBlob]; kr.Deleted != 1 {
		t.Errorf("A's sweep: %+v, want 1 deleted", kr)
	}
}

// TestBackgroundRenewalStopsARunThatLostItsLease: while a run is inside a
// phase, another holder takes its expired lease (renewals are held off
// meanwhile). The background renewal notices and stops the run: it ends
// failed with ErrLeaseLost and deletes nothing more.
func TestBackgroundRenewalStopsARunThatLostItsLease(t *testing.T) {
	e := newEnv(t)
	e.plantAll()
	e.clock.Advance(8 * day)
	hooked := &hookedStore{DB: e.meta}
	a := e.serviceOn(hooked, func(c *cleanup.Config) {
		c.InstanceID = "a"
		c.RenewEvery = time.Millisecond // real time; the lease runs on e.clock
		c.BeforePhase = func(ph string) error {
			if ph != cleanup.PhaseMark {
				return nil
			}
			hooked.renewMu.Lock()
			e.clock.Advance(cleanup.DefaultLeaseTTL + time.Second)
			_, ok, err := e.meta.AcquireLease(context.Background(), "cleanup", "intruder", e.clock.Now(), time.Hour)
			hooked.renewMu.Unlock()
			if err != nil || !ok {
				t.Errorf("intruder's AcquireLease = %v, %v", ok, err)
			}
			// Only the background renewal can notice before this
			// phase's own checkpoint runs.
			waitUntil(t, hooked.lost.Load)
			return nil
		}
	})
	r, err := a.Run(context.Background(), cleanup.RunOptions{Trigger: "test"})
	if !errors.Is(err, filehub.ErrLeaseLost) || r.Status != filehub.RunFailed {
		t.Fatalf("run = %s, %v; want failed with ErrLeaseLost", r.Status, err)
	}
	if kr := r.Kinds[cleanup.KindUnreferencedBlob]; kr.Deleted != 0 {
		t.Errorf("swept %d blobs after losing the lease", kr.Deleted)
	}
}

// waitUntil polls cond until it holds, failing the test after 10 seconds.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
