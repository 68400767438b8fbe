package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/filehub/filehub"
)

// RunStatsReader runs the conformance suite of filehub.StatsReader against
// the stores newStore returns (fresh and empty per subtest). It fails at
// once if the store does not implement StatsReader.
func RunStatsReader(t *testing.T, newStore func(t *testing.T) filehub.MetaStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s filehub.MetaStore, r filehub.StatsReader)
	}{
		{"Empty", testStatsEmpty},
		{"Counts", testStatsCounts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			r, ok := s.(filehub.StatsReader)
			if !ok {
				t.Fatalf("%T does not implement filehub.StatsReader", s)
			}
			tc.fn(t, s, r)
		})
	}
}

func mustStats(t *testing.T, r filehub.StatsReader) filehub.StorageStats {
	t.Helper()
	st, err := r.StorageStats(t.Context())
	if err != nil {
		t.Fatalf("StorageStats: %v", err)
	}
	return *st
}

func testStatsEmpty(t *testing.T, _ filehub.MetaStore, r filehub.StatsReader) {
	if got := mustStats(t, r); got != (filehub.StorageStats{}) {
		t.Errorf("an empty store: %+v, want every figure 0", got)
	}
}

func testStatsCounts(t *testing.T, s filehub.MetaStore, r filehub.StatsReader) {
	// Contents and sizes: "shared" (6 bytes) twice live, "alone" (5)
	// live, "both!" (5) once live and once in the trash, "trash only"
	// (10) only in the trash, and "gone" (4) purged, so its blob is
	// unreferenced.
	shared1, shared2 := metaFile("shared", 0), metaFile("shared", 1)
	alone := metaFile("alone", 2)
	bothLive, bothTrash := metaFile("both!", 3), metaFile("both!", 4)
	trashOnly := metaFile("trash only", 5)
	gone := metaFile("gone", 6)
	for _, f := range []*filehub.File{shared1, shared2, alone, bothLive, bothTrash, trashOnly, gone} {
		mustCreate(t, s, f)
	}
	at := metaEpoch.Add(time.Hour)
	for _, f := range []*filehub.File{bothTrash, trashOnly} {
		if _, err := s.SoftDeleteFile(t.Context(), f.ID, at, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PurgeFile(t.Context(), gone.ID); err != nil {
		t.Fatal(err)
	}
	want := filehub.StorageStats{
		Files: 4, LogicalBytes: 6 + 6 + 5 + 5,
		StoredBytes: 6 + 5 + 5, // the trash's copy of "both!" is stored once with the live one
		TrashFiles:  2, TrashBytes: 5 + 10,
		Blobs: 5, BlobBytes: 6 + 5 + 5 + 10 + 4,
		UnreferencedBlobs: 1, UnreferencedBytes: 4,
	}
	if got := mustStats(t, r); got != want {
		t.Errorf("after deletes and a purge:\n got %+v\nwant %+v", got, want)
	}

	// A restore moves the file back from the trash, and its content is
	// counted as stored again.
	if _, err := s.RestoreFile(t.Context(), trashOnly.ID); err != nil {
		t.Fatal(err)
	}
	want.Files, want.LogicalBytes, want.StoredBytes = 5, want.LogicalBytes+10, want.StoredBytes+10
	want.TrashFiles, want.TrashBytes = 1, 5
	if got := mustStats(t, r); got != want {
		t.Errorf("after a restore:\n got %+v\nwant %+v", got, want)
	}

	// A new file with the unreferenced content revives its blob: no
	// longer unreferenced, stored once.
	// (mustCreate would object to place being called for a record that
	// exists: a revival does call it.)
	if _, err := s.CreateFile(t.Context(), metaFile("gone", 7), func(ctx context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	want.Files, want.LogicalBytes, want.StoredBytes = 6, want.LogicalBytes+4, want.StoredBytes+4
	want.UnreferencedBlobs, want.UnreferencedBytes = 0, 0
	if got := mustStats(t, r); got != want {
		t.Errorf("after a revival:\n got %+v\nwant %+v", got, want)
	}
}
