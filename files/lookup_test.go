package files_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/sqlite"
)

// findBlobCounter counts FindBlob calls.
type findBlobCounter struct {
	filehub.MetaStore
	n atomic.Int64
}

func (m *findBlobCounter) FindBlob(ctx context.Context, sum string) (*filehub.Blob, error) {
	m.n.Add(1)
	return m.MetaStore.FindBlob(ctx, sum)
}

// opaqueBlobs hides the optional methods of the blob store and of its
// staged blobs.
type opaqueBlobs struct{ filehub.BlobStore }

func (o opaqueBlobs) Stage(ctx context.Context) (filehub.StagedBlob, error) {
	st, err := o.BlobStore.Stage(ctx)
	if err != nil {
		return nil, err
	}
	return opaqueStaged{st}, nil
}

type opaqueStaged struct{ filehub.StagedBlob }

// On the local disk, new content is committed without a metadata lookup
// (the link tells the object was absent); known content is looked up, so
// that it is not committed again. A blob store without CommitNew looks every
// upload up.
func TestUploadLookups(t *testing.T) {
	for _, tc := range []struct {
		name             string
		wrap             func(filehub.BlobStore) filehub.BlobStore
		wantNew, wantDup int64
	}{
		{"localfs", func(b filehub.BlobStore) filehub.BlobStore { return b }, 0, 1},
		{"other store", func(b filehub.BlobStore) filehub.BlobStore { return opaqueBlobs{b} }, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			db, err := sqlite.Open(ctx, filepath.Join(dir, "filehub.db"), sqlite.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			blobs, err := localfs.Open(dir, localfs.Config{})
			if err != nil {
				t.Fatal(err)
			}
			meta := &findBlobCounter{MetaStore: db}
			svc, err := files.New(meta, tc.wrap(blobs), files.Config{MinFreeSpace: -1})
			if err != nil {
				t.Fatal(err)
			}
			content := []byte("some content for " + tc.name)
			up, err := svc.Upload(ctx, bytes.NewReader(content), "a.txt", "k_owner")
			if err != nil || up.Deduplicated {
				t.Fatalf("first upload: %+v, %v", up, err)
			}
			if got := meta.n.Load(); got != tc.wantNew {
				t.Errorf("new content: %d FindBlob calls, want %d", got, tc.wantNew)
			}
			meta.n.Store(0)
			up, err = svc.Upload(ctx, bytes.NewReader(content), "b.txt", "k_owner")
			if err != nil || !up.Deduplicated {
				t.Fatalf("second upload: %+v, %v", up, err)
			}
			if got := meta.n.Load(); got != tc.wantDup {
				t.Errorf("known content: %d FindBlob calls, want %d", got, tc.wantDup)
			}
		})
	}
}
