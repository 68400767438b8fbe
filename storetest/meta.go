package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filehub/filehub"
)

// RunMetaStore runs the MetaStore conformance suite against the stores
// returned by newStore, which is called once per subtest and must return a
// fresh, empty store (registering its own cleanup with t.Cleanup; the suite
// may close the store itself, so Close must tolerate a second call).
//
// Besides the contracts in filehub.MetaStore's doc comments, the suite
// expects what callers rely on:
//   - times come back equal (time.Time.Equal) to what was stored, at least to
//     the microsecond (the suite uses microsecond times);
//   - a blob record whose files were all purged is revived by the next
//     CreateFile of its content: deduplicated is true and place is called
//     once, since the cleanup service may have deleted the object of an
//     unreferenced record (a sweep whose record deletion did not commit);
//   - API key names are unique like IDs and hashes (keys are revoked by
//     name), so a duplicate name is ECONFLICT as well;
//   - a failed mutation records no event, and a context that is already
//     done makes a mutation fail without recording anything;
//   - after Close, every method returns an error (and does not panic).
func RunMetaStore(t *testing.T, newStore func(t *testing.T) filehub.MetaStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s filehub.MetaStore)
	}{
		{"CreateFind", testMetaCreateFind},
		{"CreateInvalid", testMetaCreateInvalid},
		{"CreateDuplicateID", testMetaCreateDuplicateID},
		{"CreateCanceled", testMetaCreateCanceled},
		{"NotFound", testMetaNotFound},
		{"ListOrderAndPaging", testMetaListOrderAndPaging},
		{"ListLimits", testMetaListLimits},
		{"ListBadCursor", testMetaListBadCursor},
		{"DedupConcurrent", testMetaDedupConcurrent},
		{"PlaceFails", testMetaPlaceFails},
		{"SoftDelete", testMetaSoftDelete},
		{"Restore", testMetaRestore},
		{"Purge", testMetaPurge},
		{"PurgeRevive", testMetaPurgeRevive},
		{"Events", testMetaEvents},
		{"EventsPaging", testMetaEventsPaging},
		{"EventBounds", testMetaEventBounds},
		{"TrimEventsByCount", testMetaTrimEventsByCount},
		{"TrimEventsByAge", testMetaTrimEventsByAge},
		{"APIKeys", testMetaAPIKeys},
		{"APIKeyConflicts", testMetaAPIKeyConflicts},
		{"RevokeAPIKey", testMetaRevokeAPIKey},
		{"Ping", testMetaPing},
		{"Closed", testMetaClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// metaEpoch is the base of the suite's times: microsecond precision, UTC.
var metaEpoch = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)

// metaFile returns a complete file record for content, created i
// milliseconds after metaEpoch.
func metaFile(content string, i int) *filehub.File {
	h := sha256.Sum256([]byte(content))
	return &filehub.File{
		ID:          filehub.NewID("f_"),
		Name:        fmt.Sprintf("file-%d.txt", i),
		Size:        int64(len(content)),
		SHA256:      hex.EncodeToString(h[:]),
		ContentType: "text/plain; charset=utf-8",
		CreatedAt:   metaEpoch.Add(time.Duration(i) * time.Millisecond),
		OwnerKeyID:  "k_owner",
	}
}

// placeCounter returns a PlaceFunc that counts its calls in n.
func placeCounter(n *atomic.Int64) filehub.PlaceFunc {
	return func(context.Context) error {
		n.Add(1)
		return nil
	}
}

// mustCreate records f, requiring success, and returns deduplicated.
func mustCreate(t *testing.T, s filehub.MetaStore, f *filehub.File) bool {
	t.Helper()
	var calls atomic.Int64
	dedup, err := s.CreateFile(t.Context(), f, placeCounter(&calls))
	if err != nil {
		t.Fatalf("CreateFile(%s): %v", f.ID, err)
	}
	want := int64(1) // a new blob record is placed exactly once
	if dedup {
		want = 0
	}
	if calls.Load() != want {
		t.Fatalf("CreateFile(%s): deduplicated = %v but place called %d times, want %d", f.ID, dedup, calls.Load(), want)
	}
	return dedup
}

// mustCreateN records n files with distinct content and returns them in
// creation order.
func mustCreateN(t *testing.T, s filehub.MetaStore, n int) []*filehub.File {
	t.Helper()
	files := make([]*filehub.File, n)
	for i := range files {
		files[i] = metaFile(fmt.Sprintf("content %d of %s", i, t.Name()), i)
		mustCreate(t, s, files[i])
	}
	return files
}

func mustFindFile(t *testing.T, s filehub.MetaStore, id string) *filehub.File {
	t.Helper()
	f, err := s.FindFile(t.Context(), id)
	if err != nil {
		t.Fatalf("FindFile(%s): %v", id, err)
	}
	return f
}

func mustFindBlob(t *testing.T, s filehub.MetaStore, sum string) *filehub.Blob {
	t.Helper()
	b, err := s.FindBlob(t.Context(), sum)
	if err != nil {
		t.Fatalf("FindBlob(%s): %v", sum, err)
	}
	return b
}

func mustEvents(t *testing.T, s filehub.MetaStore) []*filehub.Event {
	t.Helper()
	events, err := s.ListEvents(t.Context(), 0, 1000)
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	return events
}

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := filehub.ErrorCode(err); got != code {
		t.Errorf("%s = %v, want code %s", what, err, code)
	}
}

