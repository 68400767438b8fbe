package cleanup

import (
	"context"
	"time"

	"github.com/filehub/filehub"
)

func init() { registerKind(KindUnreferencedBlob, func() kind { return &unreferencedBlobKind{} }) }

// unreferencedBlobKind deletes blob records, and their objects, that no
// file has referenced for longer than the blob grace. It marks them first
// and sweeps in a second phase only those still marked, so that an upload
// reviving one in between (which clears the mark) keeps it.
type unreferencedBlobKind struct {
	blobs []*filehub.Blob
}

func (*unreferencedBlobKind) name() Kind       { return KindUnreferencedBlob }
func (*unreferencedBlobKind) phases() []string { return []string{PhaseMark, PhaseSweep} }

func (k *unreferencedBlobKind) deletions() (capBase, int64) { return capBlobs, int64(len(k.blobs)) }

// plan takes the blobs from the object scan if it read the records anyway,
// and pages through ListUnreferencedBlobs otherwise.
func (k *unreferencedBlobKind) plan(ctx context.Context, x *execution, kr *KindReport) error {
	sc, err := x.objectScan(ctx)
	if err != nil {
		return err
	}
	if kr.Scanned, err = x.blobRecords(ctx); err != nil {
		return err
	}
	if sc != nil && sc.unrefMerged {
		k.blobs = sc.unref
	} else {
		cutoff := x.now.Add(-time.Duration(x.st.BlobGrace))
		after := ""
		for {
			page, err := x.s.store.ListUnreferencedBlobs(ctx, cutoff, after, scanPage)
			if err != nil {
				return err
			}
			k.blobs = append(k.blobs, page...)
			if len(page) < scanPage {
				break
			}
			after = page[len(page)-1].SHA256
		}
	}
	kr.Found = int64(len(k.blobs))
	return nil
}

func (k *unreferencedBlobKind) refuse(kr *KindReport) {
	for _, b := range k.blobs {
		kr.Targets = append(kr.Targets, wouldDelete(Target{SHA256: b.SHA256, Bytes: b.Size}))
	}
}

func (k *unreferencedBlobKind) apply(ctx context.Context, x *execution, phase string, kr *KindReport) error {
	if phase == PhaseMark {
		return k.mark(ctx, x)
	}
	return k.sweep(ctx, x, kr)
}

func (k *unreferencedBlobKind) mark(ctx context.Context, x *execution) error {
	if len(k.blobs) == 0 || x.r.DryRun {
		return nil
	}
	sums := make([]string, 0, min(len(k.blobs), 1000))
	for i, b := range k.blobs {
		sums = append(sums, b.SHA256)
		if len(sums) == cap(sums) || i == len(k.blobs)-1 {
			if _, err := x.s.store.MarkBlobs(ctx, sums, x.s.cfg.Now()); err != nil {
				return err
			}
			sums = sums[:0]
		}
	}
	return nil
}

func (k *unreferencedBlobKind) sweep(ctx context.Context, x *execution, kr *KindReport) error {
	cutoff := x.now.Add(-time.Duration(x.st.BlobGrace))
	for _, b := range k.blobs {
		t := Target{SHA256: b.SHA256, Bytes: b.Size}
		if x.r.DryRun {
			x.done(kr, t, true)
			continue
		}
		swept, err := x.s.store.SweepBlob(ctx, x.fence, b.SHA256, cutoff, func(ctx context.Context) error {
			return x.s.blobs.Delete(ctx, b.SHA256)
		}, x.audit(filehub.AuditBlobSwept, "unreferenced for longer than the blob grace"))
		switch {
		case err != nil:
			if err := x.fail(ctx, kr, t, filehub.TargetBlob, b.SHA256, err); err != nil {
				return err
			}
		case swept:
			x.done(kr, t, true)
		default:
			x.skip(ctx, kr, t, filehub.TargetBlob, b.SHA256, "referenced again since it was marked (revived by an upload)")
		}
	}
	return nil
}
