// Package filehub is the domain of filehub, a self-hosted file store for AI
// tool servers: it stores users' files deduplicated by content, serves them
// back, and (in later packages) keeps a reliable WebSocket channel to clients
// and pushes content to model providers.
//
// This package holds only the nouns (File, Blob, APIKey, Event), the
// interfaces the rest of the program plugs into (MetaStore, BlobStore) and the
// error type. It imports nothing but the standard library. The types that
// travel over the wire (HTTP bodies, WebSocket params, CLI --json) live in
// package api, beside the one error-code table. Implementations
// live in one package per dependency (sqlite, localfs, httpapi, ...) and are
// wired together only in cmd/filehub.
package filehub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	// ContentMissing is set by the cleanup service when the file's blob
	// record exists but its object is gone from the blob store. Such files
	// are never deleted automatically; an operator has to restore the
	// content from a backup (or delete the file).
	ContentMissing bool `json:"content_missing,omitempty"`
}

// Deleted reports whether the file is soft-deleted.
func (f *File) Deleted() bool { return f.DeletedAt != nil }

// Blob is one stored content, addressed by its SHA-256.
type Blob struct {
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"`
	RefCount  int64     `json:"ref_count"` // files (live or soft-deleted) that point at it
	CreatedAt time.Time `json:"created_at"`
	// UnreferencedSince is when RefCount last dropped to zero; nil while
	// the blob is referenced.
	UnreferencedSince *time.Time `json:"unreferenced_since,omitempty"`
	// MarkedAt is when the cleanup service marked the unreferenced blob for
	// deletion; a new reference clears it, so a sweep never removes a blob
	// revived after its mark.
	MarkedAt *time.Time `json:"marked_at,omitempty"`
	// MissingSince is when the cleanup service found the blob's object
	// missing from the blob store; nil while the object is present.
	MissingSince *time.Time `json:"missing_since,omitempty"`
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

	// Cleanup run events carry Event.Run instead of Event.File.
	EventCleanupStarted  = "cleanup.started"
	EventCleanupFinished = "cleanup.finished"
)