// sameTime reports whether two optional times are both nil or equal.
func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// checkFile fails the test unless got has want's fields.
func checkFile(t *testing.T, what string, got, want *filehub.File) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got no file, want %s", what, want.ID)
		return
	}
	if got.ID != want.ID || got.Name != want.Name || got.Size != want.Size ||
		got.SHA256 != want.SHA256 || got.ContentType != want.ContentType ||
		got.OwnerKeyID != want.OwnerKeyID || !got.CreatedAt.Equal(want.CreatedAt) ||
		!sameTime(got.DeletedAt, want.DeletedAt) || !sameTime(got.PurgeAfter, want.PurgeAfter) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func fileIDs(files []*filehub.File) []string {
	ids := make([]string, len(files))
	for i, f := range files {
		ids[i] = f.ID
	}
	return ids
}

func testMetaCreateFind(t *testing.T, s filehub.MetaStore) {
	f := metaFile("hello", 0)
	if dedup := mustCreate(t, s, f); dedup {
		t.Errorf("first CreateFile of new content: deduplicated = true, want false")
	}
	checkFile(t, "FindFile", mustFindFile(t, s, f.ID), f)

	b := mustFindBlob(t, s, f.SHA256)
	if b.SHA256 != f.SHA256 || b.Size != f.Size || b.RefCount != 1 || b.CreatedAt.IsZero() {
		t.Errorf("FindBlob = %+v, want sum %s, size %d, ref count 1 and a creation time", b, f.SHA256, f.Size)
	}

	// Same content, another file: deduplicated, same blob, count 2.
	g := metaFile("hello", 1)
	if dedup := mustCreate(t, s, g); !dedup {
		t.Errorf("CreateFile of existing content: deduplicated = false, want true")
	}
	checkFile(t, "FindFile(second)", mustFindFile(t, s, g.ID), g)
	if b := mustFindBlob(t, s, f.SHA256); b.RefCount != 2 {
		t.Errorf("after a duplicate, ref count = %d, want 2", b.RefCount)
	}
}

func testMetaCreateInvalid(t *testing.T, s filehub.MetaStore) {
	for _, tc := range []struct {
		name   string
		modify func(f *filehub.File)
	}{
		{"NoID", func(f *filehub.File) { f.ID = "" }},
		{"NoName", func(f *filehub.File) { f.Name = "" }},
		{"NoSHA256", func(f *filehub.File) { f.SHA256 = "" }},
		{"BadSHA256", func(f *filehub.File) { f.SHA256 = "../../etc/passwd" }},
		{"NoContentType", func(f *filehub.File) { f.ContentType = "" }},
		{"NoCreatedAt", func(f *filehub.File) { f.CreatedAt = time.Time{} }},
		{"NoOwner", func(f *filehub.File) { f.OwnerKeyID = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := metaFile("invalid "+tc.name, 0)
			tc.modify(f)
			var calls atomic.Int64
			_, err := s.CreateFile(t.Context(), f, placeCounter(&calls))
			wantCode(t, "CreateFile", err, filehub.EINVALID)
			if calls.Load() != 0 {
				t.Errorf("place called %d times for an invalid file", calls.Load())
			}
		})
	}
	if events := mustEvents(t, s); len(events) != 0 {
		t.Errorf("invalid creates recorded %d events, want 0", len(events))
	}
}

func testMetaCreateDuplicateID(t *testing.T, s filehub.MetaStore) {
	f := metaFile("original", 0)
	mustCreate(t, s, f)

	// Another content under the same ID: refused, and neither its blob nor
	// an event may remain.
	g := metaFile("other content", 1)
	g.ID = f.ID
	_, err := s.CreateFile(t.Context(), g, nil)
	wantCode(t, "CreateFile with an existing ID", err, filehub.ECONFLICT)
	if _, err := s.FindBlob(t.Context(), g.SHA256); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("blob of the refused file: FindBlob = %v, want ENOTFOUND", err)
	}
	// The same content under the same ID: the blob count must not move.
	h := metaFile("original", 2)
	h.ID = f.ID
	_, err = s.CreateFile(t.Context(), h, nil)
	wantCode(t, "CreateFile with an existing ID and content", err, filehub.ECONFLICT)
	if b := mustFindBlob(t, s, f.SHA256); b.RefCount != 1 {
		t.Errorf("after refused duplicates, ref count = %d, want 1", b.RefCount)
	}
	checkFile(t, "FindFile", mustFindFile(t, s, f.ID), f)
	if events := mustEvents(t, s); len(events) != 1 {
		t.Errorf("got %d events, want 1 (refused creates record none)", len(events))
	}
}

