package cleanup

import (
	"context"

	"github.com/filehub/filehub"
)

func init() { registerKind(KindExpiredUpload, func() kind { return &expiredUploadKind{} }) }

// expiredUploadKind removes resumable (tus) uploads past their expiry:
// unfinished ones with their bytes (a file in uploads/, or chunk objects in
// the bucket), and the records of finished ones, kept until then so that a
// late HEAD still names the file (the file itself stays). An upload's
// expiry is its grace: each chunk pushes it back by the tus expiry, and an
// expired upload answers 410, so no client can revive one between plan and
// apply.
type expiredUploadKind struct {
	uploads filehub.UploadStore
	stager  filehub.ResumableStager
	found   []*filehub.Upload
}

func (*expiredUploadKind) name() Kind         { return KindExpiredUpload }
func (*expiredUploadKind) phases() []string   { return []string{PhaseTemp} }
func (*expiredUploadKind) refuse(*KindReport) {}

// deletions: an unfinished upload is no blob and no file; the cap does not
// count it.
func (*expiredUploadKind) deletions() (capBase, int64) { return capNone, 0 }

func (k *expiredUploadKind) plan(ctx context.Context, x *execution, kr *KindReport) error {
	uploads, ok := x.s.meta.(filehub.UploadStore)
	stager, ok2 := x.s.blobs.(filehub.ResumableStager)
	if !ok || !ok2 {
		kr.Unsupported = true
		return nil
	}
	k.uploads, k.stager = uploads, stager
	found, err := uploads.ListExpiredUploads(ctx, x.now, 0)
	if err != nil {
		return err
	}
	k.found = found
	kr.Scanned = int64(len(found))
	kr.Found = int64(len(found))
	return nil
}

func (k *expiredUploadKind) apply(ctx context.Context, x *execution, _ string, kr *KindReport) error {
	if len(k.found) == 0 {
		return nil
	}
	var audits []filehub.AuditEntry
	for _, u := range k.found {
		t := Target{Name: u.ID, Bytes: u.Offset}
		if x.r.DryRun {
			x.done(kr, t, true)
			continue
		}
		// The bytes first: a crash in between leaves a record whose
		// bytes are gone (404 on the next PATCH, removed by the next
		// run), never bytes without a record.
		// Fenced like every destructive step: a run that lost the
		// cleanup lease removes nothing.
		err := x.s.store.Fenced(ctx, x.fence, func(ctx context.Context) error { return k.stager.RemoveResumable(ctx, u.ID) })
		if err == nil {
			if err = k.uploads.DeleteUpload(ctx, u.ID); filehub.ErrorCode(err) == filehub.ENOTFOUND {
				err = nil // terminated by its client meanwhile
			}
		}
		if err != nil {
			if err := x.fail(ctx, kr, t, filehub.TargetUpload, u.ID, err); err != nil {
				return err
			}
			continue
		}
		x.done(kr, t, true)
		reason := "resumable upload expired unfinished"
		if u.Finished() {
			reason = "record of a finished resumable upload past its expiry (its file " + u.FileID + " stays)"
		}
		a := x.audit(filehub.AuditUploadExpired, reason)
		a.TargetKind, a.Target, a.Bytes = filehub.TargetUpload, u.ID, u.Offset
		audits = append(audits, a)
	}
	if err := x.s.store.AppendAudit(ctx, audits...); err != nil {
		return filehub.WrapError(filehub.EUNAVAILABLE, "audit removed uploads", err)
	}
	return nil
}
