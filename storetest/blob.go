package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/filehub/filehub"
)

// RunBlobStore runs the BlobStore conformance suite against the stores
// returned by newStore, which is called once per subtest and must return a
// fresh, empty store (registering its own cleanup with t.Cleanup).
//
// The suite checks the filehub.BlobStore and filehub.StagedBlob contracts as
// seen from outside: what Commit makes visible and when, that existing
// objects are kept, that Commit may be repeated, error codes for invalid
// sums and missing objects, concurrent commits of identical content and
// large content. Backend-specific properties (on-disk layout, temp file
// clean-up) belong in the backend's own tests.
func RunBlobStore(t *testing.T, newStore func(t *testing.T) filehub.BlobStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s filehub.BlobStore)
	}{
		{"RoundTrip", testBlobRoundTrip},
		{"Empty", testBlobEmpty},
		{"SeekRead", testBlobSeekRead},
		{"InvisibleBeforeCommit", testBlobInvisibleBeforeCommit},
		{"CloseWithoutCommit", testBlobCloseWithoutCommit},
		{"CloseTwice", testBlobCloseTwice},
		{"CommitTwice", testBlobCommitTwice},
		{"CommitKeepsExisting", testBlobCommitKeepsExisting},
		{"CommitDuplicate", testBlobCommitDuplicate},
		{"CommitRecreatesDeleted", testBlobCommitRecreatesDeleted},
		{"CommitAfterClose", testBlobCommitAfterClose},
		{"InvalidSum", testBlobInvalidSum},
		{"Missing", testBlobMissing},
		{"Delete", testBlobDelete},
		{"DeleteMissing", testBlobDeleteMissing},
		{"ConcurrentIdentical", testBlobConcurrentIdentical},
		{"Large", testBlobLarge},
		{"Ping", testBlobPing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

func testBlobRoundTrip(t *testing.T, s filehub.BlobStore) {
	ctx := t.Context()
	data := blobBytes(1, 100_000)
	sum := mustCommitBlob(t, s, data)
	if got := mustReadBlob(t, s, sum); !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, want the %d bytes written", len(got), len(data))
	}
	info, err := s.Stat(ctx, sum)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.SHA256 != sum || info.Size != int64(len(data)) || info.ModTime.IsZero() {
		t.Fatalf("Stat = %+v, want sum %s, size %d, a modification time", info, sum, len(data))
	}
}

func testBlobEmpty(t *testing.T, s filehub.BlobStore) {
	sum := mustCommitBlob(t, s, nil)
	if got := mustReadBlob(t, s, sum); len(got) != 0 {
		t.Fatalf("read %d bytes, want 0", len(got))
	}
	info, err := s.Stat(t.Context(), sum)
	if err != nil || info.Size != 0 {
		t.Fatalf("Stat = %+v, %v; want size 0", info, err)
	}
}

func testBlobSeekRead(t *testing.T, s filehub.BlobStore) {
	data := blobBytes(2, 10_000)
	sum := mustCommitBlob(t, s, data)
	r, err := s.Open(t.Context(), sum)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	size := int64(len(data))
	for _, tc := range []struct {
		name     string
		offset   int64
		whence   int
		n        int
		wantPos  int64
		wantRead int // bytes expected (less than n at the end)
	}{
		{"start", 0, io.SeekStart, 100, 0, 100},
		{"middle", 4321, io.SeekStart, 1000, 4321, 1000},
		{"from end", -10, io.SeekEnd, 10, size - 10, 10},
		{"past the end", -5, io.SeekEnd, 100, size - 5, 5},
		{"relative", -1000, io.SeekCurrent, 7, size - 1000, 7}, // after "past the end" the position is size
		{"at end", 0, io.SeekEnd, 10, size, 0},
	} {
		pos, err := r.Seek(tc.offset, tc.whence)
		if err != nil || pos != tc.wantPos {
			t.Fatalf("%s: Seek(%d, %d) = %d, %v; want %d", tc.name, tc.offset, tc.whence, pos, err, tc.wantPos)
		}
		buf := make([]byte, tc.n)
		n, err := io.ReadFull(r, buf)
		if n != tc.wantRead || (n < tc.n && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF)) {
			t.Fatalf("%s: read %d bytes (%v), want %d", tc.name, n, err, tc.wantRead)
		}
		if !bytes.Equal(buf[:n], data[pos:pos+int64(n)]) {
			t.Fatalf("%s: read wrong bytes at %d", tc.name, pos)
		}
	}
}