// Event is one entry of the durable, append-only event log. IDs increase
// monotonically; the log is written in the same transaction as the change it
// records, so it is a reliable replay source.
type Event struct {
	ID   int64     `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	File *File     `json:"file,omitempty"`
	// Run summarises a cleanup run for cleanup.* events (without its
	// report).
	Run *CleanupRun `json:"run,omitempty"`
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
// exist before, or whose record existed unreferenced (a revival); if it
// fails, the transaction is rolled back.
type PlaceFunc func(ctx context.Context) error

// MetaStore keeps the metadata: files, blobs, API keys and the event log.
// Implementations must be safe for concurrent use. Methods return an *Error
// with EUNAVAILABLE when the store cannot be reached, so callers can answer
// 503 rather than 500.
//
// Audit: every MetaStore keeps an audit log. SoftDeleteFile
// (AuditFileDeleted), RestoreFile (AuditFileRestored) and PurgeFile
// (AuditFilePurged) each append an entry in the same transaction as the
// change, with the actor of ActorFromContext and the reason of
// ReasonFromContext; a change that fails appends nothing. A store that also
// implements AuditLog lets the entries be read back. This is a property of
// MetaStore itself: no optional capability changes how these methods
// behave.
//
// Revival: CreateFile calls place also when the blob record exists with a
// reference count of zero, and clears the record's MarkedAt. Together with
// BlobSweeper.SweepBlob and DeleteOrphanObject running in the same
// serialized writer as CreateFile, that is what makes a sweep safe against
// a concurrent dedup upload (see docs/cleanup.md).
type MetaStore interface {
	// CreateFile records f (ID, Name, Size, SHA256, ContentType, CreatedAt,
	// OwnerKeyID must be set) and a file.created event in one transaction,
	// incrementing the reference count of the blob f.SHA256. If no blob record
	// exists, one is inserted and place is called inside the transaction to
	// make sure the object is stored; place is also called when the record
	// exists with a reference count of zero (a revival: the cleanup service
	// may have removed its object). deduplicated reports whether the blob
	// record already existed. Concurrent calls for the same content must end
	// with one blob and the right count (no check-then-act race). Returns
	// EINVALID if f is incomplete (File.Validate), or if its size differs
	// from the size recorded for its blob; ECONFLICT if a file with f.ID
	// exists.
	CreateFile(ctx context.Context, f *File, place PlaceFunc) (deduplicated bool, err error)

	// FindFile returns the file with the given ID, soft-deleted or not.
	// Returns ENOTFOUND if there is none.
	FindFile(ctx context.Context, id string) (*File, error)

	// ListFiles returns files in a stable order (creation order, oldest
	// first) and a cursor for the next page, "" on the last page. Returns
	// EINVALID for a malformed cursor.
	ListFiles(ctx context.Context, filter FileFilter) (files []*File, nextCursor string, err error)

	// SoftDeleteFile marks a live file deleted at `at` with the given
	// purge_after and records a file.deleted event (and an audit entry, see
	// above). Returns ENOTFOUND if no live file has that ID, EINVALID if at
	// or purgeAfter is zero.
	SoftDeleteFile(ctx context.Context, id string, at, purgeAfter time.Time) (*File, error)

	// RestoreFile undoes a soft delete and records a file.restored event
	// (and an audit entry). Returns ENOTFOUND if no soft-deleted file has
	// that ID.
	RestoreFile(ctx context.Context, id string) (*File, error)

	// PurgeFile removes the file record for good, decrements its blob's
	// reference count (setting the blob's unreferenced-since time when it
	// reaches zero) and records a file.purged event and an audit entry, in
	// one transaction. It
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
	// set). Returns EINVALID if k is incomplete (APIKey.Validate),
	// ECONFLICT if the ID, name or hash exists (names identify keys for
	// RevokeAPIKey, so the store enforces their uniqueness, not callers).
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
	// Close discards the staged copy. For a blob store on a network it
	// can block (an abort of an unfinished upload), so it takes ctx.
	Close(ctx context.Context) error
}

// FreeSpacer is implemented by blob stores that can report free space, so the
// server can refuse uploads (507) before reading a body.
type FreeSpacer interface {
	FreeSpace(ctx context.Context) (int64, error)
}

// ValidSHA256 reports whether s is a lowercase hex SHA-256 digest. Stores
// check it before turning a sum into an object key.
//
// It is a byte loop rather than the regular expression ^[0-9a-f]{64}$
// because it runs on every object of a cleanup scan and on every request
// naming a blob, and the loop is several times faster.
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// actorKey is the context key of WithActor.
type actorKey struct{}

// reasonKey is the context key of WithReason.
type reasonKey struct{}

// ActorSystem is the actor of changes no API key asked for: the cleanup
// scheduler, start-up housekeeping, the CLI on a stopped server's data dir.
const ActorSystem = "system"

// WithActor returns a copy of ctx that names actor (an API key ID, or
// ActorSystem) as the one on whose behalf changes are made, for the audit
// log. The HTTP API and the WebSocket layer set it after authentication.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFromContext returns the actor set by WithActor, or ActorSystem when
// there is none (or it is empty).
func ActorFromContext(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return ActorSystem
}

// WithReason returns a copy of ctx carrying why the changes made with it are
// made ("api", "multipart rollback", "trash grace expired"), for the audit
// log.
func WithReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, reasonKey{}, reason)
}

// ReasonFromContext returns the reason set by WithReason, or "" if none.
func ReasonFromContext(ctx context.Context) string {
	r, _ := ctx.Value(reasonKey{}).(string)
	return r
}

// Audit actions. Each AuditEntry.Action is one of these.
const (
	AuditFileDeleted    = "file.deleted"    // soft delete
	AuditFileRestored   = "file.restored"   // restore from the trash
	AuditFilePurged     = "file.purged"     // file record removed for good
	AuditBlobSwept      = "blob.swept"      // unreferenced blob record and object deleted
	AuditObjectDeleted  = "object.deleted"  // orphan object (no record) deleted
	AuditObjectMissing  = "object.missing"  // a record's object is gone; files flagged
	AuditObjectFound    = "object.found"    // a missing object is back; flag cleared
	AuditTempRemoved    = "temp.removed"    // stale temp file (abandoned upload) removed
	AuditSkipped        = "cleanup.skipped" // a planned action not taken, Reason says why
	AuditSettingChanged = "setting.changed" // a cleanup setting changed at run time
)

// Audit target kinds (AuditEntry.TargetKind).
const (
	TargetFile    = "file"    // Target is a file ID
	TargetBlob    = "blob"    // Target is a SHA-256
	TargetTemp    = "temp"    // Target is a temp file name
	TargetSetting = "setting" // Target is a setting key
)

// AuditEntry is one record of the append-only audit log: who did what to
// which target, when, why, and in which cleanup run.
type AuditEntry struct {
	ID         int64     `json:"id"`
	Time       time.Time `json:"time"`
	Actor      string    `json:"actor"` // API key ID or ActorSystem
	Action     string    `json:"action"`
	TargetKind string    `json:"target_kind"`
	Target     string    `json:"target"`
	Bytes      int64     `json:"bytes"`
	Reason     string    `json:"reason,omitempty"`
	RunID      int64     `json:"run_id,omitempty"` // 0 outside cleanup runs
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	// Since, if not zero, keeps entries at or after it.
	Since time.Time
	// Action, if not empty, keeps entries with that action.
	Action string
	// RunID, if not zero, keeps entries of that cleanup run.
	RunID int64
	// AfterID keeps entries with a greater ID (for paging).
	AfterID int64
	// Limit is the page size; 0 means 100. Implementations cap it at 1000.
	Limit int
}

// Cleanup kinds: what a cleanup run looks for, each counted separately.
// The provider kinds, KindProviderCopy and KindProviderOrphan, are declared
// with the provider types (provider.go), KindExpiredUpload with the upload
// types (upload.go), KindWSSession with the WebSocket session types
// (wssession.go).
const (
	KindTrash            = "trash"             // soft-deleted files past purge_after
	KindOrphanObject     = "orphan_object"     // objects with no blob record
	KindUnreferencedBlob = "unreferenced_blob" // blob records no file points at
	KindMissingObject    = "missing_object"    // blob records whose object is gone
	KindStaleTemp        = "stale_temp"        // abandoned staged uploads
)

// CleanupKinds lists every cleanup kind, in the order a run handles them.
// It is the one list of kinds: the cleanup service, its API and the stores
// read it.
var CleanupKinds = []string{KindTrash, KindOrphanObject, KindUnreferencedBlob, KindMissingObject, KindStaleTemp,
	KindExpiredUpload, KindWSSession, KindProviderCopy, KindProviderOrphan}

// CleanupRunCounts reports whether a stored CleanupRun keeps kind's
// counters in Counts: true for the kinds the run store has counter columns
// for (the five blob kinds, which predate the provider kinds). The
// counters of every other kind are kept in the run's Report only.
func CleanupRunCounts(kind string) bool {
	switch kind {
	case KindTrash, KindOrphanObject, KindUnreferencedBlob, KindMissingObject, KindStaleTemp:
		return true
	}
	return false
}

// Cleanup run statuses.
const (
	RunRunning     = "running"     // started, not finished (or its process died)
	RunOK          = "ok"          // finished; individual items may have failed (Errors)
	RunFailed      = "failed"      // stopped by an error
	RunRefused     = "refused"     // stopped by the safety cap before deleting anything
	RunInterrupted = "interrupted" // found running by a later run: its process died
)

// CleanupCounts are one kind's counters in a cleanup run.
type CleanupCounts struct {
	Scanned int64 `json:"scanned"` // items looked at
	Found   int64 `json:"found"`   // items that qualified
	Deleted int64 `json:"deleted"` // items deleted (would be, in a dry run)
	Bytes   int64 `json:"bytes"`   // bytes freed (would be, in a dry run)
}

// CleanupRun is the stored record of one cleanup run.
type CleanupRun struct {
	ID         int64                    `json:"id"`
	Trigger    string                   `json:"trigger"` // "schedule", "api", "cli", ...
	Actor      string                   `json:"actor"`
	DryRun     bool                     `json:"dry_run"`
	StartedAt  time.Time                `json:"started_at"`
	FinishedAt *time.Time               `json:"finished_at,omitempty"`
	Status     string                   `json:"status"` // one of the Run* statuses
	Counts     map[string]CleanupCounts `json:"counts,omitempty"`
	BytesFreed int64                    `json:"bytes_freed"`
	Errors     int64                    `json:"errors"`
	// Report is the cleanup service's full report (JSON), opaque to the
	// store. Omitted from events.
	Report json.RawMessage `json:"report,omitempty"`
}

// The cleanup service's store is a MetaStore with the small capabilities
// below, each an optional interface asserted by type assertion. Each is
// what one part of the service needs; CleanupStore is all of them, for the
// service itself. None changes how the MetaStore methods behave (see the
// MetaStore doc for the audit entries and revivals they always make).
// Like MetaStore's, every method returns EUNAVAILABLE when the store cannot
// be reached.

// AuditLog is the append-only audit log: who did what to which target,
// when, why, and in which cleanup run.
type AuditLog interface {
	// AppendAudit appends entries (their IDs are assigned) to the audit
	// log, in one transaction: all or none. An entry's zero Time becomes
	// now and its empty Actor ActorSystem. Returns EINVALID if an entry
	// fails AuditEntry.Validate (then nothing is appended).
	AppendAudit(ctx context.Context, entries ...AuditEntry) error

	// ListAudit returns audit entries matching filter in ID order. A
	// filter Limit of 0 or less means 100; above 1000 is 1000.
	ListAudit(ctx context.Context, filter AuditFilter) ([]*AuditEntry, error)
}

// EventAppender records events other than the file events MetaStore
// records itself (the cleanup service's run events).
type EventAppender interface {
	// AppendEvent records e (Type, Time and Run or File set; a zero Time
	// is now) in the event log and sets e.ID. A Run is stored without its
	// Report. Returns EINVALID if e fails Event.Validate.
	AppendEvent(ctx context.Context, e *Event) error
}

// EventWaker is an optional capability of a MetaStore that several
// processes share: it hears at once that any of them appended events, so a
// reader of the log (the WebSocket event hub) need not wait for its next
// poll. A wake-up carries no events and may be spurious or coalesced;
// readers still read the log after each, and keep polling as a safety net
// for wake-ups lost while the store was unreachable.
type EventWaker interface {
	// WatchEvents calls wake each time events may have been appended,
	// by this process or another, until ctx ends, and then returns nil.
	// wake must not block. WatchEvents also calls wake each time it
	// (re)starts listening, since appends made while it was not listening
	// were not heard. It rides out store outages by itself (reconnecting
	// with backoff) and returns an error only for a fault retrying
	// cannot mend.
	WatchEvents(ctx context.Context, wake func()) error
}

// CleanupRunStore keeps the record of every cleanup run.
type CleanupRunStore interface {
	// InsertRun records a new run (ID is assigned and set; an empty Actor
	// becomes ActorSystem) and ends every other run still in status
	// RunRunning as RunInterrupted: the caller holds the cleanup lease, so
	// they cannot be running any more. Returns EINVALID if run fails
	// CleanupRun.Validate.
	InsertRun(ctx context.Context, run *CleanupRun) error

	// FinishRun stores run's final state (status, finish time, counters,
	// report). Returns EINVALID if run fails CleanupRun.Validate,
	// ENOTFOUND for an unknown run ID.
	FinishRun(ctx context.Context, run *CleanupRun) error

	// ListRuns returns the last runs, newest first; last <= 0 means 10,
	// above 1000 is 1000.
	ListRuns(ctx context.Context, last int) ([]*CleanupRun, error)

	// FindRun returns the run with the given ID. Returns ENOTFOUND if
	// there is none.
	FindRun(ctx context.Context, id int64) (*CleanupRun, error)
}

// SettingsStore keeps the cleanup settings that can change at run time, as
// opaque strings; the cleanup service parses them.
type SettingsStore interface {
	// Settings returns every stored cleanup setting (an empty map if
	// none).
	Settings(ctx context.Context) (map[string]string, error)

	// SetSettings stores the settings in kv and appends one
	// AuditSettingChanged entry per key (by actor, at `at`) in one
	// transaction.
	SetSettings(ctx context.Context, kv map[string]string, actor string, at time.Time) error
}

// LeaseStore keeps named leases, which make a job exclusive across
// processes sharing the store. Of any number of concurrent acquisitions of
// a free lease exactly one succeeds.
//
// Each tenure of a lease has a generation, which grows whenever the lease
// passes to another holder or is taken again after it expired or was
// released; renewals keep it. The Fence that AcquireLease returns names the
// tenure, and the destructive methods of TrashPurger and BlobSweeper, and
// Fenced, check inside their own transaction that it is still current: a
// holder that stalled past its TTL (a long scan, a GC pause, provider
// retries) while another took the lease cannot act on its stale plan. They
// return ErrLeaseLost (code ECONFLICT) when it is not, and EINVALID for a
// zero Fence.
type LeaseStore interface {
	// AcquireLease takes or renews the lease name for holder until
	// now+ttl. It succeeds (ok) if the lease is free, expired at now, or
	// already held by holder, and returns the fence of holder's tenure;
	// otherwise ok is false and the fence names the current holder and
	// generation. Returns EINVALID if name or holder is empty.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (f Fence, ok bool, err error)

	// RenewLease extends the tenure f until now+ttl if it is still
	// current (same holder and generation: nobody else took the lease in
	// between, even if it expired). Returns ErrLeaseLost otherwise.
	RenewLease(ctx context.Context, f Fence, now time.Time, ttl time.Duration) error

	// ReleaseLease gives the lease up if holder holds it; otherwise it does
	// nothing (and returns nil). The generation is kept, so a later tenure
	// has a larger one.
	ReleaseLease(ctx context.Context, name, holder string) error

	// Fenced calls fn inside a writing transaction in which it has checked
	// that f is current, and keeps the lease from passing to another
	// holder until fn returns: for destructive steps outside the
	// metadata (a provider file, a temp file) that still must not run once
	// the lease has moved on. fn must not use the store. Returns
	// ErrLeaseLost (fn not called) or fn's error unchanged.
	Fenced(ctx context.Context, f Fence, fn func(ctx context.Context) error) error
}

// Fence names one tenure of a lease: its holder and generation.
type Fence struct {
	Name       string
	Holder     string
	Generation int64
}

// IsZero reports whether f names no tenure.
func (f Fence) IsZero() bool { return f.Name == "" || f.Holder == "" }

// CheckFenceArg returns EINVALID for a zero fence; the stores call it
// before checking a fence against the lease table.
func CheckFenceArg(f Fence) error {
	if f.IsZero() {
		return Errorf(EINVALID, "a fence (lease name, holder and generation) is required")
	}
	return nil
}

// LeaseLostError returns the error of a fenced step whose tenure f is no
// longer current: code ECONFLICT, and errors.Is(err, ErrLeaseLost).
func LeaseLostError(f Fence) error {
	return &Error{Code: ECONFLICT, Err: ErrLeaseLost,
		Message: fmt.Sprintf("the %s lease (generation %d) is no longer held by %s", f.Name, f.Generation, f.Holder)}
}

// TrashPurger finds and purges soft-deleted files whose trash grace has
// expired.
type TrashPurger interface {
	// ListExpiredTrash returns up to limit (all if limit <= 0) soft-deleted
	// files whose purge_after is at or before `before`, ordered by
	// purge_after then ID.
	ListExpiredTrash(ctx context.Context, before time.Time, limit int) ([]*File, error)

	// PurgeExpiredFile purges the file like MetaStore.PurgeFile, but only
	// if it is still soft-deleted with purge_after at or before `at`, and
	// appends audit (its TargetKind, Target and Bytes filled in) in the
	// same transaction, if the fence f is current (see LeaseStore). The
	// blob's UnreferencedSince becomes `at` if its count drops to zero.
	// Returns ErrLeaseLost if f is not current, ENOTFOUND if there is no
	// such file, ECONFLICT if it was restored or its purge time is later.
	PurgeExpiredFile(ctx context.Context, f Fence, id string, at time.Time, audit AuditEntry) (*File, error)
}

// BlobSweeper is the reference scan of the blob records and the deletions
// and flags it leads to. Every deletion re-checks, inside the store's
// serialized writer, that the record still qualifies; that is what makes a
// sweep safe against a concurrent upload (see MetaStore's revival note).
type BlobSweeper interface {
	// ListBlobs returns up to limit blob records with SHA256 > after, in
	// SHA256 order: keyset paging for scans of every blob in bounded
	// memory. A limit of 0 or less means 1000; larger limits are not
	// capped, so that scans can take large pages.
	ListBlobs(ctx context.Context, after string, limit int) ([]*Blob, error)

	// CountBlobs returns the number of blob records.
	CountBlobs(ctx context.Context) (int64, error)

	// ListUnreferencedBlobs returns up to limit blobs with a reference
	// count of zero unreferenced since at or before `before`, with SHA256
	// > after, in SHA256 order. A limit of 0 or less means 1000.
	ListUnreferencedBlobs(ctx context.Context, before time.Time, after string, limit int) ([]*Blob, error)

	// MarkBlobs sets MarkedAt to at on each of sums that is still
	// unreferenced and not marked yet, and returns how many it marked.
	// Unknown sums are not an error.
	MarkBlobs(ctx context.Context, sums []string, at time.Time) (int64, error)

	// SweepBlob deletes the blob record sum if, inside the writing
	// transaction, it still has no references, is marked and has been
	// unreferenced since at or before `before`. In that case it calls del
	// (which deletes the object) inside the transaction, then appends
	// audit (TargetKind, Target and Bytes filled in); if del fails nothing
	// changes and its error is returned unchanged. swept is false, with a
	// nil error, when the blob no longer qualifies (revived, unmarked, or
	// gone). It checks the fence f in the same transaction first and
	// returns ErrLeaseLost (del not called) if f is not current.
	SweepBlob(ctx context.Context, f Fence, sum string, before time.Time, del func(ctx context.Context) error, audit AuditEntry) (swept bool, err error)

	// DeleteOrphanObject calls del (which deletes the object sum) inside a
	// writing transaction in which it has checked that no blob record sum
	// exists, and appends audit (TargetKind and Target filled in). deleted
	// is false, with a nil error, if a record exists (a concurrent upload
	// committed it); del's error is returned unchanged. It checks the
	// fence f in the same transaction first and returns ErrLeaseLost (del
	// not called) if f is not current.
	DeleteOrphanObject(ctx context.Context, f Fence, sum string, del func(ctx context.Context) error, audit AuditEntry) (deleted bool, err error)

	// SetBlobMissing records that the object of blob sum is missing (at
	// is the time) or present again (a zero at), flags or unflags every
	// file of the blob (File.ContentMissing) and appends audit, in one
	// transaction, but only if the state changes; changed reports whether
	// it did. Returns ENOTFOUND if there is no blob record sum.
	SetBlobMissing(ctx context.Context, sum string, at time.Time, audit AuditEntry) (changed bool, err error)
}

// CleanupStore is every capability the cleanup service needs beyond
// MetaStore. A MetaStore that implements it can be cleaned; the cleanup
// service asserts it by type assertion. Code that needs less asks for less
// (an audit reader takes an AuditLog).
type CleanupStore interface {
	AuditLog
	EventAppender
	CleanupRunStore
	SettingsStore
	LeaseStore
	TrashPurger
	BlobSweeper
}

// BlobWalker is an optional capability of a BlobStore: listing every object,
// for the cleanup service's orphan scan.
type BlobWalker interface {
	// Walk calls fn for every object in ascending SHA256 order, stopping
	// at fn's first error (returned unchanged).
	Walk(ctx context.Context, fn func(BlobInfo) error) error
}

// SumWalker is an optional capability of a BlobStore that can list its
// objects' sums more cheaply than BlobWalker lists their BlobInfo (a local
// disk without a stat of every object). The cleanup service's orphan scan
// prefers it, and asks Stat only about the objects it may delete.
type SumWalker interface {
	// WalkSums calls fn with the sum of every object in ascending order,
	// stopping at fn's first error (returned unchanged).
	WalkSums(ctx context.Context, fn func(sum string) error) error
}

// TempCleaner is an optional capability of a BlobStore that stages uploads in
// temp files: listing and removing them, for the cleanup service.
type TempCleaner interface {
	// WalkTemp calls fn for every temp file with its name, modification
	// time and size, stopping at fn's first error.
	WalkTemp(ctx context.Context, fn func(name string, modTime time.Time, size int64) error) error
	// RemoveTemp removes the temp file name; a missing one is not an
	// error. Returns EINVALID for a name WalkTemp cannot have reported
	// (never a path).
	RemoveTemp(ctx context.Context, name string) error
}

// AuditRefCountRepaired is the audit action of `filehub check --repair`
// setting a blob's reference count to the number of files pointing at it.
const AuditRefCountRepaired = "blob.refcount_repaired"

// FileRef is one file record as the consistency check sees it.
type FileRef struct {
	ID      string `json:"id"`
	Size    int64  `json:"size"`
	Deleted bool   `json:"deleted,omitempty"`
}

// BlobRefs is a blob record and the file records (live or soft-deleted)
// that point at it.
type BlobRefs struct {
	Blob
	Files []FileRef
}

// Checker is an optional capability of a MetaStore: the reads and the one
// repair of `filehub check`. Files cannot point at a missing blob record
// (both stores enforce it with a foreign key), so a blob-ordered scan sees
// every file.
type Checker interface {
	// ListBlobRefs returns up to limit blob records with SHA256 > after,
	// in SHA256 order, each with every file record whose SHA256 is the
	// blob's (in ID order). Each page is read in one snapshot, so a
	// record's RefCount and its Files agree unless the store is
	// inconsistent. A limit of 0 or less means 1000.
	ListBlobRefs(ctx context.Context, after string, limit int) ([]*BlobRefs, error)

	// RepairRefCount sets blob sum's reference count to the number of file
	// records pointing at it, inside the store's serialized writer (so a
	// concurrent upload or purge is counted exactly once). When the count
	// changes it also sets UnreferencedSince to at (new count 0, if not
	// already set) or clears it and MarkedAt (new count above 0), and
	// appends audit (TargetKind, Target and Bytes filled in) in the same
	// transaction. It returns the counts before and after. Returns
	// ENOTFOUND if there is no blob record sum.
	RepairRefCount(ctx context.Context, sum string, at time.Time, audit AuditEntry) (before, after int64, err error)
}
