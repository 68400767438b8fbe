package storetest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filehub/filehub"
)

// RunCleanupStore runs the conformance suite of the cleanup capabilities
// (filehub.AuditLog, EventAppender, CleanupRunStore, SettingsStore,
// LeaseStore, TrashPurger and BlobSweeper, which make up
// filehub.CleanupStore) against the stores returned by newStore (fresh and
// empty per subtest, as for RunMetaStore). It fails at once if the store
// does not implement CleanupStore. AuditOfFileChanges checks MetaStore's
// own audit entries, read back through AuditLog.
func RunCleanupStore(t *testing.T, newStore func(t *testing.T) filehub.MetaStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s filehub.MetaStore, c filehub.CleanupStore)
	}{
		{"AuditOfFileChanges", testCleanupAuditOfFileChanges},
		{"PurgeExpired", testCleanupPurgeExpired},
		{"MarkAndSweep", testCleanupMarkAndSweep},
		{"SweepDeleteFails", testCleanupSweepDeleteFails},
		{"OrphanObject", testCleanupOrphanObject},
		{"Missing", testCleanupMissing},
		{"Runs", testCleanupRuns},
		{"SettingsAndLeases", testCleanupSettingsAndLeases},
		{"LeaseGenerations", testCleanupLeaseGenerations},
		{"Fence", testCleanupFence},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			c, ok := s.(filehub.CleanupStore)
			if !ok {
				t.Fatalf("%T does not implement filehub.CleanupStore", s)
			}
			tc.fn(t, s, c)
		})
	}
}

// mustFence takes the lease "cleanup" for holder "storetest" and returns
// its fence, for the fenced methods.
func mustFence(t *testing.T, c filehub.CleanupStore) filehub.Fence {
	t.Helper()
	f, ok, err := c.AcquireLease(t.Context(), "cleanup", "storetest", time.Now(), time.Hour)
	if err != nil || !ok {
		t.Fatalf("AcquireLease = %+v, %v, %v", f, ok, err)
	}
	return f
}

func mustAudit(t *testing.T, c filehub.CleanupStore, f filehub.AuditFilter) []*filehub.AuditEntry {
	t.Helper()
	a, err := c.ListAudit(t.Context(), f)
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	return a
}

