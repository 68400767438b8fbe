package storetest

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filehub/filehub"
)

// RunUploadStore runs the filehub.UploadStore conformance suite against the
// stores returned by newStore (fresh and empty per subtest, as for
// RunMetaStore). It fails at once if the store does not implement
// UploadStore.
func RunUploadStore(t *testing.T, newStore func(t *testing.T) filehub.MetaStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s filehub.UploadStore)
	}{
		{"CreateFind", testUploadCreateFind},
		{"Invalid", testUploadInvalid},
		{"Advance", testUploadAdvance},
		{"AdvanceConcurrent", testUploadAdvanceConcurrent},
		{"Finish", testUploadFinish},
		{"MaxOpen", testUploadMaxOpen},
		{"Delete", testUploadDelete},
		{"ListExpired", testUploadListExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			u, ok := s.(filehub.UploadStore)
			if !ok {
				t.Fatalf("%T does not implement filehub.UploadStore", s)
			}
			tc.fn(t, u)
		})
	}
}

// uploadEpoch is the suite's "now", at a whole microsecond so that every
// backend stores it exactly.
var uploadEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newUpload(owner string, length int64) *filehub.Upload {
	return &filehub.Upload{
		ID:         filehub.NewID("u_"),
		OwnerKeyID: owner,
		Length:     length,
		CreatedAt:  uploadEpoch,
		ExpiresAt:  uploadEpoch.Add(24 * time.Hour),
	}
}

func mustCreateUpload(t *testing.T, s filehub.UploadStore, u *filehub.Upload) {
	t.Helper()
	if err := s.CreateUpload(t.Context(), u, 0); err != nil {
		t.Fatalf("CreateUpload(%s): %v", u.ID, err)
	}
}

func mustFindUpload(t *testing.T, s filehub.UploadStore, id string) *filehub.Upload {
	t.Helper()
	u, err := s.FindUpload(t.Context(), id)
	if err != nil {
		t.Fatalf("FindUpload(%s): %v", id, err)
	}
	return u
}

func wantUploadCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := filehub.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func testUploadCreateFind(t *testing.T, s filehub.UploadStore) {
	u := newUpload("k_owner", 1000)
	u.Metadata = "filename ZG9jLnBkZg==,filetype YXBwbGljYXRpb24vcGRm"
	u.Name, u.ContentType = "doc.pdf", "application/pdf"
	u.HashState = []byte{1, 2, 3}
	mustCreateUpload(t, s, u)
	got := mustFindUpload(t, s, u.ID)
	if got.ID != u.ID || got.OwnerKeyID != u.OwnerKeyID || got.Length != 1000 || got.Offset != 0 ||
		got.Metadata != u.Metadata || got.Name != u.Name || got.ContentType != u.ContentType ||
		got.Concat != "" || len(got.Parts) != 0 || !bytes.Equal(got.HashState, u.HashState) ||
		!got.CreatedAt.Equal(u.CreatedAt) || !got.ExpiresAt.Equal(u.ExpiresAt) || got.FileID != "" || got.Deduplicated {
		t.Fatalf("FindUpload = %+v, want %+v", got, u)
	}

	final := newUpload("k_owner", 20)
	final.Concat, final.Parts = filehub.UploadFinal, []string{"u_aaaa", "u_bbbb"}
	final.Offset, final.FileID, final.Deduplicated = 20, "f_x", true
	mustCreateUpload(t, s, final)
	got = mustFindUpload(t, s, final.ID)
	if got.Concat != filehub.UploadFinal || len(got.Parts) != 2 || got.Parts[0] != "u_aaaa" || got.Parts[1] != "u_bbbb" ||
		got.FileID != "f_x" || !got.Deduplicated || !got.Finished() || !got.Complete() {
		t.Fatalf("final upload = %+v", got)
	}

	deferred := newUpload("k_owner", -1)
	mustCreateUpload(t, s, deferred)
	if got := mustFindUpload(t, s, deferred.ID); got.Length != -1 || got.Complete() {
		t.Fatalf("deferred upload = %+v", got)
	}

	err := s.CreateUpload(t.Context(), u, 0)
	wantUploadCode(t, "CreateUpload of an existing ID", err, filehub.ECONFLICT)
	_, err = s.FindUpload(t.Context(), "u_nosuchupload")
	wantUploadCode(t, "FindUpload of an unknown ID", err, filehub.ENOTFOUND)
}

