package filehub

import (
	"maps"
	"slices"
)

// Validation of what the stores are given. It lives here, once, so that
// every backend refuses the same input with the same message; a store calls
// these before it writes anything.

// Validate returns an EINVALID error if f lacks a field MetaStore.CreateFile
// requires: ID, Name, a non-negative Size, a valid SHA256, ContentType,
// CreatedAt and OwnerKeyID. A nil f is invalid.
func (f *File) Validate() error {
	switch {
	case f == nil:
		return Errorf(EINVALID, "no file given")
	case f.ID == "":
		return Errorf(EINVALID, "file has no ID")
	case f.Name == "":
		return Errorf(EINVALID, "file has no name")
	case f.Size < 0:
		return Errorf(EINVALID, "file size is negative")
	case !ValidSHA256(f.SHA256):
		return Errorf(EINVALID, "file has no valid SHA-256")
	case f.ContentType == "":
		return Errorf(EINVALID, "file has no content type")
	case f.CreatedAt.IsZero():
		return Errorf(EINVALID, "file has no creation time")
	case f.OwnerKeyID == "":
		return Errorf(EINVALID, "file has no owner key")
	}
	return nil
}

// Validate returns an EINVALID error if k lacks a field
// MetaStore.CreateAPIKey requires (ID, Name, Scopes, CreatedAt, Hash) or
// names a scope ParseScope does not know in its canonical spelling (stores
// keep scopes comma-separated, so only known ones may pass). A nil k is
// invalid.
func (k *APIKey) Validate() error {
	switch {
	case k == nil:
		return Errorf(EINVALID, "no API key given")
	case k.ID == "":
		return Errorf(EINVALID, "API key has no ID")
	case k.Name == "":
		return Errorf(EINVALID, "API key has no name")
	case len(k.Scopes) == 0:
		return Errorf(EINVALID, "API key has no scopes")
	case k.CreatedAt.IsZero():
		return Errorf(EINVALID, "API key has no creation time")
	case len(k.Hash) == 0:
		return Errorf(EINVALID, "API key has no hash")
	}
	for _, s := range k.Scopes {
		if p, err := ParseScope(string(s)); err != nil || p != s {
			return Errorf(EINVALID, "unknown scope %q", s)
		}
	}
	return nil
}

// Validate returns an EINVALID error unless k has a valid SHA256, a
// Provider and a Purpose.
func (k ProviderKey) Validate() error {
	if !ValidSHA256(k.SHA256) || k.Provider == "" || k.Purpose == "" {
		return Errorf(EINVALID, "a provider mapping needs a valid sha256, a provider and a purpose")
	}
	return nil
}

// Validate returns an EINVALID error if a has no Action or no TargetKind.
// (A zero Time and an empty Actor are not errors: AuditLog.AppendAudit
// fills them in.)
func (a *AuditEntry) Validate() error {
	if a.Action == "" || a.TargetKind == "" {
		return Errorf(EINVALID, "audit entry needs an action and a target kind")
	}
	return nil
}

// Validate returns an EINVALID error if run (nil included) has no Trigger,
// Status or StartedAt, or counts a kind whose counters a stored run does
// not keep (see CleanupRunCounts).
func (run *CleanupRun) Validate() error {
	if run == nil || run.StartedAt.IsZero() || run.Trigger == "" || run.Status == "" {
		return Errorf(EINVALID, "run needs a trigger, a status and a start time")
	}
	for _, k := range slices.Sorted(maps.Keys(run.Counts)) {
		if !CleanupRunCounts(k) {
			return Errorf(EINVALID, "unknown cleanup kind %q", k)
		}
	}
	return nil
}

// Validate returns an EINVALID error if e is nil or has no Type.
func (e *Event) Validate() error {
	if e == nil || e.Type == "" {
		return Errorf(EINVALID, "event has no type")
	}
	return nil
}
