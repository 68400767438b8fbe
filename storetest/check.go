package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/filehub/filehub"
)

// SetRefCount overwrites a blob record's reference count behind the store's
// back, as a bug or a hand edit would; each backend's test supplies it.
type SetRefCount func(t *testing.T, sum string, n int64)

// RunChecker runs the conformance suite of filehub.Checker against the
// stores newStore returns (fresh and empty per subtest), each with the
// function that skews its counts. It fails at once if the store does not
// implement Checker or CleanupStore (the repairs are audited).
func RunChecker(t *testing.T, newStore func(t *testing.T) (filehub.MetaStore, SetRefCount)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s filehub.MetaStore, c filehub.Checker, skew SetRefCount)
	}{
		{"ListBlobRefs", testCheckListBlobRefs},
		{"RepairRefCount", testCheckRepairRefCount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, skew := newStore(t)
			c, ok := s.(filehub.Checker)
			if !ok {
				t.Fatalf("%T does not implement filehub.Checker", s)
			}
			if _, ok := s.(filehub.CleanupStore); !ok {
				t.Fatalf("%T does not implement filehub.CleanupStore", s)
			}
			tc.fn(t, s, c, skew)
		})
	}
}

func testCheckListBlobRefs(t *testing.T, s filehub.MetaStore, c filehub.Checker, _ SetRefCount) {
	shared1, shared2 := metaFile("shared", 0), metaFile("shared", 1)
	alone, gone := metaFile("alone", 2), metaFile("gone", 3)
	for _, f := range []*filehub.File{shared1, shared2, alone, gone} {
		mustCreate(t, s, f)
	}
	at := metaEpoch.Add(time.Hour)
	if _, err := s.SoftDeleteFile(t.Context(), shared2.ID, at, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeFile(t.Context(), gone.ID); err != nil {
		t.Fatal(err)
	}
	// Pages of one blob each: every blob is seen once, in order, with
	// all of its files even across the page boundary.
	var got []*filehub.BlobRefs
	after := ""
	for {
		page, err := c.ListBlobRefs(t.Context(), after, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) != 1 {
			t.Fatalf("ListBlobRefs(limit 1) = %d blobs", len(page))
		}
		got = append(got, page...)
		after = page[0].SHA256
	}
	want := map[string][]filehub.FileRef{
		shared1.SHA256: sortRefs([]filehub.FileRef{{ID: shared1.ID, Size: shared1.Size}, {ID: shared2.ID, Size: shared2.Size, Deleted: true}}),
		alone.SHA256:   {{ID: alone.ID, Size: alone.Size}},
		gone.SHA256:    nil,
	}
	if len(got) != len(want) {
		t.Fatalf("ListBlobRefs = %d blobs, want %d", len(got), len(want))
	}
	for i, b := range got {
		if i > 0 && got[i-1].SHA256 >= b.SHA256 {
			t.Errorf("blobs out of order: %s then %s", got[i-1].SHA256, b.SHA256)
		}
		if !slices.Equal(b.Files, want[b.SHA256]) {
			t.Errorf("blob %s files = %+v, want %+v", b.SHA256, b.Files, want[b.SHA256])
		}
		if b.RefCount != int64(len(b.Files)) {
			t.Errorf("blob %s ref count %d with %d files", b.SHA256, b.RefCount, len(b.Files))
		}
	}
	all, err := c.ListBlobRefs(t.Context(), "", 0)
	if err != nil || len(all) != 3 {
		t.Errorf("ListBlobRefs(limit 0) = %d blobs, %v; want 3", len(all), err)
	}
}

func sortRefs(r []filehub.FileRef) []filehub.FileRef {
	slices.SortFunc(r, func(a, b filehub.FileRef) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return r
}

func testCheckRepairRefCount(t *testing.T, s filehub.MetaStore, c filehub.Checker, skew SetRefCount) {
	ctx := t.Context()
	audit := s.(filehub.CleanupStore)
	low, high := metaFile("counted too low", 0), metaFile("counted too high", 1)
	mustCreate(t, s, low)
	mustCreate(t, s, high)
	if _, err := s.PurgeFile(ctx, high.ID); err != nil {
		t.Fatal(err)
	}
	skew(t, low.SHA256, 0)
	skew(t, high.SHA256, 2)
	at := metaEpoch.Add(2 * time.Hour)
	entry := filehub.AuditEntry{Action: filehub.AuditRefCountRepaired, Actor: "cli:test", Reason: "check"}
	before0 := len(mustAudit(t, audit, filehub.AuditFilter{}))

	b, a, err := c.RepairRefCount(ctx, low.SHA256, at, entry)
	if err != nil || b != 0 || a != 1 {
		t.Fatalf("RepairRefCount(low) = %d, %d, %v; want 0, 1", b, a, err)
	}
	if blob, err := s.FindBlob(ctx, low.SHA256); err != nil || blob.RefCount != 1 || blob.UnreferencedSince != nil {
		t.Errorf("low blob after repair = %+v, %v; want ref count 1, referenced", blob, err)
	}
	b, a, err = c.RepairRefCount(ctx, high.SHA256, at, entry)
	if err != nil || b != 2 || a != 0 {
		t.Fatalf("RepairRefCount(high) = %d, %d, %v; want 2, 0", b, a, err)
	}
	blob, err := s.FindBlob(ctx, high.SHA256)
	if err != nil || blob.RefCount != 0 || blob.UnreferencedSince == nil {
		t.Errorf("high blob after repair = %+v, %v; want ref count 0 and unreferenced", blob, err)
	}
	// A correct count is left alone and not audited.
	if b, a, err := c.RepairRefCount(ctx, low.SHA256, at, entry); err != nil || b != 1 || a != 1 {
		t.Errorf("RepairRefCount(correct) = %d, %d, %v; want 1, 1", b, a, err)
	}
	got := mustAudit(t, audit, filehub.AuditFilter{Action: filehub.AuditRefCountRepaired})
	if len(got) != 2 || len(mustAudit(t, audit, filehub.AuditFilter{})) != before0+2 {
		t.Fatalf("repair audit entries = %d, want 2", len(got))
	}
	for i, sum := range []string{low.SHA256, high.SHA256} {
		if e := got[i]; e.Target != sum || e.TargetKind != filehub.TargetBlob || e.Actor != "cli:test" || e.Bytes != low.Size && e.Bytes != high.Size {
			t.Errorf("audit[%d] = %+v, want blob %s by cli:test", i, e, sum)
		}
	}
	// Purging the file of a repaired count works (a count of 0 made it
	// fail the store's non-negative check before).
	if _, err := s.PurgeFile(ctx, low.ID); err != nil {
		t.Errorf("PurgeFile after repair: %v", err)
	}
	if _, _, err := c.RepairRefCount(ctx, "0000000000000000000000000000000000000000000000000000000000000000", at, entry); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("RepairRefCount(unknown) = %v, want ENOTFOUND", err)
	}
}