func testBlobInvisibleBeforeCommit(t *testing.T, s filehub.BlobStore) {
	ctx := t.Context()
	data := blobBytes(3, 5000)
	sum := blobSum(data)
	b := mustStageBlob(t, s, data)
	if err := b.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	wantBlobNotFound(t, s, sum)
	if err := b.Commit(ctx, sum); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got := mustReadBlob(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("committed content differs")
	}
}

func testBlobCloseWithoutCommit(t *testing.T, s filehub.BlobStore) {
	data := blobBytes(4, 5000)
	b := mustStageBlob(t, s, data)
	if err := b.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantBlobNotFound(t, s, blobSum(data))
}

func testBlobCloseTwice(t *testing.T, s filehub.BlobStore) {
	data := blobBytes(5, 100)
	b := mustStageBlob(t, s, data)
	if err := b.Commit(t.Context(), blobSum(data)); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	for i := range 2 {
		if err := b.Close(t.Context()); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	// Close after Commit keeps the object.
	if got := mustReadBlob(t, s, blobSum(data)); !bytes.Equal(got, data) {
		t.Fatal("object differs after Close")
	}
}

func testBlobCommitTwice(t *testing.T, s filehub.BlobStore) {
	data := blobBytes(6, 3000)
	sum := blobSum(data)
	b := mustStageBlob(t, s, data)
	for i := range 2 {
		if err := b.Commit(t.Context(), sum); err != nil {
			t.Fatalf("Commit #%d: %v", i+1, err)
		}
	}
	if got := mustReadBlob(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("object differs after two commits")
	}
}

// testBlobCommitKeepsExisting commits different bytes under an existing sum:
// a store never verifies sums (the caller computes them), so this is the way
// to observe that the existing object is kept rather than replaced.
func testBlobCommitKeepsExisting(t *testing.T, s filehub.BlobStore) {
	data := blobBytes(7, 2000)
	sum := mustCommitBlob(t, s, data)
	other := mustStageBlob(t, s, blobBytes(8, 3000))
	if err := other.Commit(t.Context(), sum); err != nil {
		t.Fatalf("Commit over an existing object: %v", err)
	}
	if err := other.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := mustReadBlob(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("existing object was replaced")
	}
}

func testBlobCommitDuplicate(t *testing.T, s filehub.BlobStore) {
	data := blobBytes(9, 2000)
	sum := mustCommitBlob(t, s, data)
	if got := mustCommitBlob(t, s, data); got != sum {
		t.Fatalf("sum %s, want %s", got, sum)
	}
	if got := mustReadBlob(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("object differs after a duplicate commit")
	}
}

func testBlobCommitRecreatesDeleted(t *testing.T, s filehub.BlobStore) {
	ctx := t.Context()
	data := blobBytes(10, 4000)
	sum := blobSum(data)
	b := mustStageBlob(t, s, data)
	if err := b.Commit(ctx, sum); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := s.Delete(ctx, sum); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantBlobNotFound(t, s, sum)
	if err := b.Commit(ctx, sum); err != nil {
		t.Fatalf("second Commit: %v", err)
	}
	if got := mustReadBlob(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("re-created object differs")
	}
}

func testBlobCommitAfterClose(t *testing.T, s filehub.BlobStore) {
	data := blobBytes(11, 100)
	b := mustStageBlob(t, s, data)
	if err := b.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Commit(t.Context(), blobSum(data)); err == nil {
		t.Fatal("Commit after Close succeeded")
	}
	wantBlobNotFound(t, s, blobSum(data))
}

func testBlobInvalidSum(t *testing.T, s filehub.BlobStore) {
	ctx := t.Context()
	valid := blobSum([]byte("x"))
	b := mustStageBlob(t, s, []byte("x"))
	for _, sum := range []string{
		"",
		strings.ToUpper(valid),
		valid[:63],
		valid + "0",
		"../" + valid[3:],
		valid[:2] + "/" + valid[3:],
		"g" + valid[1:],
		valid[:63] + "\x00",
		" " + valid[1:],
	} {
		for name, call := range map[string]func() error{
			"Commit": func() error { return b.Commit(ctx, sum) },
			"Open": func() error {
				r, err := s.Open(ctx, sum)
				if err == nil {
					r.Close()
				}
				return err
			},
			"Stat":   func() error { _, err := s.Stat(ctx, sum); return err },
			"Delete": func() error { return s.Delete(ctx, sum) },
		} {
			if err := call(); filehub.ErrorCode(err) != filehub.EINVALID {
				t.Errorf("%s(%q) = %v, want code %s", name, sum, err, filehub.EINVALID)
			}
		}
	}
}

func testBlobMissing(t *testing.T, s filehub.BlobStore) {
	wantBlobNotFound(t, s, blobSum([]byte("never stored")))
}

func testBlobDelete(t *testing.T, s filehub.BlobStore) {
	data := blobBytes(12, 1000)
	sum := mustCommitBlob(t, s, data)
	if err := s.Delete(t.Context(), sum); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantBlobNotFound(t, s, sum)
}

func testBlobDeleteMissing(t *testing.T, s filehub.BlobStore) {
	if err := s.Delete(t.Context(), blobSum([]byte("never stored"))); err != nil {
		t.Fatalf("Delete of a missing object = %v, want nil", err)
	}
}

func testBlobConcurrentIdentical(t *testing.T, s filehub.BlobStore) {
	const writers = 16
	ctx := t.Context()
	data := blobBytes(13, 256<<10)
	sum := blobSum(data)
	start := make(chan struct{})
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			<-start
			errs <- stageCommitBlob(ctx, s, data, sum)
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent stage+commit: %v", err)
		}
	}
	if got := mustReadBlob(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("object differs after concurrent commits")
	}
	info, err := s.Stat(ctx, sum)
	if err != nil || info.Size != int64(len(data)) {
		t.Fatalf("Stat = %+v, %v; want size %d", info, err, len(data))
	}
}