func testCleanupAuditOfFileChanges(t *testing.T, s filehub.MetaStore, c filehub.CleanupStore) {
	ctx := filehub.WithReason(filehub.WithActor(t.Context(), "k_alice"), "api")
	f := metaFile("audited", 0)
	mustCreate(t, s, f)
	at := metaEpoch.Add(time.Hour)
	if _, err := s.SoftDeleteFile(ctx, f.ID, at, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RestoreFile(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeFile(t.Context(), f.ID); err != nil {
		t.Fatal(err)
	}
	got := mustAudit(t, c, filehub.AuditFilter{})
	want := []struct{ action, actor, reason string }{
		{filehub.AuditFileDeleted, "k_alice", "api"},
		{filehub.AuditFileRestored, "k_alice", "api"},
		{filehub.AuditFilePurged, filehub.ActorSystem, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("audit = %d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		a := got[i]
		if a.Action != w.action || a.Actor != w.actor || a.Reason != w.reason || a.Target != f.ID ||
			a.TargetKind != filehub.TargetFile || a.Bytes != f.Size {
			t.Errorf("audit[%d] = %+v, want %s by %s (%q) of %s", i, a, w.action, w.actor, w.reason, f.ID)
		}
	}
	// A failed change audits nothing.
	if _, err := s.RestoreFile(ctx, f.ID); err == nil {
		t.Fatal("RestoreFile of a purged file succeeded")
	}
	if n := len(mustAudit(t, c, filehub.AuditFilter{})); n != len(want) {
		t.Errorf("a failed restore added audit entries: %d", n)
	}
	if got := mustAudit(t, c, filehub.AuditFilter{Action: filehub.AuditFileRestored}); len(got) != 1 {
		t.Errorf("ListAudit(Action) = %d entries, want 1", len(got))
	}
}

func testCleanupPurgeExpired(t *testing.T, s filehub.MetaStore, c filehub.CleanupStore) {
	ctx := t.Context()
	fence := mustFence(t, c)
	due, later, restored := metaFile("due", 0), metaFile("later", 1), metaFile("restored", 2)
	for _, f := range []*filehub.File{due, later, restored} {
		mustCreate(t, s, f)
	}
	now := metaEpoch.Add(24 * time.Hour)
	for _, tc := range []struct {
		f          *filehub.File
		purgeAfter time.Time
	}{{due, now.Add(-time.Minute)}, {later, now.Add(time.Minute)}, {restored, now.Add(-time.Minute)}} {
		if _, err := s.SoftDeleteFile(ctx, tc.f.ID, metaEpoch, tc.purgeAfter); err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.ListExpiredTrash(ctx, now, 0)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListExpiredTrash = %v, %v; want due and restored", fileIDs(list), err)
	}
	if _, err := s.RestoreFile(ctx, restored.ID); err != nil {
		t.Fatal(err)
	}
	audit := filehub.AuditEntry{Time: now, Actor: filehub.ActorSystem, Action: filehub.AuditFilePurged, RunID: 7}
	if _, err := c.PurgeExpiredFile(ctx, fence, due.ID, now, audit); err != nil {
		t.Fatalf("PurgeExpiredFile(due): %v", err)
	}
	_, err = c.PurgeExpiredFile(ctx, fence, restored.ID, now, audit)
	wantCode(t, "PurgeExpiredFile(restored)", err, filehub.ECONFLICT)
	_, err = c.PurgeExpiredFile(ctx, fence, later.ID, now, audit)
	wantCode(t, "PurgeExpiredFile(not yet due)", err, filehub.ECONFLICT)
	_, err = c.PurgeExpiredFile(ctx, fence, due.ID, now, audit)
	wantCode(t, "PurgeExpiredFile(purged)", err, filehub.ENOTFOUND)
	b := mustFindBlob(t, s, due.SHA256)
	if b.RefCount != 0 || b.UnreferencedSince == nil || !b.UnreferencedSince.Equal(now) {
		t.Errorf("blob of the purged file: %+v; want unreferenced since %v", b, now)
	}
	got := mustAudit(t, c, filehub.AuditFilter{RunID: 7})
	if len(got) != 1 || got[0].Target != due.ID || got[0].Action != filehub.AuditFilePurged {
		t.Errorf("run audit = %+v; want one purge of %s", got, due.ID)
	}
}

func testCleanupMarkAndSweep(t *testing.T, s filehub.MetaStore, c filehub.CleanupStore) {
	ctx := t.Context()
	fence := mustFence(t, c)
	gone, revived, kept := metaFile("gone", 0), metaFile("revived", 1), metaFile("kept", 2)
	for _, f := range []*filehub.File{gone, revived, kept} {
		mustCreate(t, s, f)
	}
	for _, f := range []*filehub.File{gone, revived} {
		if _, err := s.PurgeFile(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
	}
	future := time.Now().Add(time.Hour)
	unref, err := c.ListUnreferencedBlobs(ctx, future, "", 0)
	if err != nil || len(unref) != 2 {
		t.Fatalf("ListUnreferencedBlobs = %d, %v; want 2", len(unref), err)
	}
	if n, err := c.CountBlobs(ctx); err != nil || n != 3 {
		t.Errorf("CountBlobs = %d, %v; want 3", n, err)
	}
	marked, err := c.MarkBlobs(ctx, []string{gone.SHA256, revived.SHA256, kept.SHA256}, metaEpoch)
	if err != nil || marked != 2 {
		t.Fatalf("MarkBlobs = %d, %v; want 2 (the referenced one is not marked)", marked, err)
	}
	// A revival between mark and sweep clears the mark and calls place.
	var calls atomicCounter
	g := metaFile("revived", 3)
	if dedup, err := s.CreateFile(ctx, g, calls.place); err != nil || !dedup || calls.n.Load() != 1 {
		t.Fatalf("revival: dedup %v, place calls %d, %v", dedup, calls.n.Load(), err)
	}
	if b := mustFindBlob(t, s, revived.SHA256); b.MarkedAt != nil {
		t.Errorf("revived blob still marked: %+v", b)
	}

	for _, tc := range []struct {
		sum       string
		wantSwept bool
	}{{gone.SHA256, true}, {revived.SHA256, false}, {kept.SHA256, false}} {
		deleted := false
		swept, err := c.SweepBlob(ctx, fence, tc.sum, future, func(context.Context) error { deleted = true; return nil },
			filehub.AuditEntry{Action: filehub.AuditBlobSwept, Actor: filehub.ActorSystem, Time: metaEpoch})
		if err != nil || swept != tc.wantSwept || deleted != tc.wantSwept {
			t.Errorf("SweepBlob(%s) = %v (del called %v), %v; want %v", tc.sum[:8], swept, deleted, err, tc.wantSwept)
		}
	}
	if _, err := s.FindBlob(ctx, gone.SHA256); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("swept blob record: %v, want ENOTFOUND", err)
	}
	if a := mustAudit(t, c, filehub.AuditFilter{Action: filehub.AuditBlobSwept}); len(a) != 1 || a[0].Target != gone.SHA256 || a[0].Bytes != gone.Size {
		t.Errorf("sweep audit = %+v", a)
	}
	// Recording the content again after the sweep places it anew.
	calls.n.Store(0)
	if dedup, err := s.CreateFile(ctx, metaFile("gone", 4), calls.place); err != nil || dedup || calls.n.Load() != 1 {
		t.Errorf("CreateFile after sweep: dedup %v, place calls %d, %v; want false, 1", dedup, calls.n.Load(), err)
	}
}

func testCleanupSweepDeleteFails(t *testing.T, s filehub.MetaStore, c filehub.CleanupStore) {
	ctx := t.Context()
	fence := mustFence(t, c)
	f := metaFile("undeletable", 0)
	mustCreate(t, s, f)
	if _, err := s.PurgeFile(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.MarkBlobs(ctx, []string{f.SHA256}, metaEpoch); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	swept, err := c.SweepBlob(ctx, fence, f.SHA256, time.Now().Add(time.Hour), func(context.Context) error { return boom },
		filehub.AuditEntry{Action: filehub.AuditBlobSwept, Actor: filehub.ActorSystem})
	if !errors.Is(err, boom) || swept {
		t.Errorf("SweepBlob with a failing delete = %v, %v; want the error", swept, err)
	}
	mustFindBlob(t, s, f.SHA256) // the record stays
	if a := mustAudit(t, c, filehub.AuditFilter{}); len(a) != 1 {
		t.Errorf("audit after a failed sweep: %d entries, want only the purge", len(a))
	}
}

func testCleanupOrphanObject(t *testing.T, s filehub.MetaStore, c filehub.CleanupStore) {
	ctx := t.Context()
	fence := mustFence(t, c)
	f := metaFile("recorded", 0)
	mustCreate(t, s, f)
	orphan := metaFile("orphan", 1).SHA256
	for _, tc := range []struct {
		sum  string
		want bool
	}{{f.SHA256, false}, {orphan, true}} {
		called := false
		deleted, err := c.DeleteOrphanObject(ctx, fence, tc.sum, func(context.Context) error { called = true; return nil },
			filehub.AuditEntry{Action: filehub.AuditObjectDeleted, Actor: filehub.ActorSystem, Bytes: 3})
		if err != nil || deleted != tc.want || called != tc.want {
			t.Errorf("DeleteOrphanObject(%s) = %v (del %v), %v; want %v", tc.sum[:8], deleted, called, err, tc.want)
		}
	}
	if a := mustAudit(t, c, filehub.AuditFilter{Action: filehub.AuditObjectDeleted}); len(a) != 1 || a[0].Target != orphan {
		t.Errorf("orphan audit = %+v", a)
	}
}

func testCleanupMissing(t *testing.T, s filehub.MetaStore, c filehub.CleanupStore) {
	ctx := t.Context()
	f, g := metaFile("lost", 0), metaFile("lost", 1)
	mustCreate(t, s, f)
	mustCreate(t, s, g)
	audit := filehub.AuditEntry{Action: filehub.AuditObjectMissing, Actor: filehub.ActorSystem}
	for i, want := range []bool{true, false} { // the second call changes nothing
		changed, err := c.SetBlobMissing(ctx, f.SHA256, metaEpoch, audit)
		if err != nil || changed != want {
			t.Errorf("SetBlobMissing #%d = %v, %v; want %v", i+1, changed, err, want)
		}
	}
	for _, id := range []string{f.ID, g.ID} {
		if got := mustFindFile(t, s, id); !got.ContentMissing {
			t.Errorf("file %s not flagged", id)
		}
	}
	if b := mustFindBlob(t, s, f.SHA256); b.MissingSince == nil || !b.MissingSince.Equal(metaEpoch) {
		t.Errorf("blob missing since %v, want %v", b.MissingSince, metaEpoch)
	}
	if changed, err := c.SetBlobMissing(ctx, f.SHA256, time.Time{}, filehub.AuditEntry{Action: filehub.AuditObjectFound, Actor: filehub.ActorSystem}); err != nil || !changed {
		t.Errorf("SetBlobMissing(back) = %v, %v", changed, err)
	}
	if got := mustFindFile(t, s, f.ID); got.ContentMissing {
		t.Errorf("file still flagged after the object came back")
	}
	_, err := c.SetBlobMissing(ctx, metaFile("nothing", 2).SHA256, metaEpoch, audit)
	wantCode(t, "SetBlobMissing(unknown)", err, filehub.ENOTFOUND)
	if a := mustAudit(t, c, filehub.AuditFilter{}); len(a) != 2 {
		t.Errorf("audit: %d entries, want 2 (missing once, found once)", len(a))
	}
}

func testCleanupRuns(t *testing.T, s filehub.MetaStore, c filehub.CleanupStore) {
	ctx := t.Context()
	first := &filehub.CleanupRun{Trigger: "schedule", StartedAt: metaEpoch, Status: filehub.RunRunning}
	if err := c.InsertRun(ctx, first); err != nil || first.ID == 0 || first.Actor != filehub.ActorSystem {
		t.Fatalf("InsertRun = %+v, %v", first, err)
	}
	// A new run means the one still running died.
	second := &filehub.CleanupRun{Trigger: "api", Actor: "k_admin", DryRun: true, StartedAt: metaEpoch.Add(time.Hour), Status: filehub.RunRunning}
	if err := c.InsertRun(ctx, second); err != nil {
		t.Fatal(err)
	}
	if got, err := c.FindRun(ctx, first.ID); err != nil || got.Status != filehub.RunInterrupted {
		t.Errorf("first run after a second started: %+v, %v; want interrupted", got, err)
	}
	end := metaEpoch.Add(2 * time.Hour)
	second.Status, second.FinishedAt, second.BytesFreed, second.Errors = filehub.RunOK, &end, 42, 1
	second.Counts = map[string]filehub.CleanupCounts{filehub.KindOrphanObject: {Scanned: 10, Found: 2, Deleted: 1, Bytes: 42}}
	second.Report = []byte(`{"ok":true}`)
	if err := c.FinishRun(ctx, second); err != nil {
		t.Fatal(err)
	}
	runs, err := c.ListRuns(ctx, 10)
	if err != nil || len(runs) != 2 || runs[0].ID != second.ID {
		t.Fatalf("ListRuns = %v, %v", runs, err)
	}
	got := runs[0]
	if got.Status != filehub.RunOK || !got.DryRun || got.Actor != "k_admin" || got.BytesFreed != 42 || got.Errors != 1 ||
		got.Counts[filehub.KindOrphanObject] != second.Counts[filehub.KindOrphanObject] ||
		string(got.Report) != `{"ok":true}` || got.FinishedAt == nil || !got.FinishedAt.Equal(end) {
		t.Errorf("stored run = %+v", got)
	}
	_, err = c.FindRun(ctx, 999)
	wantCode(t, "FindRun(unknown)", err, filehub.ENOTFOUND)
	second.ID = 999
	wantCode(t, "FinishRun(unknown)", c.FinishRun(ctx, second), filehub.ENOTFOUND)

	ev := &filehub.Event{Type: filehub.EventCleanupFinished, Time: end, Run: got}
	if err := c.AppendEvent(ctx, ev); err != nil || ev.ID == 0 {
		t.Fatalf("AppendEvent = %v (id %d)", err, ev.ID)
	}
	events := mustEvents(t, s)
	last := events[len(events)-1]
	if last.Type != filehub.EventCleanupFinished || last.Run == nil || last.Run.ID != got.ID || last.Run.Report != nil {
		t.Errorf("cleanup event = %+v; want the run without its report", last)
	}
}

func testCleanupSettingsAndLeases(t *testing.T, s filehub.MetaStore, c filehub.CleanupStore) {
	ctx := t.Context()
	if err := c.SetSettings(ctx, map[string]string{"blob_grace": "1h", "interval": "5m"}, "k_admin", metaEpoch); err != nil {
		t.Fatal(err)
	}
	if err := c.SetSettings(ctx, map[string]string{"blob_grace": "2h"}, "k_admin", metaEpoch); err != nil {
		t.Fatal(err)
	}
	got, err := c.Settings(ctx)
	if err != nil || len(got) != 2 || got["blob_grace"] != "2h" || got["interval"] != "5m" {
		t.Errorf("Settings = %v, %v", got, err)
	}
	if a := mustAudit(t, c, filehub.AuditFilter{Action: filehub.AuditSettingChanged}); len(a) != 3 {
		t.Errorf("settings audit: %d entries, want 3", len(a))
	}

	ttl := time.Minute
	for _, tc := range []struct {
		holder string
		at     time.Duration
		wantOK bool
		want   string
	}{
		{"a", 0, true, "a"},
		{"b", 30 * time.Second, false, "a"}, // held
		{"a", 50 * time.Second, true, "a"},  // renewed until 110s
		{"b", 100 * time.Second, false, "a"},
		{"b", 111 * time.Second, true, "b"}, // expired
	} {
		f, ok, err := c.AcquireLease(ctx, "cleanup", tc.holder, metaEpoch.Add(tc.at), ttl)
		if err != nil || ok != tc.wantOK || f.Holder != tc.want {
			t.Errorf("AcquireLease(%s at %v) = %v, %q, %v; want %v, %q", tc.holder, tc.at, ok, f.Holder, err, tc.wantOK, tc.want)
		}
	}
	if err := c.ReleaseLease(ctx, "cleanup", "a"); err != nil { // not the holder: no effect
		t.Fatal(err)
	}
	if _, ok, _ := c.AcquireLease(ctx, "cleanup", "a", metaEpoch.Add(112*time.Second), ttl); ok {
		t.Errorf("a release by a non-holder freed the lease")
	}
	if err := c.ReleaseLease(ctx, "cleanup", "b"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.AcquireLease(ctx, "cleanup", "a", metaEpoch.Add(113*time.Second), ttl); !ok || err != nil {
		t.Errorf("AcquireLease after release = %v, %v", ok, err)
	}
}

// testCleanupLeaseGenerations checks that a tenure's generation is kept by
// renewals and grows with every new tenure, and that RenewLease refuses a
// tenure that has been superseded even after the lease expired.
func testCleanupLeaseGenerations(t *testing.T, _ filehub.MetaStore, c filehub.CleanupStore) {
	ctx := t.Context()
	ttl := time.Minute
	at := func(d time.Duration) time.Time { return metaEpoch.Add(d) }
	acquire := func(holder string, d time.Duration) filehub.Fence {
		t.Helper()
		f, ok, err := c.AcquireLease(ctx, "cleanup", holder, at(d), ttl)
		if err != nil || !ok {
			t.Fatalf("AcquireLease(%s at %v) = %+v, %v, %v", holder, d, f, ok, err)
		}
		return f
	}
	a1 := acquire("a", 0)
	if again := acquire("a", 10*time.Second); again != a1 {
		t.Errorf("renewal by AcquireLease changed the tenure: %+v, then %+v", a1, again)
	}
	if err := c.RenewLease(ctx, a1, at(20*time.Second), ttl); err != nil {
		t.Errorf("RenewLease(current) = %v", err)
	}
	// Expired, nobody took it: a's tenure is still current.
	if err := c.RenewLease(ctx, a1, at(5*time.Minute), ttl); err != nil {
		t.Errorf("RenewLease(expired, not taken) = %v", err)
	}
	b := acquire("b", 10*time.Minute) // a's expired at 6m
	if b.Generation <= a1.Generation {
		t.Errorf("generation of a new holder's tenure = %d, want > %d", b.Generation, a1.Generation)
	}
	err := c.RenewLease(ctx, a1, at(10*time.Minute+time.Second), ttl)
	if !errors.Is(err, filehub.ErrLeaseLost) || filehub.ErrorCode(err) != filehub.ECONFLICT {
		t.Errorf("RenewLease(superseded) = %v, want ErrLeaseLost with code conflict", err)
	}
	if err := c.ReleaseLease(ctx, "cleanup", "b"); err != nil {
		t.Fatal(err)
	}
	// The same holder again after a release is a new tenure: b's old
	// fence must not match it.
	b2 := acquire("b", 10*time.Minute+2*time.Second)
	if b2.Generation <= b.Generation {
		t.Errorf("generation after release = %d, want > %d", b2.Generation, b.Generation)
	}
	if err := c.RenewLease(ctx, b, at(10*time.Minute+3*time.Second), ttl); !errors.Is(err, filehub.ErrLeaseLost) {
		t.Errorf("RenewLease(released tenure) = %v, want ErrLeaseLost", err)
	}
	// An expired tenure taken again by its own holder is a new one too.
	b3 := acquire("b", time.Hour)
	if b3.Generation <= b2.Generation {
		t.Errorf("generation after expiry = %d, want > %d", b3.Generation, b2.Generation)
	}
	wantCode(t, "RenewLease(zero fence)", c.RenewLease(ctx, filehub.Fence{}, at(0), ttl), filehub.EINVALID)
}

// testCleanupFence checks that every fenced method refuses a superseded
// tenure with ErrLeaseLost and changes nothing, and works for the current
// one.
func testCleanupFence(t *testing.T, s filehub.MetaStore, c filehub.CleanupStore) {
	ctx := t.Context()
	now := time.Now()
	stale, ok, err := c.AcquireLease(ctx, "cleanup", "a", now.Add(-time.Hour), time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	current, ok, err := c.AcquireLease(ctx, "cleanup", "b", now, time.Hour)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	swept, trashed := metaFile("swept", 0), metaFile("trashed", 1)
	for _, f := range []*filehub.File{swept, trashed} {
		mustCreate(t, s, f)
	}
	if _, err := s.PurgeFile(ctx, swept.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.MarkBlobs(ctx, []string{swept.SHA256}, metaEpoch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SoftDeleteFile(ctx, trashed.ID, metaEpoch, metaEpoch); err != nil {
		t.Fatal(err)
	}
	orphan := metaFile("orphan", 2).SHA256
	audit := filehub.AuditEntry{Action: filehub.AuditBlobSwept, Actor: filehub.ActorSystem, Time: metaEpoch}
	later := now.Add(time.Hour)

	wantLost := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, filehub.ErrLeaseLost) || filehub.ErrorCode(err) != filehub.ECONFLICT {
			t.Errorf("%s with a superseded fence = %v, want ErrLeaseLost (conflict)", what, err)
		}
	}
	called := false
	del := func(context.Context) error { called = true; return nil }
	_, err = c.SweepBlob(ctx, stale, swept.SHA256, later, del, audit)
	wantLost("SweepBlob", err)
	_, err = c.DeleteOrphanObject(ctx, stale, orphan, del, audit)
	wantLost("DeleteOrphanObject", err)
	_, err = c.PurgeExpiredFile(ctx, stale, trashed.ID, later, audit)
	wantLost("PurgeExpiredFile", err)
	wantLost("Fenced", c.Fenced(ctx, stale, del))
	if called {
		t.Errorf("a fenced method called its delete function with a superseded fence")
	}
	mustFindBlob(t, s, swept.SHA256)
	if f, err := s.FindFile(ctx, trashed.ID); err != nil || f.DeletedAt == nil {
		t.Errorf("trashed file after a refused purge: %+v, %v", f, err)
	}
	if a := mustAudit(t, c, filehub.AuditFilter{Action: filehub.AuditBlobSwept}); len(a) != 0 {
		t.Errorf("refused steps wrote audit entries: %+v", a)
	}
	_, err = c.SweepBlob(ctx, filehub.Fence{}, swept.SHA256, later, del, audit)
	wantCode(t, "SweepBlob(zero fence)", err, filehub.EINVALID)

	if ok, err := c.SweepBlob(ctx, current, swept.SHA256, later, del, audit); err != nil || !ok || !called {
		t.Errorf("SweepBlob(current) = %v (del %v), %v", ok, called, err)
	}
	called = false
	if ok, err := c.DeleteOrphanObject(ctx, current, orphan, del, audit); err != nil || !ok || !called {
		t.Errorf("DeleteOrphanObject(current) = %v (del %v), %v", ok, called, err)
	}
	if _, err := c.PurgeExpiredFile(ctx, current, trashed.ID, later, audit); err != nil {
		t.Errorf("PurgeExpiredFile(current) = %v", err)
	}
	called = false
	if err := c.Fenced(ctx, current, del); err != nil || !called {
		t.Errorf("Fenced(current) = %v (fn called %v)", err, called)
	}
	boom := errors.New("boom")
	if err := c.Fenced(ctx, current, func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Fenced returned %v, want fn's error", err)
	}
}

// atomicCounter counts place calls.
type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) place(context.Context) error { c.n.Add(1); return nil }
