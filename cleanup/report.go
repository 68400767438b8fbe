package cleanup

import (
	"strings"
	"time"

	"github.com/filehub/filehub"
)

// Kind is what a cleanup run looks for; each kind is counted and reported
// separately.
type Kind string

// The kinds, as typed constants of filehub's (see filehub.CleanupKinds).
const (
	KindTrash            Kind = filehub.KindTrash            // soft-deleted files past purge_after
	KindOrphanObject     Kind = filehub.KindOrphanObject     // objects with no blob record, older than BlobGrace
	KindUnreferencedBlob Kind = filehub.KindUnreferencedBlob // blob records unreferenced for longer than BlobGrace
	KindMissingObject    Kind = filehub.KindMissingObject    // blob records whose object is gone (never deleted)
	KindStaleTemp        Kind = filehub.KindStaleTemp        // staged uploads inactive for longer than UploadExpiry
	KindExpiredUpload    Kind = filehub.KindExpiredUpload    // resumable uploads that expired unfinished, with their bytes
	KindWSSession        Kind = filehub.KindWSSession        // WebSocket sessions detached for longer than WSSessionTTL
	KindProviderCopy     Kind = filehub.KindProviderCopy     // provider copies of content no file has, unused for longer than BlobGrace
	KindProviderOrphan   Kind = filehub.KindProviderOrphan   // provider files no mapping names (reported; deleted on request)
)

// Kinds lists every kind in run order: filehub.CleanupKinds, typed. It is
// not a list of its own.
var Kinds = func() []Kind {
	kinds := make([]Kind, len(filehub.CleanupKinds))
	for i, k := range filehub.CleanupKinds {
		kinds[i] = Kind(k)
	}
	return kinds
}()

// ParseKind returns the kind named s, or EINVALID.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", filehub.Errorf(filehub.EINVALID, "unknown cleanup kind %q (want %s)", s, kindNames())
}

// Target actions in a report.
const (
	ActionDeleted     = "deleted"      // done (purged, deleted, removed)
	ActionWouldDelete = "would_delete" // a dry run's plan, or a refused run's
	ActionSkipped     = "skipped"      // planned but not done; Reason says why
	ActionFlagged     = "flagged"      // a missing object: files flagged, nothing deleted
	ActionWouldFlag   = "would_flag"   // a dry run's missing object
	ActionUnflagged   = "unflagged"    // a missing object is back
	ActionFailed      = "failed"       // the action failed; Reason holds the error
	ActionReported    = "reported"     // a provider orphan reported, not deleted
)