func testMetaCreateCanceled(t *testing.T, s filehub.MetaStore) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	f := metaFile("canceled", 0)
	if _, err := s.CreateFile(ctx, f, nil); err == nil {
		t.Fatalf("CreateFile with a canceled context succeeded")
	}
	if _, err := s.FindFile(t.Context(), f.ID); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("FindFile after a canceled create = %v, want ENOTFOUND", err)
	}
	if events := mustEvents(t, s); len(events) != 0 {
		t.Errorf("canceled create recorded %d events, want 0", len(events))
	}
}

func testMetaNotFound(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	missing := "f_doesnotexist"
	sum := metaFile("never stored", 0).SHA256
	for name, call := range map[string]func() error{
		"FindFile":         func() error { _, err := s.FindFile(ctx, missing); return err },
		"SoftDeleteFile":   func() error { _, err := s.SoftDeleteFile(ctx, missing, metaEpoch, metaEpoch); return err },
		"RestoreFile":      func() error { _, err := s.RestoreFile(ctx, missing); return err },
		"PurgeFile":        func() error { _, err := s.PurgeFile(ctx, missing); return err },
		"FindBlob":         func() error { _, err := s.FindBlob(ctx, sum); return err },
		"FindAPIKeyByHash": func() error { _, err := s.FindAPIKeyByHash(ctx, filehub.HashAPIKey("nope")); return err },
		"RevokeAPIKey":     func() error { _, err := s.RevokeAPIKey(ctx, "nope", metaEpoch); return err },
	} {
		if err := call(); !errors.Is(err, filehub.ErrNotFound) {
			t.Errorf("%s of a missing record = %v, want ENOTFOUND", name, err)
		}
	}
	if events := mustEvents(t, s); len(events) != 0 {
		t.Errorf("failed mutations recorded %d events, want 0", len(events))
	}
}

func testMetaListOrderAndPaging(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	files := mustCreateN(t, s, 25)

	// Empty filter: everything in one page, creation order, no cursor.
	got, next, err := s.ListFiles(ctx, filehub.FileFilter{})
	if err != nil {
		t.Fatalf("ListFiles: %v", err)
	}
	if !slices.Equal(fileIDs(got), fileIDs(files)) || next != "" {
		t.Fatalf("ListFiles = %v, %q; want %v, \"\"", fileIDs(got), next, fileIDs(files))
	}
	for i := range got {
		checkFile(t, fmt.Sprintf("ListFiles[%d]", i), got[i], files[i])
	}

	// Pages of 10, with changes between pages: a file deleted behind the
	// cursor, one deleted ahead of it, one created meanwhile.
	page1, next, err := s.ListFiles(ctx, filehub.FileFilter{Limit: 10})
	if err != nil || next == "" {
		t.Fatalf("page 1: %v, next %q", err, next)
	}
	if !slices.Equal(fileIDs(page1), fileIDs(files[:10])) {
		t.Fatalf("page 1 = %v, want %v", fileIDs(page1), fileIDs(files[:10]))
	}
	if _, err := s.SoftDeleteFile(ctx, files[3].ID, metaEpoch, metaEpoch.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeFile(ctx, files[12].ID); err != nil {
		t.Fatal(err)
	}
	late := metaFile("late", 100)
	mustCreate(t, s, late)

	var rest []*filehub.File
	for range 10 {
		if next == "" {
			break
		}
		var page []*filehub.File
		page, next, err = s.ListFiles(ctx, filehub.FileFilter{Limit: 10, Cursor: next})
		if err != nil {
			t.Fatalf("ListFiles(cursor): %v", err)
		}
		if len(page) > 10 {
			t.Fatalf("page of %d files, limit 10", len(page))
		}
		rest = append(rest, page...)
	}
	if next != "" {
		t.Fatalf("paging did not end")
	}
	want := slices.Concat(files[10:12], files[13:], []*filehub.File{late})
	if !slices.Equal(fileIDs(rest), fileIDs(want)) {
		t.Errorf("later pages = %v\nwant %v", fileIDs(rest), fileIDs(want))
	}

	// A page that ends exactly at the last file has no cursor.
	live := len(files) - 2 + 1 // one deleted, one purged, one added
	all, next, err := s.ListFiles(ctx, filehub.FileFilter{Limit: live})
	if err != nil || len(all) != live || next != "" {
		t.Errorf("ListFiles(limit %d) of %d live files = %d files, next %q, %v; want all, no cursor",
			live, live, len(all), next, err)
	}
}

func testMetaListLimits(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	const n = 1001
	// Created concurrently for speed: this test is about page sizes only.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := s.CreateFile(ctx, metaFile(fmt.Sprintf("limits %d", i), i), nil); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("CreateFile: %v", err)
	}

	for _, tc := range []struct {
		limit, want int
	}{
		{0, 100},
		{1, 1},
		{1000, 1000},
		{1001, 1000},
		{1 << 30, 1000},
	} {
		got, next, err := s.ListFiles(ctx, filehub.FileFilter{Limit: tc.limit})
		if err != nil {
			t.Fatalf("ListFiles(limit %d): %v", tc.limit, err)
		}
		if len(got) != tc.want || next == "" {
			t.Errorf("ListFiles(limit %d) of %d files = %d files, next %q; want %d and a cursor",
				tc.limit, n, len(got), next, tc.want)
		}
	}
}

