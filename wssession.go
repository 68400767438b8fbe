package filehub

import (
	"context"
	"time"
)

// WSSession is the durable state of one WebSocket session (docs/protocol.md
// §5): what a server needs to resume it after its process died, or on
// another instance. The server keeps a live copy in memory and writes its
// changes with WSSessionStore.SaveWSSessions; it acknowledges a client
// frame only once the state that records it is saved.
type WSSession struct {
	ID    string
	KeyID string
	// TokenHash and PrevTokenHash are SHA-256 hashes of the current resume
	// token and of the one the last resume presented (valid until the
	// client sends a frame on the new connection). The tokens themselves
	// are never stored.
	TokenHash     []byte
	PrevTokenHash []byte
	// Epoch is the owner epoch: ClaimWSSession increments it, and a save
	// that names an older epoch is refused. It fences a previous owner — a
	// paused or partitioned process — out of the session.
	Epoch int64
	// Owner names the instance that claimed the session last.
	Owner string

	// InSeq is the last client seq processed; ClientAcked the highest
	// server seq the client acknowledged; OutSeq the last server seq
	// assigned.
	InSeq       int64
	OutSeq      int64
	ClientAcked int64
	// Out holds the unacknowledged server frames (seq > ClientAcked), in
	// seq order.
	Out []WSFrame
	// Results is the at-most-once cache of request results, oldest first.
	Results []WSResult

	// Subscribed and EventCursor are the event subscription: whether the
	// session receives events, and the id of the last event put in Out.
	Subscribed  bool
	EventCursor int64

	CreatedAt time.Time
	UpdatedAt time.Time
	// DetachedAt is when the session's last connection ended; zero while
	// one is attached. A session detached for longer than the TTL expires.
	DetachedAt time.Time
}

// WSFrame is stored server output kept until the client acknowledges it:
// Data and the Seq it ends at. To the store it is opaque: the WebSocket
// server packs the frames of one commit into one WSFrame (their encodings
// joined by newlines, Seq the last one's), so that a commit writes one row
// per session, and the store deletes it once ClientAcked reaches Seq.
type WSFrame struct {
	Seq  int64
	Data []byte
}

// WSResult is a cached request result: the request id and the res frame's
// encoding after its seq. A nil Body is a tombstone: the result was dropped
// for space, and a re-sent request with ID is refused rather than run again.
type WSResult struct {
	ID   string
	Body []byte
}

// WSSessionUpdate is one session's change since its last save: the scalar
// state as it is now, and the frames and results added or dropped.
type WSSessionUpdate struct {
	ID string
	// Epoch is the epoch the saver holds; the update is refused (the ID
	// is returned as lost) unless it is still the stored one.
	Epoch int64

	TokenHash     []byte
	PrevTokenHash []byte
	InSeq         int64
	OutSeq        int64
	ClientAcked   int64
	Subscribed    bool
	EventCursor   int64
	UpdatedAt     time.Time
	DetachedAt    time.Time

	// AddOut are new server frames, seq ascending, all above the stored
	// ones. Stored frames with seq <= ClientAcked are deleted.
	AddOut []WSFrame
	// PutResults adds or replaces cached results (a nil Body turns a
	// result into a tombstone); DropResults forgets ids entirely.
	PutResults  []WSResult
	DropResults []string
}

// WSClaim is what a resume presents to take a session over: the session,
// the claiming instance, and the credentials checked in the same statement
// that bumps the epoch.
type WSClaim struct {
	ID    string
	Owner string
	// KeyID is the API key of the resuming connection; TokenHash the
	// SHA-256 of the resume token it presented.
	KeyID     string
	TokenHash []byte
	// AliveAfter, if set, makes a session last seen alive before it (as
	// ExpireWSSessions reckons) count as expired: the claim fails with
	// ErrWSSessionExpired and changes nothing. It enforces the session TTL
	// between the cleanup service's runs.
	AliveAfter time.Time
}

// ErrWSSessionExpired is the error of a claim of a session past its TTL
// (WSClaim.AliveAfter). Its code is ENOTFOUND.
var ErrWSSessionExpired = &Error{Code: ENOTFOUND, Message: "the WebSocket session expired"}

// Valid reports whether every field of c is set.
func (c WSClaim) Valid() bool {
	return c.ID != "" && c.Owner != "" && c.KeyID != "" && len(c.TokenHash) > 0
}

