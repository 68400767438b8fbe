package mcpserver

import (
	"context"
	"io"

	"github.com/filehub/filehub"
)

// Backend is what the MCP server needs of filehub. The tools, resources and
// prompts are defined once, over this interface; Local implements it on the
// daemon's services (for Streamable HTTP at /v1/mcp) and Remote over the
// HTTP API (for `filehub mcp` on stdio).
//
// Every method returns *filehub.Error values with the usual codes; the
// server turns them into tool errors that name the code.
type Backend interface {
	// ListFiles returns a page of files, oldest first, and the cursor of
	// the next page ("" on the last). Returns EINVALID for a malformed
	// cursor; a backend that cannot list soft-deleted files returns
	// EINVALID when q.IncludeDeleted is set.
	ListFiles(ctx context.Context, q ListQuery) (files []*filehub.File, next string, err error)

	// GetFile returns a live file. Returns ENOTFOUND if there is no such
	// file or it is soft-deleted.
	GetFile(ctx context.Context, id string) (*filehub.File, error)

	// OpenContent returns a live file and its content, which the caller
	// closes. Errors as GetFile.
	OpenContent(ctx context.Context, id string) (*filehub.File, io.ReadCloser, error)

	// Upload stores size bytes read from content as a file called name
	// and reports whether the content was already stored. On any error
	// nothing is stored.
	Upload(ctx context.Context, name string, content io.Reader, size int64) (f *filehub.File, deduplicated bool, err error)

	// Delete soft-deletes a live file, audited with the actor of ctx
	// (filehub.WithActor). Returns ENOTFOUND if no live file has that ID.
	Delete(ctx context.Context, id string) (*filehub.File, error)

	// Restore undoes a soft delete, audited like Delete. Returns
	// ENOTFOUND if no soft-deleted file has that ID.
	Restore(ctx context.Context, id string) (*filehub.File, error)

	// Push makes sure the file's content is stored at the named provider.
	// Returns ENOTFOUND for an unknown file or provider.
	Push(ctx context.Context, id, provider string) (*PushResult, error)

	// CleanupPreview runs a cleanup dry run and summarises it. Returns
	// ENOTFOUND when there is no cleanup service.
	CleanupPreview(ctx context.Context) (*CleanupPreview, error)

	// StorageStats counts files, bytes and provider usage: with the
	// metadata store's one query (filehub.StatsReader, GET /v1/stats)
	// where it can, else by paging through the file records.
	StorageStats(ctx context.Context) (*StorageStats, error)

	// Watch calls fn, in ID order, with every event of the event log
	// whose ID is greater than after — or, when after is negative, every
	// event appended after Watch started — until ctx ends or the feed
	// fails (its error is returned; the server calls Watch again after
	// the last event it saw). fn must not block for long.
	Watch(ctx context.Context, after int64, fn func(*filehub.Event)) error
}

// ListQuery selects files for Backend.ListFiles.
type ListQuery struct {
	Limit          int    // 1..1000
	Cursor         string // "" starts at the oldest file
	IncludeDeleted bool
}

// PushResult is the outcome of Backend.Push.
type PushResult struct {
	Provider       string `json:"provider"`
	ProviderFileID string `json:"provider_file_id"`
	// Reused is true when the provider already had the content.
	Reused bool `json:"reused"`
}

// CleanupPreview summarises a cleanup dry run.
type CleanupPreview struct {
	RunID  int64  `json:"run_id"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Kinds has one entry per cleanup kind the run looked at.
	Kinds map[string]KindPreview `json:"kinds"`
	// BytesFreed is what a real run would free now.
	BytesFreed int64 `json:"bytes_freed"`
	TotalBlobs int64 `json:"total_blobs"`
}

// KindPreview is one cleanup kind's part of a CleanupPreview.
type KindPreview struct {
	Found       int64 `json:"found"`
	WouldDelete int64 `json:"would_delete"`
	Bytes       int64 `json:"bytes"`
	Skipped     int64 `json:"skipped"`
}

// StorageStats describes what filehub stores.
type StorageStats struct {
	// Files and LogicalBytes count live files and their sizes;
	// StoredBytes counts each distinct content once, so DedupSavingsBytes
	// (LogicalBytes - StoredBytes) is what deduplication saves.
	Files             int64 `json:"files"`
	LogicalBytes      int64 `json:"logical_bytes"`
	StoredBytes       int64 `json:"stored_bytes"`
	DedupSavingsBytes int64 `json:"dedup_savings_bytes"`
	// TrashFiles and TrashBytes count soft-deleted files; nil when the
	// backend cannot see them.
	TrashFiles *int64 `json:"trash_files,omitempty"`
	TrashBytes *int64 `json:"trash_bytes,omitempty"`
	// Providers is each provider account's file count against its quota,
	// as the last cleanup run counted them.
	Providers []ProviderUsage `json:"providers"`
	// Notes say what could not be counted, and why.
	Notes []string `json:"notes,omitempty"`
}

// ProviderUsage is one provider account's usage.
type ProviderUsage struct {
	Provider string `json:"provider"`
	Files    int64  `json:"files"`
	Quota    int    `json:"quota"`
	Near     bool   `json:"near_quota"`
}

// statsFrom converts the metadata store's totals.
func statsFrom(st *filehub.StorageStats) *StorageStats {
	tf, tb := st.TrashFiles, st.TrashBytes
	return &StorageStats{
		Files: st.Files, LogicalBytes: st.LogicalBytes, StoredBytes: st.StoredBytes,
		DedupSavingsBytes: st.LogicalBytes - st.StoredBytes,
		TrashFiles:        &tf, TrashBytes: &tb,
		Providers: []ProviderUsage{},
	}
}

// statsCounter accumulates StorageStats from file listings, for stores
// and servers that cannot count (both backends).
type statsCounter struct {
	st   StorageStats
	seen map[string]struct{}
	tf   int64
	tb   int64
}

func newStatsCounter() *statsCounter {
	return &statsCounter{seen: map[string]struct{}{}, st: StorageStats{Providers: []ProviderUsage{}}}
}

func (c *statsCounter) add(f *filehub.File) {
	if f.Deleted() {
		c.tf++
		c.tb += f.Size
		return
	}
	c.st.Files++
	c.st.LogicalBytes += f.Size
	if _, ok := c.seen[f.SHA256]; !ok {
		c.seen[f.SHA256] = struct{}{}
		c.st.StoredBytes += f.Size
	}
}

// result returns the stats; withTrash says whether soft-deleted files were
// listed.
func (c *statsCounter) result(withTrash bool) *StorageStats {
	st := c.st
	st.DedupSavingsBytes = st.LogicalBytes - st.StoredBytes
	if withTrash {
		tf, tb := c.tf, c.tb
		st.TrashFiles, st.TrashBytes = &tf, &tb
	}
	return &st
}
