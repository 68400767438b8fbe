package cleanup

import (
	"context"

	"github.com/filehub/filehub"
)

func init() { registerKind(KindOrphanObject, func() kind { return &orphanObjectKind{} }) }

// orphanObjectKind deletes objects that have no blob record and are older
// than the blob grace (by modification time): the leftovers of uploads that
// died between writing the object and recording it. It plans from the
// object scan.
type orphanObjectKind struct {
	orphans []filehub.BlobInfo
}

func (*orphanObjectKind) name() Kind       { return KindOrphanObject }
func (*orphanObjectKind) phases() []string { return []string{PhaseOrphans} }

func (k *orphanObjectKind) deletions() (capBase, int64) { return capBlobs, int64(len(k.orphans)) }

func (k *orphanObjectKind) plan(ctx context.Context, x *execution, kr *KindReport) error {
	sc, err := x.objectScan(ctx)
	if err != nil {
		return err
	}
	if sc.unsupported {
		kr.Unsupported = true
		return nil
	}
	k.orphans = sc.orphans
	kr.Scanned, kr.Found = sc.objects, int64(len(sc.orphans))
	return nil
}

func (k *orphanObjectKind) refuse(kr *KindReport) {
	for _, o := range k.orphans {
		kr.Targets = append(kr.Targets, wouldDelete(Target{SHA256: o.SHA256, Bytes: o.Size}))
	}
}

func (k *orphanObjectKind) apply(ctx context.Context, x *execution, _ string, kr *KindReport) error {
	for _, o := range k.orphans {
		t := Target{SHA256: o.SHA256, Bytes: o.Size}
		if x.r.DryRun {
			x.done(kr, t, true)
			continue
		}
		a := x.audit(filehub.AuditObjectDeleted, "object without a blob record, older than the blob grace")
		a.Bytes = o.Size
		deleted, err := x.s.store.DeleteOrphanObject(ctx, x.fence, o.SHA256, func(ctx context.Context) error {
			return x.s.blobs.Delete(ctx, o.SHA256)
		}, a)
		switch {
		case err != nil:
			if err := x.fail(ctx, kr, t, filehub.TargetBlob, o.SHA256, err); err != nil {
				return err
			}
		case deleted:
			x.done(kr, t, true)
		default:
			x.skip(ctx, kr, t, filehub.TargetBlob, o.SHA256, "a blob record appeared since the scan (an upload of the same content)")
		}
	}
	return nil
}
