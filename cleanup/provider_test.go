package cleanup_test

import (
	"context"
	"slices"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/internal/fakeprovider"
	"github.com/filehub/filehub/openai"
	"github.com/filehub/filehub/providers"
)

// provEnv is an env with a files API stand-in as provider "kimi".
type provEnv struct {
	*env
	fake *fakeprovider.Server
	prov filehub.Provider
	push *providers.Service
}

func newProvEnv(t *testing.T) *provEnv {
	t.Helper()
	e := newEnv(t)
	fake := fakeprovider.New(t, "sk-test")
	c, err := openai.New(openai.Config{Name: "kimi", BaseURL: fake.URL, APIKey: "sk-test", Purpose: "file-extract"})
	if err != nil {
		t.Fatal(err)
	}
	push, err := providers.New(e.meta, e.blobs, []filehub.Provider{c}, providers.Config{Now: e.clock.Now, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	return &provEnv{env: e, fake: fake, prov: c, push: push}
}

func (e *provEnv) cleaner(quota int) *cleanup.Service {
	return e.service(func(c *cleanup.Config) {
		c.Providers = func() []cleanup.Provider { return []cleanup.Provider{{Provider: e.prov, FileQuota: quota}} }
		c.MinDeleteAllowance = 100 // these tests are not about the safety cap
	})
}

// pushed uploads content as a file and pushes it; it returns the file and
// its provider file ID.
func (e *provEnv) pushed(content string) (*filehub.File, string) {
	e.t.Helper()
	f := e.upload(content)
	res, err := e.push.Push(context.Background(), f.ID, "kimi")
	if err != nil {
		e.t.Fatal(err)
	}
	return f, res.ProviderFileID
}

func (e *provEnv) trashAndPurge(f *filehub.File) {
	e.t.Helper()
	if _, err := e.files.Delete(context.Background(), f.ID); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.meta.PurgeFile(context.Background(), f.ID); err != nil {
		e.t.Fatal(err)
	}
}

func (e *provEnv) atProvider() []string {
	var ids []string
	for _, f := range e.fake.Files() {
		ids = append(ids, f.ID)
	}
	return ids
}

func providerTargets(r *cleanup.Report, k cleanup.Kind) map[string]string {
	out := map[string]string{}
	if kr := r.Kinds[k]; kr != nil {
		for _, t := range kr.Targets {
			out[t.ProviderFileID] = t.Action
		}
	}
	return out
}

func TestProviderCopyDeletedAfterPurgeAndGrace(t *testing.T) {
	e := newProvEnv(t)
	gone, goneID := e.pushed("content to forget")
	trashed, trashedID := e.pushed("content in the trash")
	_, liveID := e.pushed("live content")
	e.trashAndPurge(gone)
	if _, err := e.files.Delete(context.Background(), trashed.ID); err != nil {
		t.Fatal(err)
	}
	s := e.cleaner(0)
	only := []cleanup.Kind{cleanup.KindProviderCopy, cleanup.KindProviderOrphan}

	// Within the grace nothing goes.
	r := mustRun(t, s, cleanup.RunOptions{Only: only})
	if f, d := counts(r, cleanup.KindProviderCopy); f != 0 || d != 0 {
		t.Fatalf("within the grace: provider_copy found %d deleted %d, want 0", f, d)
	}

	e.clock.Advance(cleanup.DefaultBlobGrace + day)
	dry := mustRun(t, s, cleanup.RunOptions{Only: only, DryRun: true})
	if got := providerTargets(dry, cleanup.KindProviderCopy); len(got) != 1 || got[goneID] != cleanup.ActionWouldDelete {
		t.Fatalf("dry run targets = %v, want %s would_delete", got, goneID)
	}
	if n := e.fake.Calls("DELETE /files/{id}"); n != 0 || len(e.atProvider()) != 3 {
		t.Fatalf("dry run: %d provider deletes, %d files left; want 0 and 3", n, len(e.atProvider()))
	}

	r = mustRun(t, s, cleanup.RunOptions{Only: only})
	if got := providerTargets(r, cleanup.KindProviderCopy); len(got) != 1 || got[goneID] != cleanup.ActionDeleted {
		t.Fatalf("targets = %v, want %s deleted", got, goneID)
	}
	if got := e.atProvider(); !slices.Equal(got, []string{trashedID, liveID}) {
		t.Errorf("at the provider: %v, want the trashed and the live copy %v", got, []string{trashedID, liveID})
	}
	if _, err := e.meta.FindProviderMapping(context.Background(), filehub.ProviderKey{SHA256: gone.SHA256, Provider: "kimi", Purpose: "file-extract"}); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("mapping after deletion: %v, want ENOTFOUND", err)
	}
	audit, err := e.meta.ListAudit(context.Background(), filehub.AuditFilter{Action: filehub.AuditProviderDeleted})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 1 || audit[0].Target != "kimi/"+goneID || audit[0].TargetKind != filehub.TargetProvider ||
		audit[0].RunID != r.RunID || audit[0].Bytes != gone.Size {
		t.Errorf("audit = %+v, want one provider.deleted of kimi/%s in run %d", audit, goneID, r.RunID)
	}
	// A copy deleted at the provider meanwhile (404) counts as deleted.
	if _, err := e.meta.PurgeFile(context.Background(), trashed.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(cleanup.DefaultBlobGrace + day)
	e.fake.Expire(trashedID)
	r = mustRun(t, s, cleanup.RunOptions{Only: only})
	if got := providerTargets(r, cleanup.KindProviderCopy); got[trashedID] != cleanup.ActionDeleted {
		t.Errorf("expired copy: targets %v, want %s deleted", got, trashedID)
	}
}

func TestProviderOrphansReportedThenDeletedOnRequest(t *testing.T) {
	e := newProvEnv(t)
	_, liveID := e.pushed("live content")
	stray := e.fake.Add("uploaded elsewhere.pdf", "file-extract", 10)
	s := e.cleaner(0)
	only := []cleanup.Kind{cleanup.KindProviderOrphan}

	r := mustRun(t, s, cleanup.RunOptions{Only: only, ProviderOrphans: cleanup.ProviderOrphansDelete})
	if got := providerTargets(r, cleanup.KindProviderOrphan); len(got) != 1 || got[stray.ID] != cleanup.ActionReported {
		t.Fatalf("within the grace, delete mode: %v, want %s reported", got, stray.ID)
	}
	e.clock.Advance(cleanup.DefaultBlobGrace + day)
	r = mustRun(t, s, cleanup.RunOptions{Only: only})
	if got := providerTargets(r, cleanup.KindProviderOrphan); got[stray.ID] != cleanup.ActionReported {
		t.Fatalf("report mode: %v, want %s reported", got, stray.ID)
	}
	if len(e.atProvider()) != 2 {
		t.Fatalf("report mode deleted something: %v", e.atProvider())
	}
	mustRun(t, s, cleanup.RunOptions{Only: only, ProviderOrphans: cleanup.ProviderOrphansDelete, DryRun: true})
	if len(e.atProvider()) != 2 {
		t.Fatalf("dry run deleted something: %v", e.atProvider())
	}
	r = mustRun(t, s, cleanup.RunOptions{Only: only, ProviderOrphans: cleanup.ProviderOrphansDelete})
	if got := providerTargets(r, cleanup.KindProviderOrphan); got[stray.ID] != cleanup.ActionDeleted {
		t.Fatalf("delete mode: %v, want %s deleted", got, stray.ID)
	}
	if got := e.atProvider(); !slices.Equal(got, []string{liveID}) {
		t.Errorf("at the provider: %v, want only the mapped %s", got, liveID)
	}
	found, err := e.meta.ListAudit(context.Background(), filehub.AuditFilter{Action: filehub.AuditProviderOrphanFound})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 { // the two real report runs; the dry run audits nothing
		t.Errorf("provider.orphan_found entries = %d, want 2", len(found))
	}
	if _, err := s.Run(context.Background(), cleanup.RunOptions{ProviderOrphans: "purge"}); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("ProviderOrphans purge: %v, want EINVALID", err)
	}
}

func TestProviderQuotaLeastRecentlyUsedFirst(t *testing.T) {
	e := newProvEnv(t)
	var ids []string
	var fs []*filehub.File
	for _, c := range []string{"a", "b", "c", "d", "e"} {
		f, id := e.pushed("content " + c)
		fs = append(fs, f)
		ids = append(ids, id)
		e.clock.Advance(1) // distinct last uses
	}
	// Use b again: it becomes the most recently used.
	e.clock.Advance(2 * 3600e9)
	if _, err := e.push.Push(context.Background(), fs[1].ID, "kimi"); err != nil {
		t.Fatal(err)
	}
	for _, f := range fs[:3] { // a, b, c become unused; d and e stay live
		e.trashAndPurge(f)
	}
	e.clock.Advance(cleanup.DefaultBlobGrace + day)
	s := e.cleaner(5) // 5 of 5 files: at the quota
	r := mustRun(t, s, cleanup.RunOptions{Only: []cleanup.Kind{cleanup.KindProviderCopy}})
	var order []string
	for _, tg := range r.Kinds[cleanup.KindProviderCopy].Targets {
		order = append(order, tg.ProviderFileID)
	}
	if want := []string{ids[0], ids[2], ids[1]}; !slices.Equal(order, want) {
		t.Errorf("deletion order %v, want least recently used first %v", order, want)
	}
	if len(r.ProviderQuotas) != 1 {
		t.Fatalf("quotas = %+v, want one", r.ProviderQuotas)
	}
	// 5 files, 3 deleted: 2 of 5 is below 90%.
	if q := r.ProviderQuotas[0]; !q.Near || q.StillNear || q.Files != 5 || q.Planned != 3 {
		t.Errorf("quota = %+v, want near, not still near, 5 files, 3 planned", q)
	}
	// With the live ones alone the account stays near a quota of 2.
	r = mustRun(t, e.cleaner(2), cleanup.RunOptions{Only: []cleanup.Kind{cleanup.KindProviderCopy}})
	if q := r.ProviderQuotas[0]; !q.StillNear || q.Files != 2 {
		t.Errorf("quota after = %+v, want still near with 2 files", q)
	}
}

// TestProviderFilesCounted: a run that lists an account reports how many
// files it holds, for the provider file-count gauge.
func TestProviderFilesCounted(t *testing.T) {
	e := newProvEnv(t)
	e.pushed("one")
	e.pushed("two")
	e.fake.Add("uploaded elsewhere.pdf", "file-extract", 10)
	counts := map[string]int64{}
	s := e.service(func(c *cleanup.Config) {
		c.Providers = func() []cleanup.Provider { return []cleanup.Provider{{Provider: e.prov}} }
		c.ProviderFiles = func(name string, n int64) { counts[name] = n }
	})
	mustRun(t, s, cleanup.RunOptions{Only: []cleanup.Kind{cleanup.KindProviderOrphan}, DryRun: true})
	if counts["kimi"] != 3 {
		t.Fatalf("counts %v, want kimi: 3", counts)
	}
}

// TestProviderSafetyCap: provider deletions have their own safety cap; a
// run that would delete more provider files than it allows deletes nothing
// at the provider and answers ECONFLICT, and with Force it deletes.
func TestProviderSafetyCap(t *testing.T) {
	e := newProvEnv(t)
	gone1, gone1ID := e.pushed("first content to forget")
	gone2, gone2ID := e.pushed("second content to forget")
	_, liveID := e.pushed("live content")
	stray := e.fake.Add("uploaded elsewhere.pdf", "file-extract", 10)
	e.trashAndPurge(gone1)
	e.trashAndPurge(gone2)
	e.clock.Advance(cleanup.DefaultBlobGrace + day)
	s := e.service(func(c *cleanup.Config) {
		c.Providers = func() []cleanup.Provider { return []cleanup.Provider{{Provider: e.prov}} }
		c.MinDeleteAllowance = -1 // no allowance: the fraction alone decides
		c.MaxDeleteFraction = 0.5 // 3 planned of 4 provider files is over it
	})
	opts := cleanup.RunOptions{
		Only:            []cleanup.Kind{cleanup.KindProviderCopy, cleanup.KindProviderOrphan},
		ProviderOrphans: cleanup.ProviderOrphansDelete,
	}
	all := []string{gone1ID, gone2ID, liveID, stray.ID}

	r, err := s.Run(context.Background(), opts)
	if filehub.ErrorCode(err) != filehub.ECONFLICT {
		t.Fatalf("over the cap: Run = %v, want ECONFLICT", err)
	}
	if r != nil && r.PlannedProviderDeletions != 3 {
		t.Errorf("refused report: %d planned provider deletions, want 3", r.PlannedProviderDeletions)
	}
	if n := e.fake.Calls("DELETE /files/{id}"); n != 0 {
		t.Errorf("refused run made %d provider deletes, want 0", n)
	}
	if got := e.atProvider(); !slices.Equal(got, all) {
		t.Fatalf("after the refused run the provider holds %v, want %v", got, all)
	}
	audit, err := e.meta.ListAudit(context.Background(), filehub.AuditFilter{Action: filehub.AuditProviderDeleted})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 0 {
		t.Errorf("refused run audited provider deletions: %+v", audit)
	}

	opts.Force = true
	r = mustRun(t, s, opts)
	if got := providerTargets(r, cleanup.KindProviderCopy); got[gone1ID] != cleanup.ActionDeleted || got[gone2ID] != cleanup.ActionDeleted {
		t.Errorf("forced run copy targets = %v, want %s and %s deleted", got, gone1ID, gone2ID)
	}
	if got := providerTargets(r, cleanup.KindProviderOrphan); got[stray.ID] != cleanup.ActionDeleted {
		t.Errorf("forced run orphan targets = %v, want %s deleted", got, stray.ID)
	}
	if got := e.atProvider(); !slices.Equal(got, []string{liveID}) {
		t.Errorf("after the forced run the provider holds %v, want only the live %s", got, liveID)
	}
}