// Report describes one cleanup run. It marshals to JSON for the API, the
// CLI and the cleanup_runs table.
type Report struct {
	RunID      int64     `json:"run_id"`
	Trigger    string    `json:"trigger"`
	Actor      string    `json:"actor"`
	DryRun     bool      `json:"dry_run"`
	Force      bool      `json:"force,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Status is one of filehub.RunOK, RunFailed, RunRefused, RunRunning,
	// RunInterrupted.
	Status string `json:"status"`
	// Error says why the run failed or was refused.
	Error string `json:"error,omitempty"`
	// Settings are those the run used.
	Settings Settings `json:"settings"`
	// TotalBlobs is the larger of the blob record count and the object
	// count, the base of the safety cap; PlannedBlobDeletions is what the
	// cap was checked against.
	TotalBlobs           int64 `json:"total_blobs"`
	PlannedBlobDeletions int64 `json:"planned_blob_deletions"`
	// TotalProviderFiles is the number of files at the configured
	// providers (listed, or mapped if larger), the base of the provider
	// safety cap; PlannedProviderDeletions is what that cap was checked
	// against. Provider deletions are capped apart from blob deletions.
	TotalProviderFiles       int64 `json:"total_provider_files,omitempty"`
	PlannedProviderDeletions int64 `json:"planned_provider_deletions,omitempty"`
	// ProviderQuotas has an entry per provider with a known file quota.
	ProviderQuotas []ProviderQuota `json:"provider_quotas,omitempty"`
	// Kinds has one entry per kind the run looked at.
	Kinds      map[Kind]*KindReport `json:"kinds"`
	BytesFreed int64                `json:"bytes_freed"`
	Errors     int64                `json:"errors"`
}

// KindReport is one kind's part of a Report.
type KindReport struct {
	Scanned int64 `json:"scanned"`
	Found   int64 `json:"found"`
	// Deleted and BytesFreed are what was deleted, or in a dry run what
	// a real run would delete. For trash, BytesFreed counts the files'
	// sizes; their blobs are freed later, as unreferenced blobs.
	Deleted    int64 `json:"deleted"`
	BytesFreed int64 `json:"bytes_freed"`
	Skipped    int64 `json:"skipped"`
	// Unsupported is set when the blob store cannot list what this kind
	// needs, so it was not looked at.
	Unsupported bool     `json:"unsupported,omitempty"`
	Targets     []Target `json:"targets"`
}

// Target is one item a run found, and what it did with it.
type Target struct {
	FileID string `json:"file_id,omitempty"` // trash
	SHA256 string `json:"sha256,omitempty"`  // blobs and objects (and trash: the file's content)
	Name   string `json:"name,omitempty"`    // temp files (and provider orphans: the provider's file name)
	// Provider and ProviderFileID name a provider file (provider kinds).
	Provider       string `json:"provider,omitempty"`
	ProviderFileID string `json:"provider_file_id,omitempty"`
	Bytes          int64  `json:"bytes"`
	Action         string `json:"action"`
	Reason         string `json:"reason,omitempty"`
}

func (r *Report) kind(k Kind) *KindReport {
	kr := r.Kinds[k]
	if kr == nil {
		kr = &KindReport{Targets: []Target{}}
		r.Kinds[k] = kr
	}
	return kr
}

// run converts r to the stored form.
func (r *Report) run() *filehub.CleanupRun {
	run := &filehub.CleanupRun{
		ID:         r.RunID,
		Trigger:    r.Trigger,
		Actor:      r.Actor,
		DryRun:     r.DryRun,
		StartedAt:  r.StartedAt,
		Status:     r.Status,
		Counts:     make(map[string]filehub.CleanupCounts),
		BytesFreed: r.BytesFreed,
		Errors:     r.Errors,
	}
	if !r.FinishedAt.IsZero() {
		t := r.FinishedAt
		run.FinishedAt = &t
	}
	for k, kr := range r.Kinds {
		// The stored run keeps some kinds' counters only (the blob
		// kinds'); the others' are in the stored report.
		if !filehub.CleanupRunCounts(string(k)) {
			continue
		}
		run.Counts[string(k)] = filehub.CleanupCounts{Scanned: kr.Scanned, Found: kr.Found, Deleted: kr.Deleted, Bytes: kr.BytesFreed}
	}
	return run
}

// reportFromRun rebuilds a report from a stored run that has none (its
// process died before it finished).
func reportFromRun(run *filehub.CleanupRun) *Report {
	r := &Report{
		RunID: run.ID, Trigger: run.Trigger, Actor: run.Actor, DryRun: run.DryRun,
		StartedAt: run.StartedAt, Status: run.Status, Kinds: make(map[Kind]*KindReport),
		BytesFreed: run.BytesFreed, Errors: run.Errors,
	}
	if run.FinishedAt != nil {
		r.FinishedAt = *run.FinishedAt
	}
	for k, c := range run.Counts {
		r.Kinds[Kind(k)] = &KindReport{Scanned: c.Scanned, Found: c.Found, Deleted: c.Deleted, BytesFreed: c.Bytes, Targets: []Target{}}
	}
	return r
}

// kindNames lists the kinds for an error message: "a, b or c".
func kindNames() string {
	names := filehub.CleanupKinds
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
