package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/filehub/filehub"
)

// RunResumableStager runs the filehub.ResumableStager conformance suite
// against the blob stores returned by newStore (fresh per subtest). It fails
// at once if the store does not implement ResumableStager.
func RunResumableStager(t *testing.T, newStore func(t *testing.T) filehub.BlobStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, b filehub.BlobStore, r filehub.ResumableStager)
	}{
		{"Chunks", testResumableChunks},
		{"RewriteDiscardsTail", testResumableRewrite},
		{"ReadErrorKeepsPrefix", testResumableReadError},
		{"Missing", testResumableMissing},
		{"InvalidID", testResumableInvalidID},
		{"StageCommit", testResumableStageCommit},
		{"Remove", testResumableRemove},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newStore(t)
			r, ok := b.(filehub.ResumableStager)
			if !ok {
				t.Fatalf("%T does not implement filehub.ResumableStager", b)
			}
			tc.fn(t, b, r)
		})
	}
}

func mustWriteResumable(t *testing.T, r filehub.ResumableStager, id string, off int64, data string) {
	t.Helper()
	n, err := r.WriteResumable(t.Context(), id, off, strings.NewReader(data))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("WriteResumable(%s, %d, %d bytes) = %d, %v", id, off, len(data), n, err)
	}
}

func readResumable(t *testing.T, r filehub.ResumableStager, id string, off, n int64) string {
	t.Helper()
	rc, err := r.ReadResumable(t.Context(), id, off)
	if err != nil {
		t.Fatalf("ReadResumable(%s, %d): %v", id, off, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, n))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testResumableChunks(t *testing.T, _ filehub.BlobStore, r filehub.ResumableStager) {
	id := filehub.NewID("u_")
	mustWriteResumable(t, r, id, 0, "hello, ")
	mustWriteResumable(t, r, id, 7, "resumable ")
	mustWriteResumable(t, r, id, 17, "world")
	if got := readResumable(t, r, id, 0, 100); got != "hello, resumable world" {
		t.Fatalf("content = %q", got)
	}
	if got := readResumable(t, r, id, 7, 9); got != "resumable" {
		t.Fatalf("content from 7 = %q", got)
	}
	t.Cleanup(func() { _ = r.RemoveResumable(t.Context(), id) })
}

func testResumableRewrite(t *testing.T, _ filehub.BlobStore, r filehub.ResumableStager) {
	id := filehub.NewID("u_")
	t.Cleanup(func() { _ = r.RemoveResumable(t.Context(), id) })
	mustWriteResumable(t, r, id, 0, "abcdef")
	// A chunk written again from offset 3 replaces everything after it.
	mustWriteResumable(t, r, id, 3, "XY")
	if got := readResumable(t, r, id, 0, 100); got != "abcXY" {
		t.Fatalf("content after a rewrite at 3 = %q, want abcXY", got)
	}
	mustWriteResumable(t, r, id, 5, "")
	if got := readResumable(t, r, id, 0, 100); got != "abcXY" {
		t.Fatalf("an empty write changed the content: %q", got)
	}
	mustWriteResumable(t, r, id, 0, "new")
	if got := readResumable(t, r, id, 0, 100); got != "new" {
		t.Fatalf("content after a rewrite at 0 = %q", got)
	}
}

// failingReader yields data, then fails.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func testResumableReadError(t *testing.T, _ filehub.BlobStore, r filehub.ResumableStager) {
	id := filehub.NewID("u_")
	t.Cleanup(func() { _ = r.RemoveResumable(t.Context(), id) })
	mustWriteResumable(t, r, id, 0, "0123")
	cut := errors.New("client went away")
	n, err := r.WriteResumable(t.Context(), id, 4, &failingReader{data: []byte("4567"), err: cut})
	if !errors.Is(err, cut) || n != 4 {
		t.Fatalf("WriteResumable of a body cut after 4 bytes = %d, %v; want 4 and the read error", n, err)
	}
	if got := readResumable(t, r, id, 0, 100); got != "01234567" {
		t.Fatalf("content = %q, want the bytes read before the error kept", got)
	}
}

func testResumableMissing(t *testing.T, _ filehub.BlobStore, r filehub.ResumableStager) {
	ctx := t.Context()
	id := filehub.NewID("u_")
	if _, err := r.WriteResumable(ctx, id, 5, strings.NewReader("x")); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("WriteResumable at 5 of a new upload = %v, want ENOTFOUND", err)
	}
	if _, err := r.ReadResumable(ctx, id, 0); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("ReadResumable of a missing upload = %v, want ENOTFOUND", err)
	}
	if _, err := r.StageResumable(ctx, id, 0); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("StageResumable of a missing upload = %v, want ENOTFOUND", err)
	}
	mustWriteResumable(t, r, id, 0, "abc")
	t.Cleanup(func() { _ = r.RemoveResumable(ctx, id) })
	if _, err := r.WriteResumable(ctx, id, 4, strings.NewReader("x")); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("WriteResumable past the stored end = %v, want ENOTFOUND", err)
	}
	if _, err := r.StageResumable(ctx, id, 4); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("StageResumable of more than is stored = %v, want ENOTFOUND", err)
	}
}

func testResumableInvalidID(t *testing.T, _ filehub.BlobStore, r filehub.ResumableStager) {
	ctx := t.Context()
	for _, id := range []string{"", "../../etc/passwd", "u_../x", "f_abc", "u_ABC", "u_a/b"} {
		if _, err := r.WriteResumable(ctx, id, 0, strings.NewReader("x")); filehub.ErrorCode(err) != filehub.EINVALID {
			t.Errorf("WriteResumable(%q) = %v, want EINVALID", id, err)
		}
		if _, err := r.ReadResumable(ctx, id, 0); filehub.ErrorCode(err) != filehub.EINVALID {
			t.Errorf("ReadResumable(%q) = %v, want EINVALID", id, err)
		}
		if err := r.RemoveResumable(ctx, id); filehub.ErrorCode(err) != filehub.EINVALID {
			t.Errorf("RemoveResumable(%q) = %v, want EINVALID", id, err)
		}
	}
}

func testResumableStageCommit(t *testing.T, b filehub.BlobStore, r filehub.ResumableStager) {
	ctx := t.Context()
	id := filehub.NewID("u_")
	data := bytes.Repeat([]byte("resumable content "), 1000)
	mustWriteResumable(t, r, id, 0, string(data[:5000]))
	mustWriteResumable(t, r, id, 5000, string(data[5000:]))
	// Unacknowledged bytes past the size are not part of the blob.
	mustWriteResumable(t, r, id, int64(len(data)), "garbage")
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	st, err := r.StageResumable(ctx, id, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, hexSum); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rc, err := b.Open(ctx, hexSum)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("committed blob: %d bytes, %v; want the %d staged bytes", len(got), err, len(data))
	}
	if _, err := r.ReadResumable(ctx, id, 0); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("ReadResumable after the staged blob was closed = %v, want ENOTFOUND", err)
	}
}

func testResumableRemove(t *testing.T, _ filehub.BlobStore, r filehub.ResumableStager) {
	ctx := t.Context()
	id := filehub.NewID("u_")
	mustWriteResumable(t, r, id, 0, "abc")
	if err := r.RemoveResumable(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadResumable(ctx, id, 0); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("ReadResumable after RemoveResumable = %v, want ENOTFOUND", err)
	}
	if err := r.RemoveResumable(ctx, id); err != nil {
		t.Errorf("RemoveResumable of a removed upload = %v, want nil", err)
	}
}
