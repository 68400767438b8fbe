package api

import "time"

// CheckRequest asks for one consistency check: the body of POST /v1/check
// (admin scope). Every field is optional: an empty request checks the
// metadata and that every object exists with the right size, without
// reading content or changing anything. Servers refuse unknown fields.
type CheckRequest struct {
	// ReadData re-hashes every blob's content.
	ReadData bool `json:"read_data,omitempty"`
	// ReadDataSubset re-hashes a random part of the blobs instead, as a
	// percentage ("10%"). It implies ReadData for that part.
	ReadDataSubset string `json:"read_data_subset,omitempty"`
	// Repair fixes what is safe to fix (see CheckProblem.Repaired) and
	// audits each fix.
	Repair bool `json:"repair,omitempty"`
}

// Kinds of CheckProblem. A problem is an inconsistency that can lose or
// corrupt data; a notice (CheckReport.Notices) is a state the cleanup
// service resolves by itself.
const (
	CheckMissingObject    = "missing_object"     // a referenced blob's object is gone
	CheckSizeMismatch     = "size_mismatch"      // an object's size differs from its record's
	CheckFileSizeMismatch = "file_size_mismatch" // a file's size differs from its blob's
	CheckCorruptObject    = "corrupt_object"     // an object's content does not hash to its sum
	CheckRefCount         = "ref_count"          // a blob's count differs from its files
	CheckEventGap         = "event_gap"          // event IDs missing inside the retained range
	CheckAuditGap         = "audit_gap"          // audit IDs missing
	CheckStaleMissingFlag = "stale_missing_flag" // a blob flagged missing whose object is present

	// Notices.
	CheckOrphanObject       = "orphan_object"        // an object without a blob record
	CheckUnreferencedNoData = "unreferenced_no_data" // an unreferenced blob record without its object
)

// CheckProblem is one finding of a check.
type CheckProblem struct {
	// Kind is one of the Check* constants.
	Kind string `json:"kind"`
	// SHA256 is the blob's full sum, for the blob kinds.
	SHA256 string `json:"sha256,omitempty"`
	// FileIDs are the files (live or soft-deleted) of the blob.
	FileIDs []string `json:"file_ids,omitempty"`
	// FirstID and LastID bound a run of missing IDs (event_gap,
	// audit_gap), both included.
	FirstID int64 `json:"first_id,omitempty"`
	LastID  int64 `json:"last_id,omitempty"`
	// Detail says what was found, in words.
	Detail string `json:"detail"`
	// Repaired is set when --repair fixed the problem (Detail then says
	// how); a problem that stays unrepaired still fails the check.
	Repaired bool `json:"repaired,omitempty"`
}

// CheckReport is the result of a check: the answer of POST /v1/check and
// what `filehub check --json` prints.
type CheckReport struct {
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	ReadData   bool      `json:"read_data,omitempty"`
	Repair     bool      `json:"repair,omitempty"`
	// Blobs, Files and Objects are how many blob records, file records
	// and stored objects the check looked at.
	Blobs   int64 `json:"blobs"`
	Files   int64 `json:"files"`
	Objects int64 `json:"objects"`
	// BlobsRead and BytesRead count the content re-hashed.
	BlobsRead int64 `json:"blobs_read"`
	BytesRead int64 `json:"bytes_read"`
	// Events and AuditEntries are how many IDs of each log were checked.
	Events       int64 `json:"events"`
	AuditEntries int64 `json:"audit_entries"`
	// Problems fail the check unless every one is Repaired.
	Problems []CheckProblem `json:"problems"`
	// Notices are left to the cleanup service; they never fail a check.
	Notices []CheckProblem `json:"notices,omitempty"`
}

// OK reports whether the check found no problem that is still there.
func (r *CheckReport) OK() bool {
	for _, p := range r.Problems {
		if !p.Repaired {
			return false
		}
	}
	return true
}