// WSSessionStore is an optional capability of a MetaStore: durable
// WebSocket sessions. Implementations must be safe for concurrent use, also
// by several processes on one database.
type WSSessionStore interface {
	// CreateWSSession stores a new session s with its Epoch (usually 1)
	// and Owner. Returns ECONFLICT if the ID exists.
	CreateWSSession(ctx context.Context, s *WSSession) error

	// ClaimWSSession takes session c.ID over for c.Owner if c presents
	// the session's key and its current or previous token hash: it
	// increments the epoch, sets Owner and clears DetachedAt, and returns
	// the whole state with the new epoch. Returns ENOTFOUND if there is no
	// such session, and EFORBIDDEN — changing nothing, so that knowing a
	// session's ID is not enough to disturb it — if the key or the token
	// does not match. EINVALID if c lacks a field.
	ClaimWSSession(ctx context.Context, c WSClaim, now time.Time) (*WSSession, error)

	// SaveWSSessions applies updates in one transaction (the group commit
	// of many sessions' changes). An update whose Epoch is not the stored
	// one, or whose session is gone, is skipped and its ID returned in
	// lost; the others are committed. An error means nothing was
	// committed.
	SaveWSSessions(ctx context.Context, updates []WSSessionUpdate) (lost []string, err error)

	// DeleteWSSession removes session id and its frames and results if
	// its epoch is epoch (any epoch if 0). Not an error if it is gone.
	DeleteWSSession(ctx context.Context, id string, epoch int64) error

	// ExpireWSSessions deletes at most limit sessions last seen alive
	// before detachedBefore — detached before it, or still marked attached
	// but not saved since (their owner died while a connection was
	// attached; a live owner saves every attached session at least every
	// few seconds) — with their frames and results, and returns their IDs.
	ExpireWSSessions(ctx context.Context, detachedBefore time.Time, limit int) ([]string, error)

	// CountWSSessions returns how many sessions key keyID has, attached or
	// waiting for a resume.
	CountWSSessions(ctx context.Context, keyID string) (int, error)
}

// InstanceStore is an optional capability of a MetaStore: the live filehub
// instances on one database, from their heartbeats. Instances use the count
// to share cluster-wide limits (docs/decisions.md).
type InstanceStore interface {
	// HeartbeatInstance records that instance id is alive at now.
	HeartbeatInstance(ctx context.Context, id string, now time.Time) error
	// LiveInstances returns how many instances sent a heartbeat after
	// since (at least 1 is what callers should assume on error).
	LiveInstances(ctx context.Context, since time.Time) (int, error)
	// RemoveInstance forgets instance id (a graceful shutdown).
	RemoveInstance(ctx context.Context, id string) error
}

// WSSessionLister is an optional capability next to WSSessionStore: a
// read-only look at the sessions ExpireWSSessions would delete, so that the
// cleanup service can plan (and a dry run report) without deleting.
type WSSessionLister interface {
	// ListExpiredWSSessions returns at most limit sessions (all if limit
	// <= 0) that ExpireWSSessions(detachedBefore) would delete, the
	// longest gone first,
	// without their Out and Results.
	ListExpiredWSSessions(ctx context.Context, detachedBefore time.Time, limit int) ([]*WSSession, error)
}

// KindWSSession is the cleanup kind of durable WebSocket sessions detached
// for longer than the session TTL (docs/cleanup.md).
const KindWSSession = "ws_session"

// Audit action and target kind of an expired WebSocket session.
const (
	AuditWSSessionExpired = "ws_session.expired" // a session detached past its TTL removed with its state
	TargetWSSession       = "ws_session"         // Target is a WebSocket session ID
)

// Validate checks what every WSSessionStore requires of a new session
// (CreateWSSession returns its EINVALID).
func (s *WSSession) Validate() error {
	switch {
	case s.ID == "", s.KeyID == "", len(s.TokenHash) == 0, s.Epoch < 1, s.CreatedAt.IsZero():
		return Errorf(EINVALID, "incomplete WebSocket session record (id, key, token hash, epoch >= 1 and creation time are required)")
	case s.InSeq < 0, s.OutSeq < 0, s.ClientAcked < 0, s.ClientAcked > s.OutSeq:
		return Errorf(EINVALID, "WebSocket session %s: inconsistent sequence numbers", s.ID)
	}
	return nil
}

// ValidateWSUpdates checks a batch for SaveWSSessions before any of it is
// written: a malformed update is a bug of the caller, and failing the batch
// for it (nothing is committed, EINVALID) is better than storing a session
// that cannot be resumed.
func ValidateWSUpdates(updates []WSSessionUpdate) error {
	seen := make(map[string]bool, len(updates))
	for i := range updates {
		u := &updates[i]
		if u.ID == "" || u.Epoch < 1 || len(u.TokenHash) == 0 || u.ClientAcked > u.OutSeq {
			return Errorf(EINVALID, "WebSocket session update %d (%q): incomplete or inconsistent", i, u.ID)
		}
		if seen[u.ID] {
			return Errorf(EINVALID, "WebSocket session %s: two updates in one batch (merge a session's changes into one)", u.ID)
		}
		seen[u.ID] = true
		for _, f := range u.AddOut {
			if f.Seq <= 0 || f.Seq > u.OutSeq || f.Data == nil {
				return Errorf(EINVALID, "WebSocket session %s: frame seq %d outside 1..%d or without data", u.ID, f.Seq, u.OutSeq)
			}
		}
		for _, r := range u.PutResults {
			if r.ID == "" {
				return Errorf(EINVALID, "WebSocket session %s: result without a request id", u.ID)
			}
		}
	}
	return nil
}
