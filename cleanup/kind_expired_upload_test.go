package cleanup_test

import (
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/cleanup"
)

// TestExpiredUploads: resumable uploads that expired unfinished are
// reported by a dry run (which keeps them), then removed with their bytes
// and audited; so is the record of a finished upload past its expiry;
// unexpired ones stay.
func TestExpiredUploads(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	now := e.clock.Now().UTC()
	mk := func(expires time.Time, finished bool) *filehub.Upload {
		u := &filehub.Upload{ID: filehub.NewID("u_"), OwnerKeyID: "k_1", Length: 100, CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: expires}
		if _, err := e.blobs.WriteResumable(ctx, u.ID, 0, strings.NewReader("forty-two bytes of an abandoned upload...")); err != nil {
			t.Fatal(err)
		}
		u.Offset = 42
		if finished {
			u.Offset, u.Length, u.FileID = 42, 42, "f_done"
		}
		if err := e.meta.CreateUpload(ctx, u, 0); err != nil {
			t.Fatal(err)
		}
		return u
	}
	expired := mk(now.Add(-time.Hour), false)
	live := mk(now.Add(time.Hour), false)
	done := mk(now.Add(-time.Hour), true)
	s := e.service(nil)

	r := mustRun(t, s, cleanup.RunOptions{Trigger: "test", DryRun: true, Only: []cleanup.Kind{cleanup.KindExpiredUpload}})
	if kr := r.Kinds[cleanup.KindExpiredUpload]; kr.Found != 2 || kr.Deleted != 2 || len(kr.Targets) != 2 ||
		kr.Targets[0].Action != cleanup.ActionWouldDelete {
		t.Fatalf("dry run: %+v, want %s and %s to be deleted", kr, expired.ID, done.ID)
	}
	if _, err := e.meta.FindUpload(ctx, expired.ID); err != nil {
		t.Fatalf("a dry run removed the upload: %v", err)
	}

	r = mustRun(t, s, cleanup.RunOptions{Trigger: "test"})
	if f, d := r.Kinds[cleanup.KindExpiredUpload].Found, r.Kinds[cleanup.KindExpiredUpload].Deleted; f != 2 || d != 2 {
		t.Fatalf("expired_upload found %d deleted %d, want 2 and 2", f, d)
	}
	for _, u := range []*filehub.Upload{expired, done} {
		if _, err := e.meta.FindUpload(ctx, u.ID); filehub.ErrorCode(err) != filehub.ENOTFOUND {
			t.Fatalf("expired upload %s still recorded: %v", u.ID, err)
		}
	}
	if _, err := e.blobs.ReadResumable(ctx, expired.ID, 0); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Fatalf("expired upload's bytes still stored: %v", err)
	}
	if _, err := e.meta.FindUpload(ctx, live.ID); err != nil {
		t.Fatalf("unexpired upload removed: %v", err)
	}
	entries := e.audit(filehub.AuditFilter{Action: filehub.AuditUploadExpired})
	byTarget := map[string]*filehub.AuditEntry{}
	for _, a := range entries {
		byTarget[a.Target] = a
	}
	if a := byTarget[expired.ID]; len(entries) != 2 || a == nil || a.TargetKind != filehub.TargetUpload || a.Bytes != 42 ||
		byTarget[done.ID] == nil || !strings.Contains(byTarget[done.ID].Reason, "f_done") {
		t.Fatalf("audit %+v, want upload.expired of %s (42 bytes) and of %s (its file named)", entries, expired.ID, done.ID)
	}
}
