package cleanup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/cleanup"
)

const day = 24 * time.Hour

// planted is one of each kind of cleanup target, plus a live file.
type planted struct {
	live, trash, missing *filehub.File
	orphan, unref        string
	temp                 string
}

func (e *env) plantAll() planted {
	e.t.Helper()
	ctx := context.Background()
	p := planted{
		live:    e.upload("live content"),
		trash:   e.upload("trashed content"),
		missing: e.upload("content whose object is lost"),
		orphan:  e.plantOrphan("object of a crashed upload"),
		unref:   e.plantUnreferenced("content of a rolled-back upload"),
		temp:    "stage-abandoned",
	}
	if _, err := e.files.Delete(ctx, p.trash.ID); err != nil {
		e.t.Fatal(err)
	}
	if err := e.blobs.Delete(ctx, p.missing.SHA256); err != nil {
		e.t.Fatal(err)
	}
	e.plantTemp(p.temp, e.clock.Now().Add(-time.Hour))
	return p
}

func mustRun(t *testing.T, s *cleanup.Service, opts cleanup.RunOptions) *cleanup.Report {
	t.Helper()
	r, err := s.Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run(%+v): %v", opts, err)
	}
	if r.Status != filehub.RunOK {
		t.Fatalf("Run: status %s, want ok", r.Status)
	}
	return r
}

// counts returns found and deleted of kind k.
func counts(r *cleanup.Report, k cleanup.Kind) (found, deleted int64) {
	if kr := r.Kinds[k]; kr != nil {
		return kr.Found, kr.Deleted
	}
	return -1, -1
}

func checkCounts(t *testing.T, what string, r *cleanup.Report, want map[cleanup.Kind][2]int64) {
	t.Helper()
	for _, k := range cleanup.Kinds {
		f, d := counts(r, k)
		if w := want[k]; f != w[0] || d != w[1] {
			t.Errorf("%s: %s found %d deleted %d, want %d and %d", what, k, f, d, w[0], w[1])
		}
	}
}

func actions(entries []*filehub.AuditEntry) map[string][]string {
	m := make(map[string][]string)
	for _, a := range entries {
		m[a.Action] = append(m[a.Action], a.Target)
	}
	return m
}

func TestEachKindFoundAndDeletedOnlyPastGrace(t *testing.T) {
	e := newEnv(t)
	p := e.plantAll()
	s := e.service(nil)

	// Nothing is past its grace yet; only the missing object, which needs
	// no grace, is found, and it is never deleted.
	r := mustRun(t, s, cleanup.RunOptions{Trigger: "test"})
	checkCounts(t, "run within grace", r, map[cleanup.Kind][2]int64{
		cleanup.KindMissingObject: {1, 0},
	})
	for _, sum := range []string{p.orphan, p.unref, p.trash.SHA256} {
		if !e.objectExists(sum) {
			t.Errorf("object %s deleted within its grace period", sum)
		}
	}
	f, err := e.meta.FindFile(t.Context(), p.missing.ID)
	if err != nil || !f.ContentMissing {
		t.Errorf("file with missing content: %+v, %v; want content_missing", f, err)
	}

	// Past every grace: each kind is found and deleted.
	e.clock.Advance(8 * day)
	r = mustRun(t, s, cleanup.RunOptions{Trigger: "test"})
	checkCounts(t, "run past grace", r, map[cleanup.Kind][2]int64{
		cleanup.KindTrash:            {1, 1},
		cleanup.KindOrphanObject:     {1, 1},
		cleanup.KindUnreferencedBlob: {1, 1},
		cleanup.KindMissingObject:    {1, 0},
		cleanup.KindStaleTemp:        {1, 1},
	})
	if e.objectExists(p.orphan) || e.objectExists(p.unref) {
		t.Errorf("orphan or unreferenced object still there after the run")
	}
	if _, err := e.meta.FindBlob(t.Context(), p.unref); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("unreferenced blob record: %v, want ENOTFOUND", err)
	}
	if _, err := e.meta.FindFile(t.Context(), p.trash.ID); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("expired trash: %v, want purged", err)
	}
	// The purged file's blob became unreferenced just now: kept until its
	// own grace has passed.
	if !e.objectExists(p.trash.SHA256) {
		t.Errorf("blob of the file purged in this run deleted at once")
	}
	if _, err := e.meta.FindBlob(t.Context(), p.missing.SHA256); err != nil {
		t.Errorf("blob record with a missing object: %v; it must never be deleted", err)
	}
	e.mustDownload(p.live)

	e.clock.Advance(day + time.Minute)
	r = mustRun(t, s, cleanup.RunOptions{Trigger: "test"})
	if got := targets(r, cleanup.KindUnreferencedBlob); !slices.Equal(got, []string{"/" + p.trash.SHA256 + "/"}) {
		t.Errorf("third run swept %v, want the purged file's blob", got)
	}
	e.mustDownload(p.live)

	got := actions(e.audit(filehub.AuditFilter{}))
	rolledBack := e.firstPurged(t)
	want := map[string][]string{
		filehub.AuditFileDeleted:   {p.trash.ID},
		filehub.AuditFilePurged:    {rolledBack, p.trash.ID},
		filehub.AuditObjectDeleted: {p.orphan},
		filehub.AuditBlobSwept:     {p.unref, p.trash.SHA256},
		filehub.AuditObjectMissing: {p.missing.SHA256}, // once, not at every run
		filehub.AuditTempRemoved:   {p.temp},
	}
	for action, targets := range want {
		if !slices.Equal(got[action], targets) {
			t.Errorf("audit %s: %v, want %v", action, got[action], targets)
		}
	}
}

