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
// and audited; unexpired and finished ones stay.
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
	if kr := r.Kinds[cleanup.KindExpiredUpload]; kr.Found != 1 || kr.Deleted != 1 || len(kr.Targets) != 1 ||
		kr.Targets[0].Name != expired.ID || kr.Targets[0].Action != cleanup.ActionWouldDelete {
		t.Fatalf("dry run: %+v, want %s to be deleted", kr, expired.ID)
	}
	if got := targets(r, cleanup.KindExpiredUpload); len(got) != 1 || !strings.HasSuffix(got[0], expired.ID) {
		t.Fatalf("dry run targets %v, want %s", got, expired.ID)
	}
	if _, err := e.meta.FindUpload(ctx, expired.ID); err != nil {
		t.Fatalf("a dry run removed the upload: %v", err)
	}

	r = mustRun(t, s, cleanup.RunOptions{Trigger: "test"})
	if f, d := r.Kinds[cleanup.KindExpiredUpload].Found, r.Kinds[cleanup.KindExpiredUpload].Deleted; f != 1 || d != 1 {
		t.Fatalf("expired_upload found %d deleted %d, want 1 and 1", f, d)
	}
	if _, err := e.meta.FindUpload(ctx, expired.ID); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Fatalf("expired upload still recorded: %v", err)
	}
	if _, err := e.blobs.ReadResumable(ctx, expired.ID, 0); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Fatalf("expired upload's bytes still stored: %v", err)
	}
	for _, u := range []*filehub.Upload{live, done} {
		if _, err := e.meta.FindUpload(ctx, u.ID); err != nil {
			t.Fatalf("upload %s (not expired, or finished) removed: %v", u.ID, err)
		}
	}
	entries := e.audit(filehub.AuditFilter{Action: filehub.AuditUploadExpired})
	if len(entries) != 1 || entries[0].Target != expired.ID || entries[0].TargetKind != filehub.TargetUpload || entries[0].Bytes != 42 {
		t.Fatalf("audit %+v, want one upload.expired of %s, 42 bytes", entries, expired.ID)
	}
}
