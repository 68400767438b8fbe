package cleanup

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/filehub/filehub"
)

func init() { registerKind(KindProviderCopy, func() kind { return &providerCopyKind{} }) }

// providerCopyKind deletes provider copies (ready mappings) of content
// that no file has had, and no push has used, for longer than the blob
// grace: at the provider first, then the mapping.
type providerCopyKind struct {
	copies []providerCopy
	ps     filehub.ProviderStore
}

func (*providerCopyKind) name() Kind       { return KindProviderCopy }
func (*providerCopyKind) phases() []string { return []string{PhaseProviders} }

func (k *providerCopyKind) deletions() (capBase, int64) {
	return capProviderFiles, int64(len(k.copies))
}

func (k *providerCopyKind) plan(ctx context.Context, x *execution, kr *KindReport) error {
	st, err := x.providerPlan(ctx)
	if err != nil {
		return err
	}
	if st.unsupported() {
		kr.Unsupported = true
	}
	if !st.active() {
		return nil
	}
	k.ps = st.ps
	cutoff := x.now.Add(-time.Duration(x.st.BlobGrace))
	for _, c := range st.ready {
		kr.Scanned++
		unused, err := x.unusedSince(ctx, c.m)
		if err != nil {
			return err
		}
		if unused != nil && !unused.After(cutoff) {
			k.copies = append(k.copies, c)
			st.planned[c.p.Name()]++
		}
	}
	// Least recently used first, so that a run cut short (an error, the
	// context) has freed the copies least likely to be wanted again.
	slices.SortStableFunc(k.copies, func(a, b providerCopy) int {
		return cmp.Or(cmp.Compare(a.p.Name(), b.p.Name()), lastUsed(a.m).Compare(lastUsed(b.m)))
	})
	kr.Found = int64(len(k.copies))
	return nil
}

func (k *providerCopyKind) refuse(kr *KindReport) {
	for _, c := range k.copies {
		kr.Targets = append(kr.Targets, wouldDelete(Target{SHA256: c.m.SHA256, Provider: c.p.Name(),
			ProviderFileID: c.m.ProviderFileID, Bytes: c.m.Size}))
	}
}

func (k *providerCopyKind) apply(ctx context.Context, x *execution, _ string, kr *KindReport) error {
	for _, c := range k.copies {
		if err := k.deleteCopy(ctx, x, kr, c); err != nil {
			return err
		}
	}
	return nil
}

func (k *providerCopyKind) deleteCopy(ctx context.Context, x *execution, kr *KindReport, c providerCopy) error {
	name, id := c.p.Name(), c.m.ProviderFileID
	target := providerTarget(name, id)
	t := Target{SHA256: c.m.SHA256, Provider: name, ProviderFileID: id, Bytes: c.m.Size}
	if x.r.DryRun {
		x.done(kr, t, false)
		return nil
	}
	// Look again: a file of the same content may have been uploaded since
	// the plan. (A push in the short window between this look and the
	// mapping's deletion may still answer with the deleted ID; the next
	// push that verifies it uploads again.)
	if b, err := x.s.meta.FindBlob(ctx, c.m.SHA256); err == nil && b.RefCount > 0 {
		x.skip(ctx, kr, t, filehub.TargetProvider, target, "the content has a file again")
		return nil
	} else if err != nil && !errors.Is(err, filehub.ErrNotFound) {
		return x.fail(ctx, kr, t, filehub.TargetProvider, target, err)
	}
	// The provider first, then the mapping: a crash in between leaves a
	// mapping to a deleted file, which the next run deletes again (404
	// counts as deleted) — not a provider file nothing knows about.
	err := x.s.store.Fenced(ctx, x.fence, func(ctx context.Context) error { return c.p.Delete(ctx, id) })
	if err != nil && !errors.Is(err, filehub.ErrNotFound) {
		return x.fail(ctx, kr, t, filehub.TargetProvider, target, err)
	}
	if _, err := k.ps.DeleteProviderMapping(ctx, c.m); err != nil {
		return x.fail(ctx, kr, t, filehub.TargetProvider, target, err)
	}
	// A mapping changed since the plan (a push found the file gone and
	// uploaded again) is left alone; the file deleted was still ours.
	x.done(kr, t, false)
	a := x.audit(filehub.AuditProviderDeleted, "no file has had the content for longer than the blob grace")
	a.TargetKind, a.Target, a.Bytes = filehub.TargetProvider, target, c.m.Size
	if err := x.s.store.AppendAudit(ctx, a); err != nil {
		return filehub.WrapError(filehub.EUNAVAILABLE, "audit a provider deletion", err)
	}
	return nil
}
