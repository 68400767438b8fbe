package filehub_test

import (
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub"
)

func TestFileValidate(t *testing.T) {
	good := func() *filehub.File {
		return &filehub.File{ID: "f_1", Name: "a.txt", Size: 3, SHA256: strings.Repeat("ab", 32),
			ContentType: "text/plain", CreatedAt: time.Unix(1, 0), OwnerKeyID: "k_1"}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid file: %v", err)
	}
	for name, spoil := range map[string]func(f *filehub.File){
		"no ID":           func(f *filehub.File) { f.ID = "" },
		"no name":         func(f *filehub.File) { f.Name = "" },
		"negative size":   func(f *filehub.File) { f.Size = -1 },
		"bad sum":         func(f *filehub.File) { f.SHA256 = "AB" },
		"no content type": func(f *filehub.File) { f.ContentType = "" },
		"no time":         func(f *filehub.File) { f.CreatedAt = time.Time{} },
		"no owner":        func(f *filehub.File) { f.OwnerKeyID = "" },
	} {
		f := good()
		spoil(f)
		if err := f.Validate(); filehub.ErrorCode(err) != filehub.EINVALID {
			t.Errorf("%s: Validate = %v, want EINVALID", name, err)
		}
	}
	var nilFile *filehub.File
	if err := nilFile.Validate(); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("nil file: Validate = %v, want EINVALID", err)
	}
}

func TestAPIKeyValidate(t *testing.T) {
	good := func() *filehub.APIKey {
		return &filehub.APIKey{ID: "k_1", Name: "ci", Scopes: []filehub.Scope{filehub.ScopeRead},
			CreatedAt: time.Unix(1, 0), Hash: []byte{1}}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid key: %v", err)
	}
	for name, spoil := range map[string]func(k *filehub.APIKey){
		"no ID":          func(k *filehub.APIKey) { k.ID = "" },
		"no name":        func(k *filehub.APIKey) { k.Name = "" },
		"no scopes":      func(k *filehub.APIKey) { k.Scopes = nil },
		"unknown scope":  func(k *filehub.APIKey) { k.Scopes = []filehub.Scope{"root"} },
		"not canonical":  func(k *filehub.APIKey) { k.Scopes = []filehub.Scope{"Read"} },
		"comma in scope": func(k *filehub.APIKey) { k.Scopes = []filehub.Scope{"read,admin"} },
		"no time":        func(k *filehub.APIKey) { k.CreatedAt = time.Time{} },
		"no hash":        func(k *filehub.APIKey) { k.Hash = nil },
	} {
		k := good()
		spoil(k)
		if err := k.Validate(); filehub.ErrorCode(err) != filehub.EINVALID {
			t.Errorf("%s: Validate = %v, want EINVALID", name, err)
		}
	}
}

func TestCleanupRunValidate(t *testing.T) {
	run := &filehub.CleanupRun{Trigger: "api", Status: filehub.RunRunning, StartedAt: time.Unix(1, 0)}
	if err := run.Validate(); err != nil {
		t.Fatalf("valid run: %v", err)
	}
	for _, k := range filehub.CleanupKinds {
		run.Counts = map[string]filehub.CleanupCounts{k: {Found: 1}}
		err := run.Validate()
		if filehub.CleanupRunCounts(k) != (err == nil) {
			t.Errorf("run counting %s: Validate = %v, CleanupRunCounts = %v", k, err, filehub.CleanupRunCounts(k))
		}
	}
	run.Counts = map[string]filehub.CleanupCounts{"everything": {}}
	if err := run.Validate(); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("unknown kind: Validate = %v, want EINVALID", err)
	}
	var nilRun *filehub.CleanupRun
	if err := nilRun.Validate(); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("nil run: Validate = %v, want EINVALID", err)
	}
	if err := (&filehub.AuditEntry{Action: filehub.AuditBlobSwept}).Validate(); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("audit entry without a target kind: Validate = %v, want EINVALID", err)
	}
	if err := (filehub.ProviderKey{SHA256: "x", Provider: "p", Purpose: "q"}).Validate(); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("provider key with a bad sum: Validate = %v, want EINVALID", err)
	}
}

// TestCleanupKinds checks the one list of kinds: every kind once, the
// provider kinds included.
func TestCleanupKinds(t *testing.T) {
	want := []string{"trash", "orphan_object", "unreferenced_blob", "missing_object", "stale_temp", "expired_upload", "ws_session", "provider_copy", "provider_orphan"}
	if strings.Join(filehub.CleanupKinds, ",") != strings.Join(want, ",") {
		t.Errorf("CleanupKinds = %v, want %v", filehub.CleanupKinds, want)
	}
}
