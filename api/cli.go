package api

import "time"

// The CLI's --json output is made of the types above (Upload, FilePage's
// files, CleanupReport, CleanupSettings), the root's domain records
// (filehub.File, Event, AuditEntry, APIKey, which carry their JSON names),
// and these.

// MigrationStatus is what `filehub migrate status --json` prints.
type MigrationStatus struct {
	// Version is the schema version the database is at.
	Version int64 `json:"version"`
	// NewestKnown is the newest version this binary knows.
	NewestKnown int64            `json:"newest_known"`
	Migrations  []MigrationState `json:"migrations"`
}

// MigrationState is one schema migration and whether it was applied.
type MigrationState struct {
	Version   int64      `json:"version"`
	Name      string     `json:"name"`
	AppliedAt *time.Time `json:"applied_at"` // nil: pending
}
