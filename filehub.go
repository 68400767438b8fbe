// Package filehub is the domain of filehub, a self-hosted file store for AI
// tool servers: it stores users' files deduplicated by content, serves them
// back, and (in later packages) keeps a reliable WebSocket channel to clients
// and pushes content to model providers.
//
// This package holds only the nouns (File, Blob, APIKey, Event), the
// interfaces the rest of the program plugs into (MetaStore, BlobStore) and the
// error type. It imports nothing but the standard library. Implementations
// live in one package per dependency (sqlite, localfs, httpapi, ...) and are
// wired together only in cmd/filehub.
package filehub

import (
	"context"
	"io"
	"regexp"
	"strings"
	"time"
)

// File is one uploaded file: a name and an owner pointing at content (a Blob)
// by its SHA-256. Many files may share one blob.
type File struct {
	// ID is opaque and URL-safe; see NewID.
	ID string `json:"id"`
	// Name is the sanitized client-supplied name. It is never used to build a
	// storage path.
	Name        string    `json:"name"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"` // lowercase hex
	ContentType string    `json:"content_type"`
	CreatedAt   time.Time `json:"created_at"`
	// DeletedAt is set by a soft delete; PurgeAfter is when the file may be
	// purged for good. Both are nil for a live file.
	DeletedAt  *time.Time `json:"deleted_at,omitempty"`
	PurgeAfter *time.Time `json:"purge_after,omitempty"`
	// OwnerKeyID is the ID of the API key that uploaded the file.
	OwnerKeyID string `json:"owner_key_id"`
}

// Deleted reports whether the file is soft-deleted.
func (f *File) Deleted() bool { return f.DeletedAt != nil }

// Blob is one stored content, addressed by its SHA-256.
type Blob struct {
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"`
	RefCount  int64     `json:"ref_count"` // files (live or soft-deleted) that point at it
	CreatedAt time.Time `json:"created_at"`
}

// Scope is a permission granted to an API key.
type Scope string

// The scopes. Admin implies every other scope.
const (
	ScopeRead    Scope = "read"    // list, stat and download files
	ScopeWrite   Scope = "write"   // upload, delete and restore files
	ScopeAdmin   Scope = "admin"   // everything, including key management
	ScopeMetrics Scope = "metrics" // read /metrics only
)

// ParseScope returns the Scope named s, or an EINVALID error.
func ParseScope(s string) (Scope, error) {
	switch sc := Scope(strings.TrimSpace(strings.ToLower(s))); sc {
	case ScopeRead, ScopeWrite, ScopeAdmin, ScopeMetrics:
		return sc, nil
	}
	return "", Errorf(EINVALID, "unknown scope %q (want read, write, admin or metrics)", s)
}

// APIKey is a named, scoped, revocable credential. The secret itself is shown
// once at creation and only its hash is stored.
type APIKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []Scope    `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// Hash is the SHA-256 of the secret (see HashAPIKey). Never serialized.
	Hash []byte `json:"-"`
}

// Has reports whether the key grants scope s. Admin grants every scope.
func (k *APIKey) Has(s Scope) bool {
	for _, have := range k.Scopes {
		if have == s || have == ScopeAdmin {
			return true
		}
	}
	return false
}

// Event types of the file event log.
const (
	EventFileCreated  = "file.created"
	EventFileDeleted  = "file.deleted"
	EventFileRestored = "file.restored"
	EventFilePurged   = "file.purged"
)

// Event is one entry of the durable, append-only event log. IDs increase
// monotonically; the log is written in the same transaction as the change it
// records, so it is a reliable replay source.
type Event struct {
	ID   int64     `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	File *File     `json:"file,omitempty"`
}

// FileFilter selects files for MetaStore.ListFiles.
type FileFilter struct {
	// Limit is the page size; 0 means 100. Implementations cap it at 1000.
	Limit int
	// Cursor is the opaque next_cursor of a previous page; "" starts at the
	// beginning.
	Cursor string
	// IncludeDeleted also lists soft-deleted files.
	IncludeDeleted bool
}

// PlaceFunc makes sure a blob's object exists in the BlobStore. MetaStore
// calls it inside the transaction that records a blob whose record did not
// exist before; if it fails, the transaction is rolled back.
type PlaceFunc func(ctx context.Context) error