func testMetaListBadCursor(t *testing.T, s filehub.MetaStore) {
	mustCreateN(t, s, 3)
	for _, c := range []string{"%%%", "not a cursor", "\x00", "////", "🙂"} {
		_, _, err := s.ListFiles(t.Context(), filehub.FileFilter{Cursor: c})
		wantCode(t, fmt.Sprintf("ListFiles(cursor %q)", c), err, filehub.EINVALID)
	}
}

func testMetaDedupConcurrent(t *testing.T, s filehub.MetaStore) {
	const n = 32
	var (
		calls, fresh atomic.Int64
		start        = make(chan struct{})
		wg           sync.WaitGroup
		errs         = make(chan error, n)
		files        = make([]*filehub.File, n)
	)
	for i := range files {
		files[i] = metaFile("identical content", i)
	}
	for _, f := range files {
		wg.Go(func() {
			<-start
			dedup, err := s.CreateFile(t.Context(), f, placeCounter(&calls))
			if err != nil {
				errs <- err
				return
			}
			if !dedup {
				fresh.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent CreateFile: %v", err)
	}
	if calls.Load() != 1 || fresh.Load() != 1 {
		t.Errorf("%d concurrent creates of one content: place called %d times, %d not deduplicated; want 1 and 1",
			n, calls.Load(), fresh.Load())
	}
	if b := mustFindBlob(t, s, files[0].SHA256); b.RefCount != n {
		t.Errorf("ref count = %d, want %d", b.RefCount, n)
	}
	for _, f := range files {
		mustFindFile(t, s, f.ID)
	}
	if events := mustEvents(t, s); len(events) != n {
		t.Errorf("got %d events, want %d", len(events), n)
	}
}

func testMetaPlaceFails(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	f := metaFile("place fails", 0)
	placeErr := filehub.Errorf(filehub.ESTORAGE, "injected: disk full")
	_, err := s.CreateFile(ctx, f, func(context.Context) error { return placeErr })
	if !errors.Is(err, placeErr) || filehub.ErrorCode(err) != filehub.ESTORAGE {
		t.Fatalf("CreateFile with failing place = %v, want the place error %v", err, placeErr)
	}
	if _, err := s.FindFile(ctx, f.ID); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("FindFile after failed place = %v, want ENOTFOUND", err)
	}
	if _, err := s.FindBlob(ctx, f.SHA256); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("FindBlob after failed place = %v, want ENOTFOUND", err)
	}
	if events := mustEvents(t, s); len(events) != 0 {
		t.Errorf("failed create recorded %d events, want 0", len(events))
	}

	// Nothing was left behind, so a retry is a fresh insert that places.
	if dedup := mustCreate(t, s, f); dedup {
		t.Errorf("retry after failed place: deduplicated = true, want false")
	}
	if b := mustFindBlob(t, s, f.SHA256); b.RefCount != 1 {
		t.Errorf("after retry, ref count = %d, want 1", b.RefCount)
	}
}

func testMetaSoftDelete(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	files := mustCreateN(t, s, 3)
	f := files[1]
	at := metaEpoch.Add(time.Hour)
	purgeAfter := at.Add(7 * 24 * time.Hour)

	got, err := s.SoftDeleteFile(ctx, f.ID, at, purgeAfter)
	if err != nil {
		t.Fatalf("SoftDeleteFile: %v", err)
	}
	want := *f
	want.DeletedAt, want.PurgeAfter = &at, &purgeAfter
	checkFile(t, "SoftDeleteFile", got, &want)
	if !got.Deleted() {
		t.Errorf("deleted file: Deleted() = false")
	}
	checkFile(t, "FindFile of a deleted file", mustFindFile(t, s, f.ID), &want)

	live, _, err := s.ListFiles(ctx, filehub.FileFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := fileIDs(live); !slices.Equal(ids, []string{files[0].ID, files[2].ID}) {
		t.Errorf("ListFiles after delete = %v, want %v", ids, []string{files[0].ID, files[2].ID})
	}
	all, _, err := s.ListFiles(ctx, filehub.FileFilter{IncludeDeleted: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fileIDs(all), fileIDs(files)) {
		t.Errorf("ListFiles(IncludeDeleted) = %v, want %v", fileIDs(all), fileIDs(files))
	} else {
		checkFile(t, "ListFiles(IncludeDeleted)[1]", all[1], &want)
	}

	_, err = s.SoftDeleteFile(ctx, f.ID, at.Add(time.Minute), purgeAfter.Add(time.Minute))
	wantCode(t, "SoftDeleteFile of a deleted file", err, filehub.ENOTFOUND)
	checkFile(t, "FindFile after second delete", mustFindFile(t, s, f.ID), &want)

	// A soft-deleted file still references its content.
	if b := mustFindBlob(t, s, f.SHA256); b.RefCount != 1 {
		t.Errorf("ref count of a deleted file's blob = %d, want 1", b.RefCount)
	}
}

func testMetaRestore(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	f := mustCreateN(t, s, 1)[0]

	_, err := s.RestoreFile(ctx, f.ID)
	wantCode(t, "RestoreFile of a live file", err, filehub.ENOTFOUND)

	if _, err := s.SoftDeleteFile(ctx, f.ID, metaEpoch, metaEpoch.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := s.RestoreFile(ctx, f.ID)
	if err != nil {
		t.Fatalf("RestoreFile: %v", err)
	}
	checkFile(t, "RestoreFile", got, f)
	checkFile(t, "FindFile after restore", mustFindFile(t, s, f.ID), f)
	live, _, err := s.ListFiles(ctx, filehub.FileFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fileIDs(live), []string{f.ID}) {
		t.Errorf("ListFiles after restore = %v, want [%s]", fileIDs(live), f.ID)
	}
	_, err = s.RestoreFile(ctx, f.ID)
	wantCode(t, "second RestoreFile", err, filehub.ENOTFOUND)

	// Delete works again after a restore.
	if _, err := s.SoftDeleteFile(ctx, f.ID, metaEpoch, metaEpoch.Add(time.Hour)); err != nil {
		t.Errorf("SoftDeleteFile after restore: %v", err)
	}
}

func testMetaPurge(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	f := metaFile("purged content", 0)
	g := metaFile("purged content", 1)
	mustCreate(t, s, f)
	mustCreate(t, s, g)

	// Purge a soft-deleted file, then a live one: both are allowed.
	at := metaEpoch.Add(time.Hour)
	purgeAfter := at.Add(time.Hour)
	if _, err := s.SoftDeleteFile(ctx, f.ID, at, purgeAfter); err != nil {
		t.Fatal(err)
	}
	got, err := s.PurgeFile(ctx, f.ID)
	if err != nil {
		t.Fatalf("PurgeFile: %v", err)
	}
	want := *f
	want.DeletedAt, want.PurgeAfter = &at, &purgeAfter
	checkFile(t, "PurgeFile returns the file as it was", got, &want)
	if _, err := s.FindFile(ctx, f.ID); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("FindFile after purge = %v, want ENOTFOUND", err)
	}
	if b := mustFindBlob(t, s, f.SHA256); b.RefCount != 1 {
		t.Errorf("after one of two purged, ref count = %d, want 1", b.RefCount)
	}
	_, err = s.PurgeFile(ctx, f.ID)
	wantCode(t, "second PurgeFile", err, filehub.ENOTFOUND)

	if _, err := s.PurgeFile(ctx, g.ID); err != nil {
		t.Fatalf("PurgeFile(live): %v", err)
	}
	// The blob record stays, unreferenced, for the cleanup service.
	if b := mustFindBlob(t, s, f.SHA256); b.RefCount != 0 {
		t.Errorf("after both purged, ref count = %d, want 0", b.RefCount)
	}
	all, _, err := s.ListFiles(ctx, filehub.FileFilter{IncludeDeleted: true})
	if err != nil || len(all) != 0 {
		t.Errorf("ListFiles(IncludeDeleted) after purging all = %v, %v; want none", fileIDs(all), err)
	}
}

func testMetaPurgeRevive(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	f := metaFile("revived content", 0)
	mustCreate(t, s, f)
	if _, err := s.PurgeFile(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	g := metaFile("revived content", 1)
	var calls atomic.Int64
	dedup, err := s.CreateFile(ctx, g, placeCounter(&calls))
	if err != nil {
		t.Fatalf("CreateFile of purged content: %v", err)
	}
	if !dedup || calls.Load() != 1 {
		t.Errorf("CreateFile of content whose record exists unreferenced: deduplicated %v, place calls %d; want true, 1",
			dedup, calls.Load())
	}
	if b := mustFindBlob(t, s, f.SHA256); b.RefCount != 1 {
		t.Errorf("revived blob: ref count = %d, want 1", b.RefCount)
	}
}

func testMetaEvents(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	f := metaFile("evented", 0)
	other := metaFile("other", 1)
	at := metaEpoch.Add(time.Hour)
	purgeAfter := at.Add(time.Hour)

	mustCreate(t, s, f)
	mustCreate(t, s, other)
	if _, err := s.SoftDeleteFile(ctx, f.ID, at, purgeAfter); err != nil {
		t.Fatal(err)
	}
	// Failures in between must not record anything.
	if _, err := s.SoftDeleteFile(ctx, f.ID, at, purgeAfter); err == nil {
		t.Fatal("second SoftDeleteFile succeeded")
	}
	if _, err := s.RestoreFile(ctx, other.ID); err == nil {
		t.Fatal("RestoreFile of a live file succeeded")
	}
	if _, err := s.CreateFile(ctx, metaFile("fails", 2), func(context.Context) error {
		return filehub.Errorf(filehub.ESTORAGE, "injected")
	}); err == nil {
		t.Fatal("CreateFile with failing place succeeded")
	}
	if _, err := s.RestoreFile(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeFile(ctx, f.ID); err != nil {
		t.Fatal(err)
	}

	deleted := *f
	deleted.DeletedAt, deleted.PurgeAfter = &at, &purgeAfter
	want := []struct {
		typ  string
		file *filehub.File
	}{
		{filehub.EventFileCreated, f},
		{filehub.EventFileCreated, other},
		{filehub.EventFileDeleted, &deleted},
		{filehub.EventFileRestored, f},
		{filehub.EventFilePurged, f},
	}
	events := mustEvents(t, s)
	if len(events) != len(want) {
		for _, e := range events {
			t.Logf("event %d %s", e.ID, e.Type)
		}
		t.Fatalf("got %d events, want %d", len(events), len(want))
	}
	for i, e := range events {
		if e.Type != want[i].typ {
			t.Errorf("event %d: type %q, want %q", i, e.Type, want[i].typ)
		}
		if i > 0 && e.ID <= events[i-1].ID {
			t.Errorf("event IDs not increasing: %d after %d", e.ID, events[i-1].ID)
		}
		if e.Time.IsZero() {
			t.Errorf("event %d has no time", i)
		}
		checkFile(t, fmt.Sprintf("event %d (%s) file", i, e.Type), e.File, want[i].file)
	}
}

func testMetaEventsPaging(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	files := mustCreateN(t, s, 7)
	all := mustEvents(t, s)
	if len(all) != len(files) {
		t.Fatalf("got %d events, want %d", len(all), len(files))
	}
	var got []*filehub.Event
	after := int64(0)
	for range len(files) + 1 {
		page, err := s.ListEvents(ctx, after, 3)
		if err != nil {
			t.Fatalf("ListEvents(%d, 3): %v", after, err)
		}
		if len(page) > 3 {
			t.Fatalf("ListEvents(%d, 3) returned %d events", after, len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].ID
	}
	if len(got) != len(files) {
		t.Fatalf("paged through %d events, want %d", len(got), len(files))
	}
	for i, e := range got {
		if e.ID != all[i].ID || e.File == nil || e.File.ID != files[i].ID {
			t.Errorf("paged event %d = %d %+v, want event %d for %s", i, e.ID, e.File, all[i].ID, files[i].ID)
		}
	}
	if page, err := s.ListEvents(ctx, all[len(all)-1].ID, 10); err != nil || len(page) != 0 {
		t.Errorf("ListEvents after the last = %d events, %v; want none", len(page), err)
	}
}

// mustBounds returns the store's event bounds, requiring success.
func mustBounds(t *testing.T, s filehub.MetaStore) (oldest, latest int64) {
	t.Helper()
	oldest, latest, err := s.EventBounds(t.Context())
	if err != nil {
		t.Fatalf("EventBounds: %v", err)
	}
	return oldest, latest
}

func mustTrim(t *testing.T, s filehub.MetaStore, before time.Time, keep int) int64 {
	t.Helper()
	n, err := s.TrimEvents(t.Context(), before, keep)
	if err != nil {
		t.Fatalf("TrimEvents(%v, %d): %v", before, keep, err)
	}
	return n
}

func testMetaEventBounds(t *testing.T, s filehub.MetaStore) {
	if oldest, latest := mustBounds(t, s); oldest != 1 || latest != 0 {
		t.Errorf("empty log: bounds = %d, %d; want 1, 0", oldest, latest)
	}
	mustCreateN(t, s, 3)
	all := mustEvents(t, s)
	oldest, latest := mustBounds(t, s)
	if oldest != all[0].ID || latest != all[len(all)-1].ID {
		t.Errorf("bounds = %d, %d; want %d, %d", oldest, latest, all[0].ID, all[len(all)-1].ID)
	}
	// Trimming everything keeps latest: it is the highest id ever assigned,
	// and the next event gets a higher one.
	if n := mustTrim(t, s, time.Time{}, 0); n != int64(len(all)) {
		t.Errorf("TrimEvents(keep 0) deleted %d, want %d", n, len(all))
	}
	if o, l := mustBounds(t, s); l != latest || o != latest+1 {
		t.Errorf("after trimming all: bounds = %d, %d; want %d, %d", o, l, latest+1, latest)
	}
	mustCreateN(t, s, 1)
	next := mustEvents(t, s)
	if len(next) != 1 || next[0].ID <= latest {
		t.Fatalf("after trimming all, a new event has id %v; want one event above %d", next, latest)
	}
	if o, l := mustBounds(t, s); o != next[0].ID || l != next[0].ID {
		t.Errorf("bounds = %d, %d; want %d, %d", o, l, next[0].ID, next[0].ID)
	}
}

func testMetaTrimEventsByCount(t *testing.T, s filehub.MetaStore) {
	mustCreateN(t, s, 10)
	all := mustEvents(t, s)
	for _, tc := range []struct {
		keep        int
		wantDeleted int64
	}{
		{-1, 0}, // no count bound
		{20, 0},
		{10, 0},
		{7, 3},
		{7, 0}, // idempotent
		{2, 5},
	} {
		if n := mustTrim(t, s, time.Time{}, tc.keep); n != tc.wantDeleted {
			t.Errorf("TrimEvents(keep %d) deleted %d, want %d", tc.keep, n, tc.wantDeleted)
		}
	}
	left := mustEvents(t, s)
	if len(left) != 2 || left[0].ID != all[8].ID || left[1].ID != all[9].ID {
		t.Fatalf("after trimming to 2: %d events, want the newest two (%d, %d)", len(left), all[8].ID, all[9].ID)
	}
	if o, l := mustBounds(t, s); o != all[8].ID || l != all[9].ID {
		t.Errorf("bounds = %d, %d; want %d, %d", o, l, all[8].ID, all[9].ID)
	}
}

func testMetaTrimEventsByAge(t *testing.T, s filehub.MetaStore) {
	// Event times are the store's clock at the change, so the test can only
	// cut between events created before and after a point it observes.
	mustCreateN(t, s, 4)
	time.Sleep(2 * time.Millisecond) // event times must differ from cut
	cut := time.Now()
	time.Sleep(2 * time.Millisecond)
	files := mustCreateN(t, s, 3)
	all := mustEvents(t, s)

	if n := mustTrim(t, s, cut.Add(-time.Hour), -1); n != 0 {
		t.Errorf("TrimEvents(an hour ago) deleted %d, want 0", n)
	}
	if n := mustTrim(t, s, cut, -1); n != 4 {
		t.Errorf("TrimEvents(cut) deleted %d, want 4", n)
	}
	left := mustEvents(t, s)
	if len(left) != 3 || left[0].File.ID != files[0].ID {
		t.Fatalf("after trimming by age: %d events, want the 3 newer ones", len(left))
	}
	// Both bounds at once: the stricter wins.
	if n := mustTrim(t, s, cut, 1); n != 2 {
		t.Errorf("TrimEvents(cut, keep 1) deleted %d, want 2", n)
	}
	if o, l := mustBounds(t, s); o != all[6].ID || l != all[6].ID {
		t.Errorf("bounds = %d, %d; want %d, %d", o, l, all[6].ID, all[6].ID)
	}
	if n := mustTrim(t, s, time.Now().Add(time.Hour), -1); n != 1 {
		t.Errorf("TrimEvents(future) deleted %d, want 1", n)
	}
}

// metaKey returns a complete API key named name.
func metaKey(name string, i int, scopes ...filehub.Scope) *filehub.APIKey {
	return &filehub.APIKey{
		ID:        filehub.NewID("k_"),
		Name:      name,
		Scopes:    scopes,
		CreatedAt: metaEpoch.Add(time.Duration(i) * time.Second),
		Hash:      filehub.HashAPIKey(filehub.NewAPIKeySecret()),
	}
}

func checkKey(t *testing.T, what string, got, want *filehub.APIKey) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got no key, want %s", what, want.ID)
		return
	}
	if got.ID != want.ID || got.Name != want.Name || !slices.Equal(got.Scopes, want.Scopes) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !sameTime(got.RevokedAt, want.RevokedAt) ||
		!filehub.EqualHashes(got.Hash, want.Hash) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testMetaAPIKeys(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	if keys, err := s.ListAPIKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("ListAPIKeys of an empty store = %v, %v; want none", keys, err)
	}
	keys := []*filehub.APIKey{
		metaKey("admin", 0, filehub.ScopeAdmin),
		metaKey("uploader", 1, filehub.ScopeRead, filehub.ScopeWrite),
		metaKey("scraper", 2, filehub.ScopeMetrics),
	}
	for _, k := range keys {
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatalf("CreateAPIKey(%s): %v", k.Name, err)
		}
	}
	for _, k := range keys {
		got, err := s.FindAPIKeyByHash(ctx, k.Hash)
		if err != nil {
			t.Fatalf("FindAPIKeyByHash(%s): %v", k.Name, err)
		}
		checkKey(t, "FindAPIKeyByHash", got, k)
	}
	list, err := s.ListAPIKeys(ctx)
	if err != nil {
		t.Fatalf("ListAPIKeys: %v", err)
	}
	if len(list) != len(keys) {
		t.Fatalf("ListAPIKeys returned %d keys, want %d", len(list), len(keys))
	}
	for i := range keys {
		checkKey(t, fmt.Sprintf("ListAPIKeys[%d]", i), list[i], keys[i])
	}
	// Keys are not file mutations: no events.
	if events := mustEvents(t, s); len(events) != 0 {
		t.Errorf("key changes recorded %d events, want 0", len(events))
	}
}

func testMetaAPIKeyConflicts(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	k := metaKey("first", 0, filehub.ScopeRead)
	if err := s.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	sameID := metaKey("second", 1, filehub.ScopeRead)
	sameID.ID = k.ID
	sameHash := metaKey("third", 2, filehub.ScopeRead)
	sameHash.Hash = k.Hash
	sameName := metaKey("first", 3, filehub.ScopeRead)
	for name, dup := range map[string]*filehub.APIKey{"ID": sameID, "hash": sameHash, "name": sameName} {
		wantCode(t, "CreateAPIKey with an existing "+name, s.CreateAPIKey(ctx, dup), filehub.ECONFLICT)
	}
	if keys, err := s.ListAPIKeys(ctx); err != nil || len(keys) != 1 {
		t.Errorf("after refused duplicates, ListAPIKeys = %d keys, %v; want 1", len(keys), err)
	}

	noScopes := metaKey("none", 4)
	wantCode(t, "CreateAPIKey without scopes", s.CreateAPIKey(ctx, noScopes), filehub.EINVALID)
	noHash := metaKey("nohash", 5, filehub.ScopeRead)
	noHash.Hash = nil
	wantCode(t, "CreateAPIKey without hash", s.CreateAPIKey(ctx, noHash), filehub.EINVALID)
}

func testMetaRevokeAPIKey(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	byID := metaKey("by-id", 0, filehub.ScopeRead)
	byName := metaKey("by-name", 1, filehub.ScopeWrite)
	for _, k := range []*filehub.APIKey{byID, byName} {
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	for i, tc := range []struct {
		key *filehub.APIKey
		ref string
	}{
		{byID, byID.ID},
		{byName, byName.Name},
	} {
		at := metaEpoch.Add(time.Duration(i+1) * time.Hour)
		got, err := s.RevokeAPIKey(ctx, tc.ref, at)
		if err != nil {
			t.Fatalf("RevokeAPIKey(%s): %v", tc.ref, err)
		}
		want := *tc.key
		want.RevokedAt = &at
		checkKey(t, "RevokeAPIKey("+tc.ref+")", got, &want)
		found, err := s.FindAPIKeyByHash(ctx, tc.key.Hash)
		if err != nil {
			t.Fatalf("FindAPIKeyByHash of a revoked key: %v", err)
		}
		checkKey(t, "FindAPIKeyByHash after revoke", found, &want)

		_, err = s.RevokeAPIKey(ctx, tc.ref, at.Add(time.Minute))
		wantCode(t, "second RevokeAPIKey("+tc.ref+")", err, filehub.ECONFLICT)
		found, err = s.FindAPIKeyByHash(ctx, tc.key.Hash)
		if err == nil && !sameTime(found.RevokedAt, &at) {
			t.Errorf("second revoke changed revoked_at to %v, want %v", found.RevokedAt, at)
		}
	}
}

func testMetaPing(t *testing.T, s filehub.MetaStore) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testMetaClosed(t *testing.T, s filehub.MetaStore) {
	ctx := t.Context()
	f := metaFile("before close", 0)
	mustCreate(t, s, f)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	k := metaKey("after", 0, filehub.ScopeRead)
	for name, call := range map[string]func() error{
		"CreateFile": func() error {
			_, err := s.CreateFile(ctx, metaFile("after close", 1), nil)
			return err
		},
		"FindFile":         func() error { _, err := s.FindFile(ctx, f.ID); return err },
		"ListFiles":        func() error { _, _, err := s.ListFiles(ctx, filehub.FileFilter{}); return err },
		"SoftDeleteFile":   func() error { _, err := s.SoftDeleteFile(ctx, f.ID, metaEpoch, metaEpoch); return err },
		"RestoreFile":      func() error { _, err := s.RestoreFile(ctx, f.ID); return err },
		"PurgeFile":        func() error { _, err := s.PurgeFile(ctx, f.ID); return err },
		"FindBlob":         func() error { _, err := s.FindBlob(ctx, f.SHA256); return err },
		"ListEvents":       func() error { _, err := s.ListEvents(ctx, 0, 10); return err },
		"EventBounds":      func() error { _, _, err := s.EventBounds(ctx); return err },
		"TrimEvents":       func() error { _, err := s.TrimEvents(ctx, time.Time{}, 0); return err },
		"CreateAPIKey":     func() error { return s.CreateAPIKey(ctx, k) },
		"FindAPIKeyByHash": func() error { _, err := s.FindAPIKeyByHash(ctx, k.Hash); return err },
		"ListAPIKeys":      func() error { _, err := s.ListAPIKeys(ctx); return err },
		"RevokeAPIKey":     func() error { _, err := s.RevokeAPIKey(ctx, k.ID, metaEpoch); return err },
		"Ping":             func() error { return s.Ping(ctx) },
	} {
		if err := call(); err == nil {
			t.Errorf("%s after Close succeeded, want an error", name)
		}
	}
	// A second Close must not panic; its result is the backend's business.
	_ = s.Close()
}
