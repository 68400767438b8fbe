package filehub

import "context"

// StorageStats is the size of what a MetaStore records, read in one
// snapshot so that its figures agree with each other.
type StorageStats struct {
	// Files and LogicalBytes count live (not soft-deleted) files and the
	// sum of their sizes.
	Files        int64 `json:"files"`
	LogicalBytes int64 `json:"logical_bytes"`
	// StoredBytes is the size of the distinct contents live files point
	// at, each counted once: LogicalBytes - StoredBytes is what
	// deduplication saves.
	StoredBytes int64 `json:"stored_bytes"`
	// TrashFiles and TrashBytes count soft-deleted files that are not
	// purged yet, and the sum of their sizes.
	TrashFiles int64 `json:"trash_files"`
	TrashBytes int64 `json:"trash_bytes"`
	// Blobs and BlobBytes count every blob record: the contents of live
	// files, of files only the trash still points at, and unreferenced
	// contents the cleanup service has not removed yet. It is what the
	// blob store holds, missing and orphan objects aside.
	Blobs     int64 `json:"blobs"`
	BlobBytes int64 `json:"blob_bytes"`
	// UnreferencedBlobs and UnreferencedBytes count the blob records no
	// file (live or soft-deleted) points at: what the cleanup service's
	// sweep will remove after its grace period.
	UnreferencedBlobs int64 `json:"unreferenced_blobs"`
	UnreferencedBytes int64 `json:"unreferenced_bytes"`
}

// StatsReader is an optional capability of a MetaStore: counting files,
// bytes, trash and blobs in the store itself, so that a dashboard or a
// tool does not page through every file record to learn the totals.
type StatsReader interface {
	// StorageStats returns the store's totals, read in one snapshot (one
	// query): a file that moves to the trash meanwhile is counted once,
	// either live or in the trash. Its cost grows with the number of
	// records (a scan), so callers should not ask more than every few
	// seconds.
	StorageStats(ctx context.Context) (*StorageStats, error)
}
