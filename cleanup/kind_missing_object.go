package cleanup

import (
	"context"
	"time"

	"github.com/filehub/filehub"
)

func init() { registerKind(KindMissingObject, func() kind { return &missingObjectKind{} }) }

// missingObjectKind flags blob records whose object is gone (and their
// files, File.ContentMissing), and unflags those whose object is back. It
// never deletes anything: the content has to come back from a backup. It
// plans from the object scan.
type missingObjectKind struct {
	missing  []*filehub.Blob
	returned []*filehub.Blob
}

func (*missingObjectKind) name() Kind         { return KindMissingObject }
func (*missingObjectKind) phases() []string   { return []string{PhaseMissing} }
func (*missingObjectKind) refuse(*KindReport) {}

// deletions: flagging deletes nothing.
func (*missingObjectKind) deletions() (capBase, int64) { return capNone, 0 }

func (k *missingObjectKind) plan(ctx context.Context, x *execution, kr *KindReport) error {
	sc, err := x.objectScan(ctx)
	if err != nil {
		return err
	}
	if sc.unsupported {
		kr.Unsupported = true
		return nil
	}
	k.missing, k.returned = sc.missing, sc.returned
	kr.Scanned, kr.Found = sc.records, int64(len(sc.missing))
	return nil
}

func (k *missingObjectKind) apply(ctx context.Context, x *execution, _ string, kr *KindReport) error {
	for _, b := range k.missing {
		t := Target{SHA256: b.SHA256, Bytes: b.Size, Action: ActionFlagged,
			Reason: "the blob record exists but its object is missing; restore it from a backup"}
		if x.r.DryRun {
			t.Action = ActionWouldFlag
			kr.Targets = append(kr.Targets, t)
			continue
		}
		x.log.ErrorContext(ctx, "cleanup: object missing for blob record", "sha256", b.SHA256, "ref_count", b.RefCount)
		_, err := x.s.store.SetBlobMissing(ctx, b.SHA256, x.now, x.audit(filehub.AuditObjectMissing, t.Reason))
		if err != nil && filehub.ErrorCode(err) != filehub.ENOTFOUND {
			if err := x.fail(ctx, kr, t, filehub.TargetBlob, b.SHA256, err); err != nil {
				return err
			}
			continue
		}
		kr.Targets = append(kr.Targets, t)
	}
	for _, b := range k.returned {
		t := Target{SHA256: b.SHA256, Bytes: b.Size, Action: ActionUnflagged, Reason: "the object is back"}
		if x.r.DryRun {
			continue
		}
		_, err := x.s.store.SetBlobMissing(ctx, b.SHA256, time.Time{}, x.audit(filehub.AuditObjectFound, t.Reason))
		if err != nil && filehub.ErrorCode(err) != filehub.ENOTFOUND {
			if err := x.fail(ctx, kr, t, filehub.TargetBlob, b.SHA256, err); err != nil {
				return err
			}
			continue
		}
		kr.Targets = append(kr.Targets, t)
	}
	return nil
}