// MetaStore keeps the metadata: files, blobs, API keys and the event log.
// Implementations must be safe for concurrent use. Methods return an *Error
// with EUNAVAILABLE when the store cannot be reached, so callers can answer
// 503 rather than 500.
type MetaStore interface {
	// CreateFile records f (ID, Name, Size, SHA256, ContentType, CreatedAt,
	// OwnerKeyID must be set) and a file.created event in one transaction,
	// incrementing the reference count of the blob f.SHA256. If no blob record
	// exists, one is inserted and place is called inside the transaction to
	// make sure the object is stored; deduplicated reports whether the blob
	// record already existed. Concurrent calls for the same content must end
	// with one blob and the right count (no check-then-act race). Returns
	// EINVALID if f is incomplete.
	CreateFile(ctx context.Context, f *File, place PlaceFunc) (deduplicated bool, err error)

	// FindFile returns the file with the given ID, soft-deleted or not.
	// Returns ENOTFOUND if there is none.
	FindFile(ctx context.Context, id string) (*File, error)

	// ListFiles returns files in a stable order (creation order, oldest
	// first) and a cursor for the next page, "" on the last page. Returns
	// EINVALID for a malformed cursor.
	ListFiles(ctx context.Context, filter FileFilter) (files []*File, nextCursor string, err error)

	// SoftDeleteFile marks a live file deleted at `at` with the given
	// purge_after and records a file.deleted event. Returns ENOTFOUND if no
	// live file has that ID.
	SoftDeleteFile(ctx context.Context, id string, at, purgeAfter time.Time) (*File, error)

	// RestoreFile undoes a soft delete and records a file.restored event.
	// Returns ENOTFOUND if no soft-deleted file has that ID.
	RestoreFile(ctx context.Context, id string) (*File, error)

	// PurgeFile removes the file record for good, decrements its blob's
	// reference count (setting the blob's unreferenced-since time when it
	// reaches zero) and records a file.purged event, in one transaction. It
	// never deletes the blob itself: that is the cleanup service's job, after
	// a grace period. Returns ENOTFOUND if there is no such file.
	PurgeFile(ctx context.Context, id string) (*File, error)

	// FindBlob returns the blob record for sum. Returns ENOTFOUND if none.
	FindBlob(ctx context.Context, sum string) (*Blob, error)

	// ListEvents returns up to limit events with ID > afterID, in ID order.
	ListEvents(ctx context.Context, afterID int64, limit int) ([]*Event, error)

	// EventBounds describes the retained event log: latest is the highest
	// event ID ever assigned, even if that event has been trimmed since (0
	// if no event was ever recorded); oldest is the lowest retained ID, or
	// latest+1 when no event is retained. Retained IDs form a contiguous
	// range of assigned IDs, so a reader that has seen every event up to N
	// has missed trimmed events if and only if N+1 < oldest.
	EventBounds(ctx context.Context) (oldest, latest int64, err error)

	// TrimEvents deletes the events older than before and all but the
	// newest keep events, and returns how many it deleted. It always
	// deletes a prefix of the log (the lowest IDs), so the retained IDs
	// stay contiguous. A zero before sets no age bound; a negative keep
	// sets no count bound (keep 0 deletes every event). Trimming never
	// lowers the latest ID EventBounds reports.
	TrimEvents(ctx context.Context, before time.Time, keep int) (deleted int64, err error)

	// CreateAPIKey stores k (ID, Name, Scopes, CreatedAt and Hash must be
	// set). Returns ECONFLICT if the ID or hash exists.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// FindAPIKeyByHash returns the key with the given hash, revoked or not.
	// Returns ENOTFOUND if there is none.
	FindAPIKeyByHash(ctx context.Context, hash []byte) (*APIKey, error)
	// ListAPIKeys returns every key, oldest first.
	ListAPIKeys(ctx context.Context) ([]*APIKey, error)
	// RevokeAPIKey marks the key with the given ID or name revoked. Returns
	// ENOTFOUND if there is no such key, ECONFLICT if it is already revoked.
	RevokeAPIKey(ctx context.Context, idOrName string, at time.Time) (*APIKey, error)

	// Ping checks that the store is reachable and writable enough to serve.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// BlobStore keeps content, addressed by SHA-256 (lowercase hex). Object keys
// are derived only from the hash, never from user input.
// Implementations must be safe for concurrent use.
type BlobStore interface {
	// Stage starts writing new content to a temporary place. Nothing is
	// visible under any sum until StagedBlob.Commit. Returns ESTORAGE when
	// the store is (nearly) full.
	Stage(ctx context.Context) (StagedBlob, error)

	// Open returns the content of sum for reading with seeking (for Range
	// requests). Returns ENOTFOUND if there is no such object.
	Open(ctx context.Context, sum string) (io.ReadSeekCloser, error)

	// Stat returns the object's size and modification time. Returns
	// ENOTFOUND if there is no such object.
	Stat(ctx context.Context, sum string) (BlobInfo, error)

	// Delete removes the object. Deleting a missing object is not an error.
	Delete(ctx context.Context, sum string) error

	// Ping checks that the store is usable.
	Ping(ctx context.Context) error
}

// BlobInfo describes a stored object.
type BlobInfo struct {
	SHA256  string
	Size    int64
	ModTime time.Time
}

// StagedBlob is content being written. The writer must call Close in every
// case; Close after Commit keeps the committed object and only releases the
// staged copy.
type StagedBlob interface {
	// Write appends to the staged content. Returns ESTORAGE on a full disk.
	io.Writer
	// Sync makes the staged content durable.
	Sync() error
	// Commit makes the staged content durable and visible under sum. If an
	// object already exists under sum it is kept and the staged copy is not
	// used. Commit may be called again (for example from a PlaceFunc) and
	// re-creates the object from the staged copy if it has vanished meanwhile.
	Commit(ctx context.Context, sum string) error
	// Close discards the staged copy.
	Close() error
}

// FreeSpacer is implemented by blob stores that can report free space, so the
// server can refuse uploads (507) before reading a body.
type FreeSpacer interface {
	FreeSpace(ctx context.Context) (int64, error)
}

var sumPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidSHA256 reports whether s is a lowercase hex SHA-256 digest. Stores
// check it before turning a sum into an object key.
func ValidSHA256(s string) bool { return sumPattern.MatchString(s) }
