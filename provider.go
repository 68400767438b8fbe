package filehub

import (
	"context"
	"io"
	"time"
)

// ProviderFile is one file stored at a model provider, as its files API
// describes it.
type ProviderFile struct {
	ID        string    `json:"id"`
	Filename  string    `json:"filename"`
	Purpose   string    `json:"purpose"`
	Bytes     int64     `json:"bytes"`
	CreatedAt time.Time `json:"created_at"`
}

// Provider is a model provider's files API (OpenAI-compatible: upload,
// retrieve, delete, list). Implementations must be safe for concurrent use
// and retry transient failures themselves; errors they return are final.
// Errors carry a filehub code: ENOTFOUND for a file the provider does not
// have, ETOOLARGE for content over its limit, EUNAVAILABLE when the
// provider cannot be reached or keeps failing, EINVALID or EFORBIDDEN for
// what it refuses; the message names the provider, the HTTP status and the
// provider's own message.
type Provider interface {
	// Name is the provider's configured name ("kimi", "glm", ...).
	Name() string

	// Purpose is the purpose the provider's uploads are made with.
	Purpose() string

	// MaxFileSize is the largest file the provider accepts, in bytes; 0
	// means no known limit.
	MaxFileSize() int64

	// Upload stores the size bytes of content returned by open at the
	// provider under the file name name with the given purpose, and
	// returns the provider's file. open is called once per attempt (an
	// upload that is retried needs the content again from the start); the
	// reader is read to the end and closed.
	Upload(ctx context.Context, name, purpose string, size int64, open func() (io.ReadCloser, error)) (*ProviderFile, error)

	// Retrieve returns the provider's file id. Returns ENOTFOUND if the
	// provider does not have it (deleted, or expired).
	Retrieve(ctx context.Context, id string) (*ProviderFile, error)

	// Delete deletes the provider's file id. Deleting a file the provider
	// does not have returns ENOTFOUND.
	Delete(ctx context.Context, id string) error

	// List returns one page of the provider's files, up to limit (0: the
	// provider's default), after the file with ID after ("" for the first
	// page), and the ID to pass as after for the next page, "" on the
	// last page.
	List(ctx context.Context, after string, limit int) (files []*ProviderFile, next string, err error)
}

// Provider mapping states.
const (
	// MappingPending: a push has claimed the content and is uploading it.
	MappingPending = "pending"
	// MappingReady: the provider holds the content as ProviderFileID.
	MappingReady = "ready"
)

// ProviderKey names one content at one provider for one purpose: the unit
// that is uploaded at most once.
type ProviderKey struct {
	SHA256   string `json:"sha256"`
	Provider string `json:"provider"`
	Purpose  string `json:"purpose"`
}

// ProviderMapping records that content (SHA256) is, or is being, stored at
// a provider for a purpose.
type ProviderMapping struct {
	ProviderKey
	// ProviderFileID is the provider's file ID; "" while pending.
	ProviderFileID string `json:"provider_file_id,omitempty"`
	State          string `json:"state"` // MappingPending or MappingReady
	// Size is the content's size in bytes.
	Size int64 `json:"size"`
	// ClaimID identifies the push that claimed a pending mapping; only
	// that push may complete it. Not serialized.
	ClaimID string `json:"-"`
	// ClaimedAt is when the mapping was last claimed; a pending mapping
	// whose claim is older than the claim TTL may be taken over.
	ClaimedAt time.Time `json:"claimed_at"`
	// VerifiedAt is when the provider last confirmed it has the file
	// (the upload itself counts); nil while pending.
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
	// LastUsedAt is when a push last answered with the file.
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// ProviderStore is an optional capability of a MetaStore: the mappings of
// contents to provider files, for pushing content to providers at most
// once. There is at most one mapping per ProviderKey. Mappings do not
// reference blob records: a provider copy may outlive its blob until the
// cleanup service deletes it at the provider.
type ProviderStore interface {
	// ClaimProviderMapping claims key for the push claimID, atomically:
	// it inserts a pending mapping (Size size, ClaimedAt now) if there is
	// none, and takes over a pending one whose claim is at or before
	// now-ttl or is already claimID's (setting ClaimID and ClaimedAt). It
	// returns the mapping as it is afterwards and whether claimID holds
	// it; of any number of concurrent claims of a free key exactly one
	// wins. A ready mapping is returned unchanged with claimed false.
	ClaimProviderMapping(ctx context.Context, key ProviderKey, size int64, claimID string, now time.Time, ttl time.Duration) (m *ProviderMapping, claimed bool, err error)

	// CompleteProviderMapping turns the pending mapping of key claimed by
	// claimID ready with providerFileID, verified and used at `at`, and
	// returns it. Returns ECONFLICT if the mapping is not pending under
	// claimID (the claim expired and was taken over), ENOTFOUND if there
	// is no mapping.
	CompleteProviderMapping(ctx context.Context, key ProviderKey, claimID, providerFileID string, at time.Time) (*ProviderMapping, error)

	// FindProviderMapping returns the mapping of key. Returns ENOTFOUND
	// if there is none.
	FindProviderMapping(ctx context.Context, key ProviderKey) (*ProviderMapping, error)

	// TouchProviderMapping sets the ready mapping of key's VerifiedAt to
	// verified and LastUsedAt to used, leaving either alone when zero.
	// Returns ENOTFOUND if there is no ready mapping.
	TouchProviderMapping(ctx context.Context, key ProviderKey, verified, used time.Time) error

	// DeleteProviderMapping deletes the mapping of m's key if it still
	// has m's State, ProviderFileID and ClaimID, so that a caller acting
	// on what it read never deletes a mapping changed since. deleted is
	// false, with a nil error, otherwise.
	DeleteProviderMapping(ctx context.Context, m *ProviderMapping) (deleted bool, err error)

	// ListProviderMappings returns up to limit mappings (pending and
	// ready) whose key is after after, in key order (SHA256, then
	// Provider, then Purpose); the zero ProviderKey starts at the first.
	// Pass the last key of a page as after to read the next one. limit <= 0
	// means 1000.
	ListProviderMappings(ctx context.Context, after ProviderKey, limit int) ([]*ProviderMapping, error)
}

// Provider cleanup kinds, audit actions and target kind (see the cleanup
// service).
const (
	// KindProviderCopy: ready mappings whose content has no file record
	// any more (soft-deleted files still count), unused for longer than
	// the blob grace; deleted at the provider.
	KindProviderCopy = "provider_copy"
	// KindProviderOrphan: files at a provider that no mapping names.
	KindProviderOrphan = "provider_orphan"

	AuditProviderDeleted     = "provider.deleted"      // a provider file deleted at the provider
	AuditProviderOrphanFound = "provider.orphan_found" // a provider file without a mapping found

	TargetProvider = "provider" // Target is "provider:name/provider-file-id"
)

// Key returns m's key.
func (m *ProviderMapping) Key() ProviderKey { return m.ProviderKey }
