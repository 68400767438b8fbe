package api

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/filehub/filehub"
)

// CleanupRunRequest asks for one cleanup run: the body of
// POST /v1/cleanup/runs and the params of the WebSocket method cleanup.run,
// the same fields on both. Every field is optional: an empty request asks
// for a real run of every kind. Servers refuse unknown fields, so that a
// misspelt "dry_run" cannot start a real run. cleanup.RunOptionsFrom
// converts it to the service's options.
type CleanupRunRequest struct {
	// DryRun reports what a run would do and changes nothing.
	DryRun bool `json:"dry_run"`
	// Force lets the run exceed the safety cap.
	Force bool `json:"force"`
	// Only restricts the run to these kinds (trash, orphan_object,
	// unreferenced_blob, missing_object, stale_temp, expired_upload,
	// ws_session, provider_copy, provider_orphan); empty means all.
	Only []string `json:"only,omitempty"`
	// ProviderOrphans is "report" (default) or "delete": what to do with
	// provider files no mapping names.
	ProviderOrphans string `json:"provider_orphans,omitempty"`
}

// CleanupReport is the report of one cleanup run: the answer of
// POST /v1/cleanup/runs and GET /v1/cleanup/runs/{id}, the result of
// cleanup.run and what `filehub cleanup run --json` prints. It mirrors
// cleanup.Report field for field (cleanup.ReportWire converts).
type CleanupReport struct {
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
	Settings CleanupSettings `json:"settings"`
	// TotalBlobs is the base of the blob safety cap; PlannedBlobDeletions
	// is what the cap was checked against.
	TotalBlobs           int64 `json:"total_blobs"`
	PlannedBlobDeletions int64 `json:"planned_blob_deletions"`
	// TotalProviderFiles and PlannedProviderDeletions are the same for
	// the provider safety cap.
	TotalProviderFiles       int64 `json:"total_provider_files,omitempty"`
	PlannedProviderDeletions int64 `json:"planned_provider_deletions,omitempty"`
	// ProviderQuotas has an entry per provider with a known file quota.
	ProviderQuotas []ProviderQuota `json:"provider_quotas,omitempty"`
	// Kinds has one entry per kind the run looked at, by kind name.
	Kinds      map[string]*CleanupKindReport `json:"kinds"`
	BytesFreed int64                         `json:"bytes_freed"`
	Errors     int64                         `json:"errors"`
}

// CleanupKindReport is one kind's part of a CleanupReport.
type CleanupKindReport struct {
	Scanned int64 `json:"scanned"`
	Found   int64 `json:"found"`
	// Deleted and BytesFreed are what was deleted, or in a dry run what
	// a real run would delete.
	Deleted    int64 `json:"deleted"`
	BytesFreed int64 `json:"bytes_freed"`
	Skipped    int64 `json:"skipped"`
	// Unsupported is set when the blob store cannot list what this kind
	// needs, so it was not looked at.
	Unsupported bool            `json:"unsupported,omitempty"`
	Targets     []CleanupTarget `json:"targets"`
}

// CleanupTarget is one item a run found, and what it did with it.
type CleanupTarget struct {
	FileID         string `json:"file_id,omitempty"`
	SHA256         string `json:"sha256,omitempty"`
	Name           string `json:"name,omitempty"`
	Provider       string `json:"provider,omitempty"`
	ProviderFileID string `json:"provider_file_id,omitempty"`
	Bytes          int64  `json:"bytes"`
	Action         string `json:"action"`
	Reason         string `json:"reason,omitempty"`
}

// ProviderQuota is a provider's file count against its quota in a report.
type ProviderQuota struct {
	Provider string `json:"provider"`
	Quota    int    `json:"quota"`
	Files    int64  `json:"files"`
	Planned  int64  `json:"planned"`
	// Near is set when Files is at least 90% of Quota; StillNear when
	// Files-Planned still is.
	Near      bool `json:"near"`
	StillNear bool `json:"still_near"`
}

// CleanupRuns is the body of GET /v1/cleanup/runs, newest first.
type CleanupRuns struct {
	Runs []*CleanupReport `json:"runs"`
}

// CleanupSettings are the cleanup settings in effect: the body of
// GET and PATCH /v1/cleanup/config and `filehub cleanup config --json`.
// A PATCH body is a JSON object of some of these keys, durations as
// strings ("24h") and the fraction as a number or a string.
type CleanupSettings struct {
	TrashGrace        Duration `json:"trash_grace"`
	BlobGrace         Duration `json:"blob_grace"`
	UploadExpiry      Duration `json:"upload_expiry"`
	Interval          Duration `json:"interval"`
	MaxDeleteFraction float64  `json:"max_delete_fraction"`
}

// Duration is a time.Duration that travels as a duration string ("24h0m0s").
type Duration time.Duration

// MarshalJSON encodes d like time.Duration.String.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts a duration string ("24h") or integer nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration must be a string like \"24h\"")
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// AuditPage is the body of GET /v1/audit.
type AuditPage struct {
	Entries []*filehub.AuditEntry `json:"entries"`
	// NextAfter, when not 0, is the "after" of the next page: the page was
	// full and more entries may follow.
	NextAfter int64 `json:"next_after,omitempty"`
}
