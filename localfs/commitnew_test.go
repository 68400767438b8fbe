package localfs_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/filehub/filehub/localfs"
)

// newCommitter is the optional method of a staged blob the ingest pipeline
// uses (files).
type newCommitter interface {
	CommitNew(ctx context.Context, sum string) (existed bool, err error)
}

// CommitNew commits new content like Commit; for content whose object
// exists it reports so and leaves it alone; for its own commit it reports
// new again; and after the object is removed it re-creates it.
func TestCommitNew(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, localfs.Config{})
	data := []byte("content committed by CommitNew")
	sum := hexSum(data)
	obj := filepath.Join(dir, "blobs", sum[:2], sum)

	first, ok := mustStage(t, s, data).(newCommitter)
	if !ok {
		t.Fatal("a localfs staged blob has no CommitNew")
	}
	if existed, err := first.CommitNew(t.Context(), sum); err != nil || existed {
		t.Fatalf("CommitNew of new content: existed %v, %v", existed, err)
	}
	if got := readAll(t, s, sum); !bytes.Equal(got, data) {
		t.Fatalf("object = %q", got)
	}
	if existed, err := first.CommitNew(t.Context(), sum); err != nil || existed {
		t.Fatalf("CommitNew again by its committer: existed %v, %v", existed, err)
	}

	second := mustStage(t, s, data)
	if existed, err := second.(newCommitter).CommitNew(t.Context(), sum); err != nil || !existed {
		t.Fatalf("CommitNew of known content: existed %v, %v", existed, err)
	}
	if err := second.Commit(t.Context(), sum); err != nil {
		t.Fatalf("Commit after CommitNew found the object: %v", err)
	}

	if err := os.Remove(obj); err != nil {
		t.Fatal(err)
	}
	if existed, err := second.(newCommitter).CommitNew(t.Context(), sum); err != nil || existed {
		t.Fatalf("CommitNew after the object was removed: existed %v, %v", existed, err)
	}
	if got := readAll(t, s, sum); !bytes.Equal(got, data) {
		t.Fatalf("re-created object = %q", got)
	}
}
