package cleanup

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/filehub/filehub"
)

// Provider is a model provider whose account a run keeps clean (kinds
// provider_copy and provider_orphan).
type Provider struct {
	filehub.Provider
	// FileQuota is the most files the provider keeps per account; 0: no
	// known limit.
	FileQuota int
}

// Provider orphan modes (RunOptions.ProviderOrphans).
const (
	ProviderOrphansReport = "report" // report files without a mapping (the default)
	ProviderOrphansDelete = "delete" // and delete those older than the blob grace
)

// nearQuota is the fraction of a provider's file quota from which a run
// reports the account as near its quota.
const nearQuota = 0.9

// ProviderQuota is a provider's file count against its quota, in a report.
type ProviderQuota struct {
	Provider string `json:"provider"`
	Quota    int    `json:"quota"`
	// Files is how many files the provider holds (listed, or mapped when
	// provider_orphan was not looked at); Planned how many of them the
	// run deletes.
	Files   int64 `json:"files"`
	Planned int64 `json:"planned"`
	// Near is set when Files is at least 90% of Quota; StillNear when
	// Files-Planned still is, which the operator must resolve.
	Near      bool `json:"near"`
	StillNear bool `json:"still_near"`
}

// providerCopy is a planned provider_copy deletion.
type providerCopy struct {
	p *Provider
	m *filehub.ProviderMapping
}

// providerOrphan is a provider file that no mapping names.
type providerOrphan struct {
	p      *Provider
	f      *filehub.ProviderFile
	delete bool // delete mode and older than the blob grace
}

func providerTarget(name, id string) string { return name + "/" + id }

