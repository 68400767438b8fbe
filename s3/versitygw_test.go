package s3_test

import (
	"bytes"
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/versitygw"
	"github.com/filehub/filehub/s3"
	"github.com/filehub/filehub/storetest"
)

// The tests in this file run against a real S3 server, the Versity S3
// Gateway on a posix directory (see internal/versitygw), where gofakes3
// could hide a difference from S3: part size minimums, UploadPartCopy,
// ListMultipartUploads, aborts and ranges are the server's own. Each test
// starts a gateway (well under a second once built); each store gets a
// bucket of its own.

// mustOpenGW opens a store on a new bucket of g.
func mustOpenGW(t testing.TB, g *versitygw.Server, extra string, cfg s3.Config) *s3.Store {
	t.Helper()
	cfg.AccessKeyID, cfg.SecretAccessKey = versitygw.AccessKey, versitygw.SecretKey
	s, err := s3.Open(t.Context(), g.URL(g.CreateBucket(t), extra), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformanceVersityGW runs the blob-store conformance suite against
// the real server, with and without a key prefix.
func TestConformanceVersityGW(t *testing.T) {
	g := versitygw.Start(t)
	for _, tc := range []struct{ name, extra string }{
		{"NoPrefix", ""},
		{"Prefix", "&prefix=some/prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.RunBlobStore(t, func(t *testing.T) filehub.BlobStore {
				s := mustOpenGW(t, g, tc.extra, s3.Config{})
				t.Cleanup(func() { assertTempEmpty(t, s) })
				return s
			})
		})
	}
}

// TestStagingVersityGW stages blobs around the part size, where the store
// switches from one PutObject to a multipart upload, on a server that
// enforces S3's 5 MiB minimum for every part but the last.
func TestStagingVersityGW(t *testing.T) {
	g := versitygw.Start(t)
	s := mustOpenGW(t, g, "", s3.Config{PartSize: s3.MinPartSize})
	for _, size := range []int{0, s3.MinPartSize - 1, s3.MinPartSize, s3.MinPartSize + 1, 5 * s3.MinPartSize / 2} {
		data := blobBytes(byte(size), size)
		sum := stageCommit(t, s, data)
		if got := readAll(t, s, sum); !bytes.Equal(got, data) {
			t.Fatalf("size %d: read back different content", size)
		}
		info, err := s.Stat(t.Context(), sum)
		if err != nil || info.Size != int64(size) {
			t.Fatalf("size %d: Stat = %+v, %v", size, info, err)
		}
	}
	assertTempEmpty(t, s)
}

// TestCommitMultipartCopyVersityGW lowers the 5 GiB CopyObject limit so
// that Commit copies the staged object with the server's own
// UploadPartCopy (which gofakes3 lacks), in parts of the 5 MiB minimum.
func TestCommitMultipartCopyVersityGW(t *testing.T) {
	g := versitygw.Start(t)
	var copies atomic.Int32
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	cfg := s3.Config{PartSize: s3.MinPartSize, HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPut && r.URL.Query().Has("partNumber") && r.Header.Get("X-Amz-Copy-Source") != "" {
			copies.Add(1)
		}
		return tr.RoundTrip(r)
	})}}
	s := mustOpenGW(t, g, "", cfg)
	s3.SetCopyLimits(s, 2*s3.MinPartSize, s3.MinPartSize)
	data := blobBytes(30, 2*s3.MinPartSize+12345) // three copied parts
	sum := stageCommit(t, s, data)
	if n := copies.Load(); n != 3 {
		t.Errorf("%d UploadPartCopy requests, want 3", n)
	}
	if got := readAll(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("copied object differs")
	}
	assertTempEmpty(t, s)
}

// TestTempVersityGW checks what the cleanup relies on against the real
// server: an unfinished multipart upload and a synced temp object are
// listed by WalkTemp (through ListMultipartUploads and ListObjectsV2),
// RemoveTemp removes both, and Close aborts a multipart upload.
func TestTempVersityGW(t *testing.T) {
	g := versitygw.Start(t)
	s := mustOpenGW(t, g, "&prefix=p", s3.Config{PartSize: s3.MinPartSize})
	ctx := t.Context()

	aborted, err := s.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writeOdd(t, aborted, blobBytes(19, 11<<20))
	if n := countTemp(t, s); n != 1 {
		t.Fatalf("WalkTemp saw %d uploads, want the one in progress", n)
	}
	if err := aborted.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertTempEmpty(t, s)

	big, err := s.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close(context.Background())
	writeOdd(t, big, blobBytes(20, 11<<20))
	small, err := s.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close(context.Background())
	writeOdd(t, small, blobBytes(21, 1000))
	if err := small.Sync(); err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := s.WalkTemp(ctx, func(name string, mod time.Time, size int64) error {
		if mod.IsZero() || (size != 1000 && size%s3.MinPartSize != 0) {
			t.Errorf("temp %s: time %v, size %d", name, mod, size)
		}
		names = append(names, name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 {
		t.Fatalf("WalkTemp = %q, want two uploads", names)
	}
	for _, name := range names {
		if err := s.RemoveTemp(ctx, name); err != nil {
			t.Fatalf("RemoveTemp(%s): %v", name, err)
		}
	}
	assertTempEmpty(t, s)
	if err := big.Commit(ctx, sumOf(blobBytes(20, 11<<20))); err == nil {
		t.Error("Commit of a removed multipart upload succeeded")
	}
}

func countTemp(t *testing.T, s *s3.Store) int {
	t.Helper()
	n := 0
	if err := s.WalkTemp(t.Context(), func(string, time.Time, int64) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOpenRangeVersityGW reads ranges of a committed blob by seeking, as
// HTTP range requests do, from the real server.
func TestOpenRangeVersityGW(t *testing.T) {
	g := versitygw.Start(t)
	s := mustOpenGW(t, g, "", s3.Config{})
	data := blobBytes(40, 300_000)
	sum := stageCommit(t, s, data)
	r, err := s.Open(t.Context(), sum)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, off := range []int64{0, 1, 299_999, 150_000, 300_000} {
		if _, err := r.Seek(off, 0); err != nil {
			t.Fatalf("Seek(%d): %v", off, err)
		}
		buf := make([]byte, 1000)
		n, _ := r.Read(buf)
		want := data[off:min(off+int64(n), int64(len(data)))]
		if !bytes.Equal(buf[:n], want) || (n == 0 && off < int64(len(data))) {
			t.Fatalf("at %d read %d bytes, not the blob's", off, n)
		}
	}
}

// TestOpenMissingBucketVersityGW: a bucket the server does not have is an
// EUNAVAILABLE error naming it, as with gofakes3.
func TestOpenMissingBucketVersityGW(t *testing.T) {
	g := versitygw.Start(t)
	cfg := s3.Config{AccessKeyID: versitygw.AccessKey, SecretAccessKey: versitygw.SecretKey, MaxAttempts: 1}
	_, err := s3.Open(t.Context(), g.URL("no-such-bucket", ""), cfg)
	if filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
		t.Fatalf("Open of a missing bucket = %v, want EUNAVAILABLE", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
