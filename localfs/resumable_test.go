package localfs_test

import (
	"strings"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/storetest"
)

func TestResumableConformance(t *testing.T) {
	storetest.RunResumableStager(t, func(t *testing.T) filehub.BlobStore {
		return mustOpen(t, t.TempDir(), localfs.Config{})
	})
}

// TestResumableSurvivesStaleTempRemoval: a server restart empties tmp/, but
// resumable uploads live in uploads/ and must survive it until they expire.
func TestResumableSurvivesStaleTempRemoval(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, localfs.Config{})
	id := filehub.NewID("u_")
	if _, err := s.WriteResumable(t.Context(), id, 0, strings.NewReader("kept across restarts")); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, dir, localfs.Config{RemoveStaleTemp: true})
	rc, err := s2.ReadResumable(t.Context(), id, 0)
	if err != nil {
		t.Fatalf("upload gone after a restart that removed stale temp files: %v", err)
	}
	rc.Close()
}
