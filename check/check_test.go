package check_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/check"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/sqlite"
)

// fixture is a data dir with its stores open.
type fixture struct {
	dir   string
	meta  check.Store
	path  string // SQLite's, for exec
	blobs *localfs.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	meta, err := sqlite.Open(t.Context(), filepath.Join(dir, "filehub.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	blobs, err := localfs.Open(dir, localfs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{dir: dir, meta: meta, path: meta.Path(), blobs: blobs}
}

// put stores content as a new file, the way the upload path does.
func (fx *fixture) put(t *testing.T, content string) *filehub.File {
	t.Helper()
	ctx := t.Context()
	h := sha256.Sum256([]byte(content))
	sum := hex.EncodeToString(h[:])
	st, err := fx.blobs.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	if _, err := st.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, sum); err != nil {
		t.Fatal(err)
	}
	f := &filehub.File{ID: filehub.NewID("f_"), Name: "x.txt", Size: int64(len(content)), SHA256: sum,
		ContentType: "text/plain", CreatedAt: time.Now(), OwnerKeyID: "k_test"}
	if _, err := fx.meta.CreateFile(ctx, f, func(ctx context.Context) error { return st.Commit(ctx, sum) }); err != nil {
		t.Fatal(err)
	}
	return f
}

func (fx *fixture) objectPath(sum string) string {
	return filepath.Join(fx.dir, "blobs", sum[:2], sum)
}

func (fx *fixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", fx.path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (fx *fixture) check(t *testing.T, req api.CheckRequest) *api.CheckReport {
	t.Helper()
	ctx := filehub.WithActor(t.Context(), "cli:test")
	rep, err := check.New(fx.meta, fx.blobs, check.Config{PageSize: 2}).Check(ctx, req)
	if err != nil {
		t.Fatalf("Check(%+v): %v", req, err)
	}
	return rep
}

// kinds returns the problems of rep by kind.
func kinds(rep *api.CheckReport) map[string][]api.CheckProblem {
	m := map[string][]api.CheckProblem{}
	for _, p := range rep.Problems {
		m[p.Kind] = append(m[p.Kind], p)
	}
	return m
}

func TestCleanStoreIsOK(t *testing.T) {
	fx := newFixture(t)
	for i := range 5 {
		fx.put(t, fmt.Sprintf("content %d", i))
	}
	fx.put(t, "content 0") // a duplicate
	rep := fx.check(t, api.CheckRequest{ReadData: true})
	if !rep.OK() || len(rep.Problems) != 0 || len(rep.Notices) != 0 {
		t.Fatalf("clean store: problems %+v, notices %+v", rep.Problems, rep.Notices)
	}
	if rep.Blobs != 5 || rep.Files != 6 || rep.Objects != 5 || rep.BlobsRead != 5 || rep.Events != 6 {
		t.Errorf("report counts = %+v, want 5 blobs, 6 files, 5 objects, 5 read, 6 events", rep)
	}
}

// TestFindsEachDefect corrupts a blob, deletes one, skews a count and
// removes an event and an audit entry: check names each by kind, sum and
// files, and --repair fixes the count (audited) and nothing else.
func TestFindsEachDefect(t *testing.T) {
	fx := newFixture(t)
	ctx := t.Context()
	corrupt := fx.put(t, "to be corrupted")
	deleted := fx.put(t, "to be deleted")
	skewed := fx.put(t, "to be miscounted")
	skewed2 := fx.put(t, "to be miscounted")
	for i := range 3 {
		fx.put(t, fmt.Sprintf("filler %d", i))
	}
	if _, err := fx.meta.SoftDeleteFile(ctx, fx.put(t, "audited").ID, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := fx.meta.AppendAudit(ctx, filehub.AuditEntry{Action: "test", TargetKind: "test"},
		filehub.AuditEntry{Action: "test", TargetKind: "test"}); err != nil {
		t.Fatal(err)
	}

	// Same size, different bytes: only --read-data can tell.
	if err := os.WriteFile(fx.objectPath(corrupt.SHA256), []byte("to be CORRUPTED"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(fx.objectPath(deleted.SHA256)); err != nil {
		t.Fatal(err)
	}
	fx.exec(t, `UPDATE blobs SET ref_count = 7 WHERE sha256 = ?`, skewed.SHA256)
	fx.exec(t, `DELETE FROM events WHERE id IN (3, 4)`)
	// The log is append-only: a hand edit has to drop the guard first.
	fx.exec(t, `DROP TRIGGER audit_log_no_delete`)
	fx.exec(t, `DELETE FROM audit_log WHERE id = 2`)
	// An orphan object is a notice, not a problem.
	orphan := sha256.Sum256([]byte("orphan"))
	orphanSum := hex.EncodeToString(orphan[:])
	if err := os.WriteFile(fx.objectPath(orphanSum), []byte("orphan"), 0o640); err != nil {
		t.Fatal(err)
	}

	rep := fx.check(t, api.CheckRequest{ReadData: true})
	if rep.OK() {
		t.Fatal("a damaged store checked OK")
	}
	got := kinds(rep)
	want := []struct {
		kind  string
		sum   string
		files []string
		first int64
		last  int64
	}{
		{api.CheckCorruptObject, corrupt.SHA256, []string{corrupt.ID}, 0, 0},
		{api.CheckMissingObject, deleted.SHA256, []string{deleted.ID}, 0, 0},
		{api.CheckRefCount, skewed.SHA256, sortedIDs(skewed, skewed2), 0, 0},
		{api.CheckEventGap, "", nil, 3, 4},
		{api.CheckAuditGap, "", nil, 2, 2},
	}
	for _, w := range want {
		ps := got[w.kind]
		if len(ps) != 1 {
			t.Errorf("%s: %d problems %+v, want 1", w.kind, len(ps), ps)
			continue
		}
		p := ps[0]
		if p.SHA256 != w.sum || !slices.Equal(p.FileIDs, w.files) || p.FirstID != w.first || p.LastID != w.last || p.Repaired {
			t.Errorf("%s = %+v, want sum %s, files %v, ids %d-%d, not repaired", w.kind, p, w.sum, w.files, w.first, w.last)
		}
	}
	if len(rep.Problems) != len(want) {
		t.Errorf("problems = %+v, want %d", rep.Problems, len(want))
	}
	if len(rep.Notices) != 1 || rep.Notices[0].Kind != api.CheckOrphanObject || rep.Notices[0].SHA256 != orphanSum {
		t.Errorf("notices = %+v, want the orphan %s", rep.Notices, orphanSum)
	}
	// Without --read-data the corruption goes unseen: the size is right.
	if k := kinds(fx.check(t, api.CheckRequest{})); len(k[api.CheckCorruptObject]) != 0 || len(k[api.CheckRefCount]) != 1 {
		t.Errorf("check without read-data: %+v", k)
	}

	rep = fx.check(t, api.CheckRequest{Repair: true})
	for _, p := range rep.Problems {
		if p.Repaired != (p.Kind == api.CheckRefCount) {
			t.Errorf("repair: %s repaired = %v", p.Kind, p.Repaired)
		}
	}
	if b, err := fx.meta.FindBlob(ctx, skewed.SHA256); err != nil || b.RefCount != 2 {
		t.Errorf("skewed blob after repair = %+v, %v; want ref count 2", b, err)
	}
	if f, err := fx.meta.FindFile(ctx, deleted.ID); err != nil || !f.ContentMissing {
		t.Errorf("file of the deleted object after repair = %+v, %v; want content_missing", f, err)
	}
	audit, err := fx.meta.ListAudit(ctx, filehub.AuditFilter{Action: filehub.AuditRefCountRepaired})
	if err != nil || len(audit) != 1 || audit[0].Target != skewed.SHA256 || audit[0].Actor != "cli:test" {
		t.Errorf("repair audit = %+v, %v", audit, err)
	}
	// The count stays repaired.
	if k := kinds(fx.check(t, api.CheckRequest{})); len(k[api.CheckRefCount]) != 0 || len(k[api.CheckMissingObject]) != 1 {
		t.Errorf("check after repair: %+v", k)
	}
}

func sortedIDs(fs ...*filehub.File) []string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestTrimmedEventsAreNoGap: events before the oldest retained one were
// trimmed, not lost.
func TestTrimmedEventsAreNoGap(t *testing.T) {
	fx := newFixture(t)
	for i := range 6 {
		fx.put(t, fmt.Sprintf("c%d", i))
	}
	if _, err := fx.meta.TrimEvents(t.Context(), time.Time{}, 2); err != nil {
		t.Fatal(err)
	}
	rep := fx.check(t, api.CheckRequest{})
	if !rep.OK() || rep.Events != 2 {
		t.Errorf("after trimming: problems %+v, %d events; want none and 2", rep.Problems, rep.Events)
	}
	// A hole above the oldest retained event is a gap; the newest
	// missing too.
	for i := range 3 {
		fx.put(t, fmt.Sprintf("d%d", i))
	}
	fx.exec(t, `DELETE FROM events WHERE id IN (7, 9)`)
	got := kinds(fx.check(t, api.CheckRequest{}))[api.CheckEventGap]
	if len(got) != 2 || got[0].FirstID != 7 || got[0].LastID != 7 || got[1].FirstID != 9 || got[1].LastID != 9 {
		t.Errorf("event gaps = %+v, want 7 and 9", got)
	}
}

func TestReadDataSubset(t *testing.T) {
	fx := newFixture(t)
	for i := range 40 {
		fx.put(t, fmt.Sprintf("subset %d", i))
	}
	rep, err := check.New(fx.meta, fx.blobs, check.Config{Rand: rand.New(rand.NewPCG(1, 2))}).
		Check(t.Context(), api.CheckRequest{ReadDataSubset: "25%"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.BlobsRead == 0 || rep.BlobsRead >= 40 || !rep.ReadData {
		t.Errorf("25%% subset read %d of 40 blobs", rep.BlobsRead)
	}
	for _, bad := range []string{"0%", "101%", "x", "-5"} {
		if _, err := check.New(fx.meta, fx.blobs, check.Config{}).Check(t.Context(), api.CheckRequest{ReadDataSubset: bad}); filehub.ErrorCode(err) != filehub.EINVALID {
			t.Errorf("subset %q: %v, want EINVALID", bad, err)
		}
	}
}