func testUploadInvalid(t *testing.T, s filehub.UploadStore) {
	for name, mod := range map[string]func(u *filehub.Upload){
		"bad id":          func(u *filehub.Upload) { u.ID = "../etc/passwd" },
		"no owner":        func(u *filehub.Upload) { u.OwnerKeyID = "" },
		"negative length": func(u *filehub.Upload) { u.Length = -2 },
		"offset > length": func(u *filehub.Upload) { u.Offset = 11 },
		"no expiry":       func(u *filehub.Upload) { u.ExpiresAt = time.Time{} },
		"bad concat":      func(u *filehub.Upload) { u.Concat = "both" },
	} {
		u := newUpload("k_owner", 10)
		mod(u)
		wantUploadCode(t, "CreateUpload with "+name, s.CreateUpload(t.Context(), u, 0), filehub.EINVALID)
	}
	u := newUpload("k_owner", 10)
	mustCreateUpload(t, s, u)
	u.Offset = 11
	wantUploadCode(t, "UpdateUpload past the length", s.UpdateUpload(t.Context(), u, 0), filehub.EINVALID)
}

func testUploadAdvance(t *testing.T, s filehub.UploadStore) {
	u := newUpload("k_owner", -1)
	mustCreateUpload(t, s, u)
	u.Offset, u.HashState, u.ExpiresAt = 100, []byte("state-100"), uploadEpoch.Add(48*time.Hour)
	if err := s.UpdateUpload(t.Context(), u, 0); err != nil {
		t.Fatal(err)
	}
	u.Offset, u.Length, u.HashState = 150, 300, []byte("state-150")
	if err := s.UpdateUpload(t.Context(), u, 100); err != nil {
		t.Fatal(err)
	}
	got := mustFindUpload(t, s, u.ID)
	if got.Offset != 150 || got.Length != 300 || string(got.HashState) != "state-150" || !got.ExpiresAt.Equal(u.ExpiresAt) {
		t.Fatalf("after two updates: %+v", got)
	}
	// A writer that started at an old offset loses, and changes nothing.
	stale := *got
	stale.Offset, stale.HashState = 200, []byte("stale")
	wantUploadCode(t, "UpdateUpload from a stale offset", s.UpdateUpload(t.Context(), &stale, 100), filehub.ECONFLICT)
	if got := mustFindUpload(t, s, u.ID); got.Offset != 150 || string(got.HashState) != "state-150" {
		t.Fatalf("a stale update changed the upload: %+v", got)
	}
	ghost := newUpload("k_owner", 10)
	ghost.Offset = 5
	wantUploadCode(t, "UpdateUpload of an unknown upload", s.UpdateUpload(t.Context(), ghost, 0), filehub.ENOTFOUND)
}