// planProviders plans provider_copy and provider_orphan. It calls no
// provider method but List, so a dry run changes nothing at the providers.
func (x *execution) planProviders(ctx context.Context) error {
	wantCopy, wantOrphan := x.opts.wants(KindProviderCopy), x.opts.wants(KindProviderOrphan)
	if !wantCopy && !wantOrphan {
		return nil
	}
	var copyKR, orphanKR *KindReport
	if wantCopy {
		copyKR = x.r.kind(KindProviderCopy)
	}
	if wantOrphan {
		orphanKR = x.r.kind(KindProviderOrphan)
	}
	var provs []Provider
	if f := x.s.cfg.Providers; f != nil {
		provs = f()
	}
	if len(provs) == 0 {
		return nil
	}
	ps, ok := x.s.meta.(filehub.ProviderStore)
	if !ok {
		for _, kr := range []*KindReport{copyKR, orphanKR} {
			if kr != nil {
				kr.Unsupported = true
			}
		}
		return nil
	}
	byName := make(map[string]*Provider, len(provs))
	for i := range provs {
		byName[provs[i].Name()] = &provs[i]
	}

	// Every mapping, in pages: provider accounts hold at most thousands
	// of files, so the mapped IDs fit in memory.
	mapped := make(map[string]map[string]bool) // provider -> provider file IDs
	mappings := make(map[string]int64)         // provider -> mappings
	var copies []providerCopy
	cutoff := x.now.Add(-time.Duration(x.st.BlobGrace))
	after := filehub.ProviderKey{}
	for {
		page, err := ps.ListProviderMappings(ctx, after, 1000)
		if err != nil {
			return err
		}
		for _, m := range page {
			p := byName[m.Provider]
			if p == nil {
				continue // not configured: nothing can be done at it
			}
			mappings[m.Provider]++
			if mapped[m.Provider] == nil {
				mapped[m.Provider] = make(map[string]bool)
			}
			if m.ProviderFileID != "" {
				mapped[m.Provider][m.ProviderFileID] = true
			}
			// A pending mapping is a push in progress (or a crashed
			// one, which the next push takes over): not ours.
			if !wantCopy || m.State != filehub.MappingReady {
				continue
			}
			copyKR.Scanned++
			unused, err := x.unusedSince(ctx, m)
			if err != nil {
				return err
			}
			if unused != nil && !unused.After(cutoff) {
				copies = append(copies, providerCopy{p, m})
			}
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Key()
	}
	// Least recently used first, so that a run cut short (an error, the
	// context) has freed the copies least likely to be wanted again.
	slices.SortStableFunc(copies, func(a, b providerCopy) int {
		return cmp.Or(cmp.Compare(a.p.Name(), b.p.Name()), lastUsed(a.m).Compare(lastUsed(b.m)))
	})
	x.provCopies = copies
	if copyKR != nil {
		copyKR.Found = int64(len(copies))
	}

	listed := make(map[string]int64)
	if wantOrphan {
		for i := range provs {
			p := &provs[i]
			after := ""
			for {
				files, next, err := p.List(ctx, after, 0)
				if err != nil {
					return err
				}
				for _, f := range files {
					listed[p.Name()]++
					orphanKR.Scanned++
					if mapped[p.Name()][f.ID] {
						continue
					}
					del := x.opts.ProviderOrphans == ProviderOrphansDelete && !f.CreatedAt.After(cutoff)
					x.provOrphans = append(x.provOrphans, providerOrphan{p, f, del})
				}
				if next == "" || len(files) == 0 {
					break
				}
				after = next
			}
			if f := x.s.cfg.ProviderFiles; f != nil {
				f(p.Name(), listed[p.Name()])
			}
		}
		orphanKR.Found = int64(len(x.provOrphans))
	}

	planned := make(map[string]int64)
	for _, c := range copies {
		planned[c.p.Name()]++
	}
	for _, o := range x.provOrphans {
		if o.delete {
			planned[o.p.Name()]++
		}
	}
	for i := range provs {
		p := &provs[i]
		files := max(listed[p.Name()], mappings[p.Name()])
		x.r.TotalProviderFiles += files
		if p.FileQuota <= 0 {
			continue
		}
		q := ProviderQuota{Provider: p.Name(), Quota: p.FileQuota, Files: files, Planned: planned[p.Name()]}
		limit := nearQuota * float64(p.FileQuota)
		q.Near = float64(q.Files) >= limit
		q.StillNear = float64(q.Files-q.Planned) >= limit
		if q.StillNear {
			x.log.WarnContext(ctx, "cleanup: provider account near its file quota after cleanup",
				"provider", p.Name(), "files", q.Files, "planned", q.Planned, "quota", q.Quota)
		}
		x.r.ProviderQuotas = append(x.r.ProviderQuotas, q)
	}
	return nil
}

// unusedSince returns since when m's content has had no file record (live
// or soft-deleted: a file in the trash can be restored and keeps its copy),
// or nil while it has one. It is the later of the blob's
// unreferenced_since and the mapping's last use; once the blob record is
// swept, the last use alone (a push needs a live file, so the content was
// unused from then on at the latest).
func (x *execution) unusedSince(ctx context.Context, m *filehub.ProviderMapping) (*time.Time, error) {
	since := lastUsed(m)
	b, err := x.s.meta.FindBlob(ctx, m.SHA256)
	switch {
	case errors.Is(err, filehub.ErrNotFound):
		return &since, nil
	case err != nil:
		return nil, err
	case b.RefCount > 0:
		return nil, nil
	}
	if b.UnreferencedSince != nil && b.UnreferencedSince.After(since) {
		since = *b.UnreferencedSince
	}
	return &since, nil
}

// lastUsed is when m was last used, or claimed if never.
func lastUsed(m *filehub.ProviderMapping) time.Time {
	if m.LastUsedAt != nil {
		return *m.LastUsedAt
	}
	return m.ClaimedAt
}

// plannedProviderDeletions counts the provider files the plan deletes.
func (x *execution) plannedProviderDeletions() int64 {
	n := int64(len(x.provCopies))
	for _, o := range x.provOrphans {
		if o.delete {
			n++
		}
	}
	return n
}

// deleteProviderFiles carries out the provider plan: copies are deleted at
// the provider, then their mapping; orphans are reported, or deleted.
func (x *execution) deleteProviderFiles(ctx context.Context) error {
	if len(x.provCopies) > 0 {
		kr := x.r.kind(KindProviderCopy)
		for _, c := range x.provCopies {
			if err := x.deleteCopy(ctx, kr, c); err != nil {
				return err
			}
		}
	}
	if len(x.provOrphans) > 0 {
		kr := x.r.kind(KindProviderOrphan)
		for _, o := range x.provOrphans {
			if err := x.handleOrphan(ctx, kr, o); err != nil {
				return err
			}
		}
	}
	return nil
}

func (x *execution) deleteCopy(ctx context.Context, kr *KindReport, c providerCopy) error {
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
	if err := c.p.Delete(ctx, id); err != nil && !errors.Is(err, filehub.ErrNotFound) {
		return x.fail(ctx, kr, t, filehub.TargetProvider, target, err)
	}
	if _, err := x.s.meta.(filehub.ProviderStore).DeleteProviderMapping(ctx, c.m); err != nil {
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

func (x *execution) handleOrphan(ctx context.Context, kr *KindReport, o providerOrphan) error {
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
	if err := o.p.Delete(ctx, id); err != nil && !errors.Is(err, filehub.ErrNotFound) {
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
