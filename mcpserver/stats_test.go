package mcpserver_test

import (
	"reflect"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/mcpserver"
)

// scanOnly hides the store's StatsReader capability, so Local pages
// through the file records instead.
type scanOnly struct{ filehub.MetaStore }

// TestStorageStatsQueryAgreesWithScan: storage_stats from the store's one
// query and from a scan of every file record give the same figures,
// the trash included.
func TestStorageStatsQueryAgreesWithScan(t *testing.T) {
	e := newEnv(t, nil)
	s := e.connect(keyRW)
	var gone uploadOut
	s.mustCall(t, "upload_file", map[string]any{"name": "a.txt", "text": "same content"}, nil)
	s.mustCall(t, "upload_file", map[string]any{"name": "b.txt", "text": "same content"}, nil)
	s.mustCall(t, "upload_file", map[string]any{"name": "c.txt", "text": "in the trash, and its copy live"}, nil)
	s.mustCall(t, "upload_file", map[string]any{"name": "d.txt", "text": "in the trash, and its copy live"}, &gone)
	s.mustCall(t, "delete_file", map[string]any{"id": gone.File.ID}, nil)

	queried, err := mcpserver.NewLocal(e.svc, e.meta, nil, nil).StorageStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	scanned, err := mcpserver.NewLocal(e.svc, scanOnly{e.meta}, nil, nil).StorageStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(queried, scanned) {
		t.Errorf("the store's query and the scan disagree:\nquery %+v\n scan %+v", queried, scanned)
	}
	if queried.Files != 3 || queried.TrashFiles == nil || *queried.TrashFiles != 1 || queried.DedupSavingsBytes != int64(len("same content")) {
		t.Errorf("storage_stats = %+v", queried)
	}
}