func testUploadAdvanceConcurrent(t *testing.T, s filehub.UploadStore) {
	u := newUpload("k_owner", 1000)
	mustCreateUpload(t, s, u)
	const writers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []int64
		errs []error
	)
	for i := range writers {
		wg.Go(func() {
			v := *u
			v.Offset = int64(10 * (i + 1))
			err := s.UpdateUpload(t.Context(), &v, 0)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won = append(won, v.Offset)
			} else if filehub.ErrorCode(err) != filehub.ECONFLICT {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 || len(won) != 1 {
		t.Fatalf("%d concurrent updates from offset 0: winners %v, unexpected errors %v; want exactly one winner", writers, won, errs)
	}
	if got := mustFindUpload(t, s, u.ID); got.Offset != won[0] {
		t.Fatalf("offset %d, want the winner's %d", got.Offset, won[0])
	}
}

func testUploadFinish(t *testing.T, s filehub.UploadStore) {
	u := newUpload("k_owner", 10)
	mustCreateUpload(t, s, u)
	u.Offset, u.FileID, u.Deduplicated, u.HashState = 10, "f_done", true, nil
	if err := s.UpdateUpload(t.Context(), u, 0); err != nil {
		t.Fatal(err)
	}
	got := mustFindUpload(t, s, u.ID)
	if !got.Finished() || got.FileID != "f_done" || !got.Deduplicated || got.HashState != nil {
		t.Fatalf("finished upload = %+v", got)
	}
	// A finished upload never changes again.
	wantUploadCode(t, "UpdateUpload of a finished upload", s.UpdateUpload(t.Context(), u, 10), filehub.ECONFLICT)
}

func testUploadMaxOpen(t *testing.T, s filehub.UploadStore) {
	ctx := t.Context()
	var open []*filehub.Upload
	for range 3 {
		u := newUpload("k_capped", 10)
		if err := s.CreateUpload(ctx, u, 3); err != nil {
			t.Fatal(err)
		}
		open = append(open, u)
	}
	wantUploadCode(t, "a fourth open upload with a cap of 3", s.CreateUpload(ctx, newUpload("k_capped", 10), 3), filehub.ERATELIMIT)
	// Other owners have their own count; no cap means no count.
	if err := s.CreateUpload(ctx, newUpload("k_other", 10), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUpload(ctx, newUpload("k_capped", 10), 0); err != nil {
		t.Fatalf("CreateUpload without a cap: %v", err)
	}
	// A finished upload and an expired one no longer count: two free
	// places, then the cap again.
	done := open[0]
	done.Offset, done.FileID = 10, "f_1"
	if err := s.UpdateUpload(ctx, done, 0); err != nil {
		t.Fatal(err)
	}
	old := newUpload("k_capped2", 10)
	old.ExpiresAt = uploadEpoch.Add(-time.Second)
	mustCreateUpload(t, s, old)
	for i := range 2 {
		if err := s.CreateUpload(ctx, newUpload("k_capped2", 10), 2); err != nil {
			t.Fatalf("open upload %d of 2 next to an expired one: %v", i+1, err)
		}
	}
	wantUploadCode(t, "a third open upload with a cap of 2", s.CreateUpload(ctx, newUpload("k_capped2", 10), 2), filehub.ERATELIMIT)
	// Concurrent creations never pass the cap.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
	)
	for range 10 {
		wg.Go(func() {
			err := s.CreateUpload(ctx, newUpload("k_race", 10), 4)
			mu.Lock()
			defer mu.Unlock()
			switch filehub.ErrorCode(err) {
			case "":
				created++
			case filehub.ERATELIMIT:
			default:
				t.Errorf("concurrent CreateUpload: %v", err)
			}
		})
	}
	wg.Wait()
	if created != 4 {
		t.Fatalf("10 concurrent creations with a cap of 4 created %d", created)
	}
}

func testUploadDelete(t *testing.T, s filehub.UploadStore) {
	u := newUpload("k_owner", 10)
	mustCreateUpload(t, s, u)
	if err := s.DeleteUpload(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	_, err := s.FindUpload(t.Context(), u.ID)
	wantUploadCode(t, "FindUpload after DeleteUpload", err, filehub.ENOTFOUND)
	wantUploadCode(t, "DeleteUpload again", s.DeleteUpload(t.Context(), u.ID), filehub.ENOTFOUND)
}

func testUploadListExpired(t *testing.T, s filehub.UploadStore) {
	var want []string
	for i := range 4 {
		u := newUpload("k_owner", 10)
		u.ExpiresAt = uploadEpoch.Add(time.Duration(i) * time.Hour)
		mustCreateUpload(t, s, u)
		if i < 3 {
			want = append(want, u.ID)
		}
	}
	finished := newUpload("k_owner", 10)
	finished.ExpiresAt = uploadEpoch.Add(90 * time.Minute)
	finished.Offset, finished.FileID = 10, "f_x"
	mustCreateUpload(t, s, finished)
	want = []string{want[0], want[1], finished.ID, want[2]}

	got, err := s.ListExpiredUploads(t.Context(), uploadEpoch.Add(2*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range got {
		ids = append(ids, u.ID)
	}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("ListExpiredUploads = %v, want %v (oldest expiry first, finished ones included)", ids, want)
	}
	got, err = s.ListExpiredUploads(t.Context(), uploadEpoch.Add(2*time.Hour), 2)
	if err != nil || len(got) != 2 {
		t.Fatalf("ListExpiredUploads with limit 2 = %d uploads, %v", len(got), err)
	}
}
