package cleanup

import (
	"context"
	"errors"
	"time"

	"github.com/filehub/filehub"
)

func init() { registerKind(KindProviderOrphan, func() kind { return &providerOrphanKind{} }) }

// providerOrphanKind lists the files at each provider and reports those no
// mapping names; with RunOptions.ProviderOrphans "delete" it deletes those
// older than the blob grace.
type providerOrphanKind struct {
	orphans []providerOrphan
}

func (*providerOrphanKind) name() Kind       { return KindProviderOrphan }
func (*providerOrphanKind) phases() []string { return []string{PhaseProviders} }

func (k *providerOrphanKind) deletions() (capBase, int64) {
	n := int64(0)
	for _, o := range k.orphans {
		if o.delete {
			n++
		}
	}
	return capProviderFiles, n
}

// plan calls no provider method but List, so a dry run changes nothing at
// the providers.
func (k *providerOrphanKind) plan(ctx context.Context, x *execution, kr *KindReport) error {
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
	cutoff := x.now.Add(-time.Duration(x.st.BlobGrace))
	for i := range st.provs {
		p := &st.provs[i]
		after := ""
		for {
			files, next, err := p.List(ctx, after, 0)
			if err != nil {
				return err
			}
			for _, f := range files {
				st.listed[p.Name()]++
				kr.Scanned++
				if st.mapped[p.Name()][f.ID] {
					continue
				}
				del := x.opts.ProviderOrphans == ProviderOrphansDelete && !f.CreatedAt.After(cutoff)
				k.orphans = append(k.orphans, providerOrphan{p, f, del})
				if del {
					st.planned[p.Name()]++
				}
			}
			if next == "" || len(files) == 0 {
				break
			}
			after = next
		}
		if f := x.s.cfg.ProviderFiles; f != nil {
			f(p.Name(), st.listed[p.Name()])
		}
	}
	kr.Found = int64(len(k.orphans))
	return nil
}

func (k *providerOrphanKind) refuse(kr *KindReport) {
	for _, o := range k.orphans {
		if o.delete {
			kr.Targets = append(kr.Targets, wouldDelete(Target{Provider: o.p.Name(), ProviderFileID: o.f.ID,
				Name: o.f.Filename, Bytes: o.f.Bytes}))
		}
	}
}

func (k *providerOrphanKind) apply(ctx context.Context, x *execution, _ string, kr *KindReport) error {
	for _, o := range k.orphans {
		if err := handleOrphan(ctx, x, kr, o); err != nil {
			return err
		}
	}
	return nil
}

func handleOrphan(ctx context.Context, x *execution, kr *KindReport, o providerOrphan) error {
	name, id := o.p.Name(), o.f.ID
	target := providerTarget(name, id)
	t := Target{Provider: name, ProviderFileID: id, Name: o.f.Filename, Bytes: o.f.Bytes}
	if !o.delete {
		t.Action, t.Reason = ActionReported, "no mapping names this provider file"
		if x.opts.ProviderOrphans == ProviderOrphansDelete {
			t.Reason += "; younger than the blob grace"
		}
		kr.Targets = append(kr.Targets, t)
		if x.r.DryRun {
			return nil
		}
		a := x.audit(filehub.AuditProviderOrphanFound, t.Reason)
		a.TargetKind, a.Target, a.Bytes = filehub.TargetProvider, target, o.f.Bytes
		if err := x.s.store.AppendAudit(ctx, a); err != nil {
			return filehub.WrapError(filehub.EUNAVAILABLE, "audit a provider orphan", err)
		}
		return nil
	}
	if x.r.DryRun {
		x.done(kr, t, false)
		return nil
	}
	err := x.s.store.Fenced(ctx, x.fence, func(ctx context.Context) error { return o.p.Delete(ctx, id) })
	if err != nil && !errors.Is(err, filehub.ErrNotFound) {
		return x.fail(ctx, kr, t, filehub.TargetProvider, target, err)
	}
	x.done(kr, t, false)
	a := x.audit(filehub.AuditProviderDeleted, "no mapping names this provider file and it is older than the blob grace")
	a.TargetKind, a.Target, a.Bytes = filehub.TargetProvider, target, o.f.Bytes
	if err := x.s.store.AppendAudit(ctx, a); err != nil {
		return filehub.WrapError(filehub.EUNAVAILABLE, "audit a provider deletion", err)
	}
	return nil
}