func testBlobLarge(t *testing.T, s filehub.BlobStore) {
	ctx := t.Context()
	data := blobBytes(14, 8<<20)
	sum := blobSum(data)
	b, err := s.Stage(ctx)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	defer b.Close(ctx)
	// Odd-sized chunks, so no write is aligned to a page or a buffer.
	for rest, chunk := data, 1; len(rest) > 0; chunk = chunk*7%65521 + 1 {
		n := min(chunk, len(rest))
		if w, err := b.Write(rest[:n]); err != nil || w != n {
			t.Fatalf("Write(%d bytes) = %d, %v", n, w, err)
		}
		rest = rest[n:]
	}
	if err := b.Commit(ctx, sum); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	r, err := s.Open(ctx, sum)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("read %d bytes, %v; want %d", n, err, len(data))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		t.Fatalf("read content hashes to %s, want %s", got, sum)
	}
}

func testBlobPing(t *testing.T, s filehub.BlobStore) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// mustStageBlob stages data and registers Close with t.Cleanup.
func mustStageBlob(t *testing.T, s filehub.BlobStore, data []byte) filehub.StagedBlob {
	t.Helper()
	b, err := s.Stage(t.Context())
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	if n, err := b.Write(data); err != nil || n != len(data) {
		t.Fatalf("Write(%d bytes) = %d, %v", len(data), n, err)
	}
	return b
}

// mustCommitBlob stores data under its sum, closes the staged blob and
// returns the sum.
func mustCommitBlob(t *testing.T, s filehub.BlobStore, data []byte) string {
	t.Helper()
	sum := blobSum(data)
	if err := stageCommitBlob(t.Context(), s, data, sum); err != nil {
		t.Fatal(err)
	}
	return sum
}

// stageCommitBlob is mustCommitBlob for goroutines other than the test's.
func stageCommitBlob(ctx context.Context, s filehub.BlobStore, data []byte, sum string) (err error) {
	b, err := s.Stage(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := b.Close(ctx); err == nil {
			err = cerr
		}
	}()
	if _, err := b.Write(data); err != nil {
		return err
	}
	return b.Commit(ctx, sum)
}

func mustReadBlob(t *testing.T, s filehub.BlobStore, sum string) []byte {
	t.Helper()
	r, err := s.Open(t.Context(), sum)
	if err != nil {
		t.Fatalf("Open(%s): %v", sum, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", sum, err)
	}
	return data
}

// wantBlobNotFound checks that Open and Stat of sum return ENOTFOUND.
func wantBlobNotFound(t *testing.T, s filehub.BlobStore, sum string) {
	t.Helper()
	r, err := s.Open(t.Context(), sum)
	if err == nil {
		r.Close()
	}
	if !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("Open(%s) = %v, want ENOTFOUND", sum, err)
	}
	if _, err := s.Stat(t.Context(), sum); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("Stat(%s) = %v, want ENOTFOUND", sum, err)
	}
}

func blobSum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// blobBytes returns n reproducible pseudo-random bytes; each seed gives
// different content, so subtests never share objects by accident.
func blobBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}
