package cleanup

import (
	"context"
	"errors"

	"github.com/filehub/filehub"
)

func init() { registerKind(KindTrash, func() kind { return &trashKind{} }) }

// trashKind purges soft-deleted files past their purge_after time. Their
// blobs are freed later, as unreferenced blobs.
type trashKind struct {
	files []*filehub.File
}

func (*trashKind) name() Kind         { return KindTrash }
func (*trashKind) phases() []string   { return []string{PhaseTrash} }
func (*trashKind) refuse(*KindReport) {}

// deletions: purging a file deletes no blob, so the cap does not count it.
func (*trashKind) deletions() (capBase, int64) { return capNone, 0 }

func (k *trashKind) plan(ctx context.Context, x *execution, kr *KindReport) error {
	files, err := x.s.store.ListExpiredTrash(ctx, x.now, 0)
	if err != nil {
		return err
	}
	k.files = files
	kr.Scanned, kr.Found = int64(len(files)), int64(len(files))
	return nil
}

func (k *trashKind) apply(ctx context.Context, x *execution, _ string, kr *KindReport) error {
	for _, f := range k.files {
		t := Target{FileID: f.ID, SHA256: f.SHA256, Bytes: f.Size}
		if x.r.DryRun {
			x.done(kr, t, false)
			continue
		}
		_, err := x.s.store.PurgeExpiredFile(ctx, x.fence, f.ID, x.now,
			x.audit(filehub.AuditFilePurged, "trash grace expired"))
		if errors.Is(err, filehub.ErrLeaseLost) {
			return err // code ECONFLICT too, but no skip: the run must stop
		}
		switch filehub.ErrorCode(err) {
		case "":
			x.changed = true
			x.done(kr, t, false)
		case filehub.ECONFLICT:
			x.skip(ctx, kr, t, filehub.TargetFile, f.ID, "restored (or its purge time moved) since the scan")
		case filehub.ENOTFOUND:
			x.skip(ctx, kr, t, filehub.TargetFile, f.ID, "already purged")
		default:
			if err := x.fail(ctx, kr, t, filehub.TargetFile, f.ID, err); err != nil {
				return err
			}
		}
	}
	return nil
}
