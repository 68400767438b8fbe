package cleanup

import (
	"context"
	"errors"
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

// providerState is what provider_copy and provider_orphan share: the
// configured providers and every mapping of theirs, read once per run by
// the first of the two kinds to plan (execution.providerPlan).
type providerState struct {
	provs  []Provider
	byName map[string]*Provider
	// ps is the metadata store's mappings; nil if it keeps none (then the
	// provider kinds are unsupported).
	ps filehub.ProviderStore

	mapped   map[string]map[string]bool // provider -> provider file IDs named by a mapping
	mappings map[string]int64           // provider -> mappings
	ready    []providerCopy             // ready mappings, in key order: provider_copy's candidates
	listed   map[string]int64           // provider -> files listed (by provider_orphan)
	planned  map[string]int64           // provider -> deletions planned (by both kinds)
}

// providerPlan returns the providers' shared state, reading every mapping
// on the first call. It calls no provider method, so a dry run changes
// nothing at the providers.
func (x *execution) providerPlan(ctx context.Context) (*providerState, error) {
	if x.prov != nil {
		return x.prov, nil
	}
	st := &providerState{
		mapped: make(map[string]map[string]bool), mappings: make(map[string]int64),
		listed: make(map[string]int64), planned: make(map[string]int64),
	}
	if f := x.s.cfg.Providers; f != nil {
		st.provs = f()
	}
	st.ps, _ = x.s.meta.(filehub.ProviderStore)
	if len(st.provs) == 0 || st.ps == nil {
		x.prov = st
		return st, nil
	}
	st.byName = make(map[string]*Provider, len(st.provs))
	for i := range st.provs {
		st.byName[st.provs[i].Name()] = &st.provs[i]
	}
	// Every mapping, in pages: provider accounts hold at most thousands
	// of files, so the mapped IDs fit in memory.
	after := filehub.ProviderKey{}
	for {
		page, err := st.ps.ListProviderMappings(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, m := range page {
			p := st.byName[m.Provider]
			if p == nil {
				continue // not configured: nothing can be done at it
			}
			st.mappings[m.Provider]++
			if st.mapped[m.Provider] == nil {
				st.mapped[m.Provider] = make(map[string]bool)
			}
			if m.ProviderFileID != "" {
				st.mapped[m.Provider][m.ProviderFileID] = true
			}
			// A pending mapping is a push in progress (or a crashed
			// one, which the next push takes over): not ours.
			if m.State == filehub.MappingReady {
				st.ready = append(st.ready, providerCopy{p, m})
			}
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Key()
	}
	x.prov = st
	return st, nil
}

// active reports whether the provider kinds have anything to look at;
// unsupported reports whether that is because the metadata store keeps no
// mappings.
func (st *providerState) active() bool      { return len(st.provs) > 0 && st.ps != nil }
func (st *providerState) unsupported() bool { return len(st.provs) > 0 && st.ps == nil }

// planProviderQuotas reports, after both provider kinds planned, the
// number of files at each provider (the base of the provider safety cap)
// and the accounts near their file quota.
func (x *execution) planProviderQuotas(ctx context.Context) {
	st := x.prov
	if st == nil || !st.active() {
		return
	}
	for i := range st.provs {
		p := &st.provs[i]
		files := max(st.listed[p.Name()], st.mappings[p.Name()])
		x.r.TotalProviderFiles += files
		if p.FileQuota <= 0 {
			continue
		}
		q := ProviderQuota{Provider: p.Name(), Quota: p.FileQuota, Files: files, Planned: st.planned[p.Name()]}
		limit := nearQuota * float64(p.FileQuota)
		q.Near = float64(q.Files) >= limit
		q.StillNear = float64(q.Files-q.Planned) >= limit
		if q.StillNear {
			x.log.WarnContext(ctx, "cleanup: provider account near its file quota after cleanup",
				"provider", p.Name(), "files", q.Files, "planned", q.Planned, "quota", q.Quota)
		}
		x.r.ProviderQuotas = append(x.r.ProviderQuotas, q)
	}
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
