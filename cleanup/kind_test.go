package cleanup_test

import (
	"slices"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/cleanup"
)

// TestEveryKindHasAUnit checks that the one list of kinds
// (filehub.CleanupKinds) and the kinds implemented here agree: a kind
// listed without a unit would fail every run, a unit not listed would
// never run.
func TestEveryKindHasAUnit(t *testing.T) {
	units := cleanup.KindUnitNames()
	for _, k := range filehub.CleanupKinds {
		if !slices.Contains(units, cleanup.Kind(k)) {
			t.Errorf("kind %s is listed in filehub.CleanupKinds but has no unit", k)
		}
	}
	for _, u := range units {
		if !slices.Contains(filehub.CleanupKinds, string(u)) {
			t.Errorf("kind %s has a unit but is not listed in filehub.CleanupKinds", u)
		}
	}
	if !slices.Equal(cleanup.Kinds, func() []cleanup.Kind {
		var ks []cleanup.Kind
		for _, k := range filehub.CleanupKinds {
			ks = append(ks, cleanup.Kind(k))
		}
		return ks
	}()) {
		t.Errorf("cleanup.Kinds = %v, want filehub.CleanupKinds %v", cleanup.Kinds, filehub.CleanupKinds)
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range filehub.CleanupKinds {
		if got, err := cleanup.ParseKind(k); err != nil || string(got) != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	_, err := cleanup.ParseKind("everything")
	if filehub.ErrorCode(err) != filehub.EINVALID {
		t.Fatalf("ParseKind(unknown) = %v, want EINVALID", err)
	}
	want := `unknown cleanup kind "everything" (want trash, orphan_object, unreferenced_blob, missing_object, stale_temp, expired_upload, ws_session, provider_copy or provider_orphan)`
	if msg := filehub.ErrorMessage(err); msg != want {
		t.Errorf("ParseKind(unknown) message = %q, want %q", msg, want)
	}
}