// firstPurged returns the ID of the first purged file in the event log (the
// rolled-back upload of plantAll).
func (e *env) firstPurged(t *testing.T) string {
	t.Helper()
	events, err := e.meta.ListEvents(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if ev.Type == filehub.EventFilePurged {
			return ev.File.ID
		}
	}
	t.Fatal("no file.purged event")
	return ""
}

func TestDryRunChangesNothingAndPlansLikeARealRun(t *testing.T) {
	e := newEnv(t)
	p := e.plantAll()
	e.clock.Advance(8 * day)
	s := e.service(nil)

	before := e.dump()
	dry, err := s.Run(t.Context(), cleanup.RunOptions{DryRun: true, Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if after := e.dump(); after != before {
		t.Fatalf("dry run changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if !dry.DryRun || dry.BytesFreed == 0 {
		t.Errorf("dry run report: dry_run %v, bytes_freed %d", dry.DryRun, dry.BytesFreed)
	}
	// The dry run is recorded, so reports can show it.
	if got, err := s.RunByID(t.Context(), dry.RunID); err != nil || !got.DryRun || got.Status != filehub.RunOK {
		t.Errorf("RunByID(dry run) = %+v, %v", got, err)
	}

	real := mustRun(t, s, cleanup.RunOptions{Trigger: "test"})
	for _, k := range cleanup.Kinds {
		if d, r := targets(dry, k), targets(real, k); !slices.Equal(d, r) {
			t.Errorf("%s: dry run targets %v, real run %v", k, d, r)
		}
		df, dd := counts(dry, k)
		rf, rd := counts(real, k)
		if df != rf || dd != rd {
			t.Errorf("%s: dry run found/deleted %d/%d, real run %d/%d", k, df, dd, rf, rd)
		}
	}
	if dry.BytesFreed != real.BytesFreed {
		t.Errorf("dry run would free %d bytes, real run freed %d", dry.BytesFreed, real.BytesFreed)
	}
	if e.objectExists(p.orphan) {
		t.Errorf("the real run after the dry run did not delete the orphan")
	}
}

// walkOnly is a blob store that can list its objects only with their
// size and time (filehub.BlobWalker), as a store without a cheaper listing.
type walkOnly struct {
	filehub.BlobStore
	w filehub.BlobWalker
}

func (s walkOnly) Walk(ctx context.Context, fn func(filehub.BlobInfo) error) error {
	return s.w.Walk(ctx, fn)
}

// TestScanWithBlobWalkerOnly checks that the scan plans alike whether the
// blob store lists sums only (localfs's WalkSums, preferred) or objects
// with their size and time (Walk).
func TestScanWithBlobWalkerOnly(t *testing.T) {
	e := newEnv(t)
	e.plantAll()
	e.clock.Advance(8 * day)
	// An orphan within the grace, whose time only a stat can tell.
	recent := e.plantOrphan("an orphan written just now")
	if err := os.Chtimes(filepath.Join(e.dir, "blobs", recent[:2], recent), e.clock.Now(), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	opts := cleanup.RunOptions{DryRun: true, Trigger: "test"}
	sums := mustRun(t, e.service(nil), opts)
	walk, err := cleanup.New(e.t.Context(), e.meta, walkOnly{e.blobs, e.blobs}, cleanup.Config{
		Now: e.clock.Now, Registerer: prometheus.NewRegistry(), Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	walked := mustRun(t, walk, opts)
	for _, k := range []cleanup.Kind{cleanup.KindOrphanObject, cleanup.KindMissingObject, cleanup.KindUnreferencedBlob} {
		if s, w := targets(sums, k), targets(walked, k); !slices.Equal(s, w) || len(s) == 0 {
			t.Errorf("%s: targets %v with WalkSums, %v with Walk; want the same, not none", k, s, w)
		}
		if s, w := sums.Kinds[k], walked.Kinds[k]; s.Scanned != w.Scanned || s.Found != w.Found || s.BytesFreed != w.BytesFreed {
			t.Errorf("%s: %+v with WalkSums, %+v with Walk", k, s, w)
		}
	}
	if f, _ := counts(sums, cleanup.KindOrphanObject); f != 1 {
		t.Errorf("found %d orphans, want the 1 past the grace", f)
	}
}

func TestSafetyCap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		allowance int
		fraction  float64
		force     bool
		dryRun    bool
		wantErr   bool
	}{
		{"trips", -1, 0.1, false, false, true},
		{"trips in a dry run too", -1, 0.1, false, true, true},
		{"force passes", -1, 0.1, true, false, false},
		{"within the fraction", -1, 0.5, false, false, false},
		{"within the allowance", 8, 0.1, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var live []*filehub.File
			for i := range 12 {
				live = append(live, e.upload("live "+strings.Repeat("x", i)))
			}
			var unref []string
			for i := range 8 {
				unref = append(unref, e.plantUnreferenced("gone "+strings.Repeat("y", i)))
			}
			e.clock.Advance(day + time.Minute)
			s := e.service(func(c *cleanup.Config) {
				c.MinDeleteAllowance = tc.allowance
				c.MaxDeleteFraction = tc.fraction
			})
			r, err := s.Run(t.Context(), cleanup.RunOptions{Force: tc.force, DryRun: tc.dryRun, Trigger: "test"})
			swept := e.audit(filehub.AuditFilter{Action: filehub.AuditBlobSwept})
			if tc.wantErr {
				if filehub.ErrorCode(err) != filehub.ECONFLICT || r == nil || r.Status != filehub.RunRefused {
					t.Fatalf("Run = %+v, %v; want a refused run and ECONFLICT", r, err)
				}
				if !strings.Contains(filehub.ErrorMessage(err), "force") {
					t.Errorf("error %q does not mention force", filehub.ErrorMessage(err))
				}
				for _, sum := range unref {
					if !e.objectExists(sum) {
						t.Errorf("refused run deleted %s", sum)
					}
				}
				if len(swept) != 0 || r.PlannedBlobDeletions != 8 || len(r.Kinds[cleanup.KindUnreferencedBlob].Targets) != 8 {
					t.Errorf("refused run: %d swept, planned %d, %d targets; want 0, 8, 8",
						len(swept), r.PlannedBlobDeletions, len(r.Kinds[cleanup.KindUnreferencedBlob].Targets))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, d := counts(r, cleanup.KindUnreferencedBlob); d != 8 || len(swept) != 8 {
				t.Errorf("deleted %d, audited %d sweeps; want 8", d, len(swept))
			}
			for _, f := range live {
				e.mustDownload(f)
			}
		})
	}
}

func TestCrashBetweenPhasesThenNextRunCompletes(t *testing.T) {
	errCrash := errors.New("simulated crash")
	for _, phase := range []string{cleanup.PhasePlan, cleanup.PhaseTrash, cleanup.PhaseOrphans, cleanup.PhaseMark,
		cleanup.PhaseSweep, cleanup.PhaseMissing, cleanup.PhaseTemp, cleanup.PhaseFinish} {
		t.Run(phase, func(t *testing.T) {
			e := newEnv(t)
			p := e.plantAll()
			var live []*filehub.File
			for i := range 5 {
				live = append(live, e.upload("another live file "+strings.Repeat("z", i)))
			}
			// A dedup file sharing content with a trashed one keeps the
			// blob referenced after the purge.
			shared := e.upload("trashed content")
			e.clock.Advance(8 * day)

			crashing := e.service(func(c *cleanup.Config) {
				c.InstanceID = "crashing"
				c.BeforePhase = func(ph string) error {
					if ph == phase {
						return errCrash
					}
					return nil
				}
			})
			r, err := crashing.Run(t.Context(), cleanup.RunOptions{Trigger: "test"})
			if !errors.Is(err, errCrash) {
				t.Fatalf("crashing run: %v", err)
			}
			crashedRun := r.RunID

			next := e.service(func(c *cleanup.Config) { c.InstanceID = "next" })
			// The dead run's lease blocks others until it expires.
			if _, err := next.Run(t.Context(), cleanup.RunOptions{Trigger: "test"}); filehub.ErrorCode(err) != filehub.ECONFLICT {
				t.Fatalf("run while the crashed run's lease is valid: %v, want ECONFLICT", err)
			}
			e.clock.Advance(cleanup.DefaultLeaseTTL + time.Second)
			mustRun(t, next, cleanup.RunOptions{Trigger: "test"})

			for _, f := range append(live, p.live, shared) {
				e.mustDownload(f)
			}
			if e.objectExists(p.orphan) || e.objectExists(p.unref) {
				t.Errorf("orphan or unreferenced blob left after the next run")
			}
			if _, err := e.meta.FindFile(t.Context(), p.trash.ID); !errors.Is(err, filehub.ErrNotFound) {
				t.Errorf("expired trash not purged after the next run: %v", err)
			}
			if f, err := e.meta.FindFile(t.Context(), p.missing.ID); err != nil || !f.ContentMissing {
				t.Errorf("missing content not flagged after the next run: %+v, %v", f, err)
			}
			old, err := next.RunByID(t.Context(), crashedRun)
			if err != nil || old.Status != filehub.RunInterrupted {
				t.Errorf("crashed run: %+v, %v; want status interrupted", old, err)
			}
		})
	}
}

func TestRevivalBetweenMarkAndSweepSurvives(t *testing.T) {
	e := newEnv(t)
	const content = "content revived by a dedup upload"
	sumU := e.plantUnreferenced(content)
	e.clock.Advance(day + time.Minute)
	var revived *filehub.File
	s := e.service(func(c *cleanup.Config) {
		c.BeforePhase = func(ph string) error {
			if ph == cleanup.PhaseSweep {
				revived = e.upload(content)
			}
			return nil
		}
	})
	r := mustRun(t, s, cleanup.RunOptions{Trigger: "test"})
	if kr := r.Kinds[cleanup.KindUnreferencedBlob]; kr.Found != 1 || kr.Deleted != 0 || kr.Skipped != 1 {
		t.Errorf("unreferenced: %+v; want found 1, deleted 0, skipped 1", kr)
	}
	e.mustDownload(revived)
	skips := e.audit(filehub.AuditFilter{Action: filehub.AuditSkipped})
	if len(skips) != 1 || skips[0].Target != sumU || skips[0].RunID != r.RunID {
		t.Errorf("skip audit: %+v; want one for %s in run %d", skips, sumU, r.RunID)
	}
}

// TestRevivalRecreatesAMissingObject covers a sweep whose object deletion
// happened but whose record deletion did not commit: the next upload of the
// content revives the record and must bring the object back.
func TestRevivalRecreatesAMissingObject(t *testing.T) {
	e := newEnv(t)
	const content = "content whose sweep did not commit"
	sumU := e.plantUnreferenced(content)
	if err := e.blobs.Delete(t.Context(), sumU); err != nil {
		t.Fatal(err)
	}
	f := e.upload(content)
	e.mustDownload(f)
}

func TestLeaseMakesRunsExclusive(t *testing.T) {
	e := newEnv(t)
	entered, release := make(chan struct{}), make(chan struct{})
	a := e.service(func(c *cleanup.Config) {
		c.InstanceID = "a"
		c.BeforePhase = func(ph string) error {
			if ph == cleanup.PhasePlan {
				close(entered)
				<-release
			}
			return nil
		}
	})
	// Two services on one database, as two server processes would be.
	b := e.service(func(c *cleanup.Config) { c.InstanceID = "b" })
	done := make(chan error, 1)
	go func() {
		_, err := a.Run(context.Background(), cleanup.RunOptions{Trigger: "test"})
		done <- err
	}()
	<-entered
	_, err := b.Run(t.Context(), cleanup.RunOptions{Trigger: "test"})
	if filehub.ErrorCode(err) != filehub.ECONFLICT || !strings.Contains(filehub.ErrorMessage(err), "already running") {
		t.Errorf("second run while the first runs: %v, want ECONFLICT a cleanup is already running", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("first run: %v", err)
	}
	mustRun(t, b, cleanup.RunOptions{Trigger: "test"})
}

func TestOnlySelectsKinds(t *testing.T) {
	e := newEnv(t)
	p := e.plantAll()
	e.clock.Advance(8 * day)
	s := e.service(nil)
	r := mustRun(t, s, cleanup.RunOptions{Only: []cleanup.Kind{cleanup.KindOrphanObject}, Trigger: "test"})
	if len(r.Kinds) != 1 || r.Kinds[cleanup.KindOrphanObject].Deleted != 1 {
		t.Errorf("Only orphan_object: kinds %v", r.Kinds)
	}
	if !e.objectExists(p.unref) {
		t.Errorf("a run restricted to orphans deleted an unreferenced blob")
	}
	if _, err := s.Run(t.Context(), cleanup.RunOptions{Only: []cleanup.Kind{"bogus"}}); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("unknown kind: %v, want EINVALID", err)
	}
}

func TestSettings(t *testing.T) {
	e := newEnv(t)
	s := e.service(nil)
	ctx := filehub.WithActor(t.Context(), "k_admin")

	if _, err := s.UpdateSettings(ctx, map[string]string{"blob_grace": "1h", "bogus": "1"}); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("unknown key: %v, want EINVALID", err)
	}
	if _, err := s.UpdateSettings(ctx, map[string]string{"blob_grace": "soon"}); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("bad duration: %v, want EINVALID", err)
	}
	if got := e.audit(filehub.AuditFilter{}); len(got) != 0 {
		t.Fatalf("rejected updates audited: %+v", got)
	}
	st, err := s.UpdateSettings(ctx, map[string]string{"trash_grace": "48h", "max_delete_fraction": "0.5"})
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(st.TrashGrace) != 48*time.Hour || st.MaxDeleteFraction != 0.5 ||
		time.Duration(st.BlobGrace) != cleanup.DefaultBlobGrace {
		t.Errorf("settings after update: %+v", st)
	}
	if s.TrashGrace() != 48*time.Hour {
		t.Errorf("TrashGrace() = %v, want 48h", s.TrashGrace())
	}
	// Persisted: a new service (a restarted server) sees them.
	again, err := e.service(nil).Settings(t.Context())
	if err != nil || again != st {
		t.Errorf("settings of a new service: %+v, %v; want %+v", again, err, st)
	}
	audit := e.audit(filehub.AuditFilter{Action: filehub.AuditSettingChanged})
	if len(audit) != 2 || audit[0].Actor != "k_admin" || audit[0].Target != "max_delete_fraction" {
		t.Errorf("settings audit: %+v", audit)
	}
}

func TestRunsReportsAndEvents(t *testing.T) {
	e := newEnv(t)
	e.plantAll()
	e.clock.Advance(8 * day)
	var seen []string
	s := e.service(func(c *cleanup.Config) {
		c.OnEvent = func(ev string, r *cleanup.Report) { seen = append(seen, ev) }
	})
	dry := mustRun(t, s, cleanup.RunOptions{DryRun: true, Trigger: "cli"})
	real := mustRun(t, s, cleanup.RunOptions{Trigger: "api", Actor: "k_admin"})

	runs, err := s.Runs(t.Context(), 5)
	if err != nil || len(runs) != 2 || runs[0].RunID != real.RunID || runs[1].RunID != dry.RunID {
		t.Fatalf("Runs(5) = %v, %v; want the real run, then the dry run", runs, err)
	}
	if got := targets(runs[0], cleanup.KindOrphanObject); !slices.Equal(got, targets(real, cleanup.KindOrphanObject)) {
		t.Errorf("stored report targets %v, want %v", got, targets(real, cleanup.KindOrphanObject))
	}
	if runs[0].Actor != "k_admin" || runs[0].Trigger != "api" {
		t.Errorf("stored run: actor %q trigger %q", runs[0].Actor, runs[0].Trigger)
	}
	if want := []string{filehub.EventCleanupStarted, filehub.EventCleanupFinished,
		filehub.EventCleanupStarted, filehub.EventCleanupFinished}; !slices.Equal(seen, want) {
		t.Errorf("OnEvent calls %v, want %v", seen, want)
	}
	// Only the real run is in the durable event log.
	events, err := e.meta.ListEvents(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var runEvents []string
	for _, ev := range events {
		if ev.Run != nil {
			if ev.Run.ID != real.RunID || ev.Run.Report != nil {
				t.Errorf("event %s: run %+v", ev.Type, ev.Run)
			}
			runEvents = append(runEvents, ev.Type)
		}
	}
	if !slices.Equal(runEvents, []string{filehub.EventCleanupStarted, filehub.EventCleanupFinished}) {
		t.Errorf("run events in the log: %v", runEvents)
	}
	entries, err := s.Audit(t.Context(), filehub.AuditFilter{RunID: real.RunID})
	if err != nil || len(entries) == 0 {
		t.Fatalf("Audit(run) = %v, %v", entries, err)
	}
	for _, a := range entries {
		if a.Actor != "k_admin" {
			t.Errorf("audit entry of the run by %q, want k_admin", a.Actor)
		}
	}
}
