package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/s3"
)

// countRequests returns how many of reqs have method and contain substr.
func countRequests(reqs []string, method, substr string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, method+" ") && strings.Contains(r, substr) {
			n++
		}
	}
	return n
}

func TestStageMultipart(t *testing.T) {
	f := newFakeS3(t)
	cfg := testConfig()
	cfg.PartSize = s3.MinPartSize // gofakes3 enforces no minimum, S3 does
	s := mustOpen(t, f, "", cfg)

	for _, tc := range []struct {
		name      string
		size      int
		wantParts int // 0: a single PutObject
	}{
		{"BelowOnePart", s3.MinPartSize - 1, 0},
		{"ExactlyOnePart", s3.MinPartSize, 0},
		{"OnePartAndAByte", s3.MinPartSize + 1, 2},
		{"TwoAndAHalfParts", 5 * s3.MinPartSize / 2, 3},
		{"ExactlyThreeParts", 3 * s3.MinPartSize, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := blobBytes(byte(tc.size), tc.size)
			f.takeRequests()
			sum := stageCommit(t, s, data)
			reqs := f.takeRequests()
			if got := countRequests(reqs, "PUT", "partNumber="); got != tc.wantParts {
				t.Errorf("%d UploadPart requests, want %d: %q", got, tc.wantParts, reqs)
			}
			if tc.wantParts == 0 && countRequests(reqs, "POST", "uploads") != 0 {
				t.Errorf("a multipart upload was started for one part: %q", reqs)
			}
			if got := readAll(t, s, sum); !bytes.Equal(got, data) {
				t.Fatal("read back different content")
			}
			info, err := s.Stat(t.Context(), sum)
			if err != nil || info.Size != int64(tc.size) {
				t.Fatalf("Stat = %+v, %v; want size %d", info, err, tc.size)
			}
		})
	}
	assertTempEmpty(t, s)
}

// TestStageMemoryBounded checks the memory claim of the package doc:
// staging 64 MiB allocates no more than staging 16 MiB, and less than four
// part buffers: the doublings of the first buffer (under two part sizes),
// the second buffer, and one part size of slack for the SDK and HTTP. The fake server discards
// part bodies, so that only the client side is measured.
func TestStageMemoryBounded(t *testing.T) {
	f := newFakeS3(t)
	f.setIntercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodPut && q.Has("partNumber"):
			io.Copy(io.Discard, r.Body)
			w.Header().Set("ETag", `"`+q.Get("partNumber")+`"`)
			return true
		case r.Method == http.MethodPost && q.Has("uploadId"):
			io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, `<CompleteMultipartUploadResult><ETag>"x"</ETag></CompleteMultipartUploadResult>`)
			return true
		}
		return false
	})
	cfg := testConfig()
	cfg.PartSize = s3.MinPartSize
	chunk := blobBytes(1, 64<<10)
	measure := func(size int) uint64 {
		s := mustOpen(t, f, "", cfg) // fresh: no pooled buffers
		ctx := context.Background()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b, err := s.Stage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for range size / len(chunk) {
			if _, err := b.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	measure(16 << 20) // warm up the SDK
	small := measure(16 << 20)
	large := measure(64 << 20)
	t.Logf("allocated %.1f MiB staging 16 MiB, %.1f MiB staging 64 MiB (part size %d MiB)",
		float64(small)/(1<<20), float64(large)/(1<<20), cfg.PartSize>>20)
	if limit := uint64(4 * cfg.PartSize); large > limit {
		t.Fatalf("staging 64 MiB allocated %d bytes, more than four part buffers (%d)", large, limit)
	}
	if large > small+(4<<20) {
		t.Fatalf("allocation grows with size: %d bytes for 16 MiB, %d for 64 MiB", small, large)
	}
}

// TestOpenRange checks that reads after a Seek fetch from the position on,
// with one ranged GET each, and never the whole object.
func TestOpenRange(t *testing.T) {
	f := newFakeS3(t)
	s := mustOpen(t, f, "", testConfig())
	data := blobBytes(2, 3<<20)
	sum := stageCommit(t, s, data)
	var ranges []string
	f.setIntercept(func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
		if r.Method == http.MethodGet {
			ranges = append(ranges, r.Header.Get("Range"))
		}
		return false
	})
	r, err := s.Open(t.Context(), sum)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 1000)
	for _, off := range []int64{2 << 20, 100, 100 + 1000} { // the last continues the second read
		if off != 1100 {
			if _, err := r.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if !bytes.Equal(buf, data[off:off+1000]) {
			t.Fatalf("wrong bytes at %d", off)
		}
	}
	if end, err := r.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
		t.Fatalf("Seek to end = %d, %v", end, err)
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at end = %d, %v; want EOF", n, err)
	}
	if want := []string{"bytes=2097152-", "bytes=100-"}; !slices.Equal(ranges, want) {
		t.Fatalf("GET ranges %q, want %q", ranges, want)
	}
}

func TestCloseAbortsMultipart(t *testing.T) {
	f := newFakeS3(t)
	cfg := testConfig()
	cfg.PartSize = s3.MinPartSize
	s := mustOpen(t, f, "", cfg)
	b, err := s.Stage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	writeOdd(t, b, blobBytes(3, 12<<20))
	var names []string
	if err := s.WalkTemp(t.Context(), func(name string, mod time.Time, size int64) error {
		if mod.IsZero() || size%s3.MinPartSize != 0 || size > 2*s3.MinPartSize {
			t.Errorf("temp %s: time %v, size %d; want a time and whole parts", name, mod, size)
		}
		names = append(names, name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 {
		t.Fatalf("WalkTemp saw %q, want the one upload in progress", names)
	}
	f.takeRequests()
	if err := b.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if reqs := f.takeRequests(); countRequests(reqs, "DELETE", "uploadId=") != 1 {
		t.Fatalf("Close sent %q, want an AbortMultipartUpload", reqs)
	}
	assertTempEmpty(t, s)
	if err := b.Commit(t.Context(), sumOf(nil)); err == nil {
		t.Fatal("Commit after Close succeeded")
	}
}

func TestWalk(t *testing.T) {
	f := newFakeS3(t)
	s := mustOpen(t, f, "&prefix=pre", testConfig())
	var want []filehub.BlobInfo
	for i := range 5 {
		data := blobBytes(byte(10+i), 100*(i+1))
		sum := stageCommit(t, s, data)
		want = append(want, filehub.BlobInfo{SHA256: sum, Size: int64(len(data))})
	}
	slices.SortFunc(want, func(a, b filehub.BlobInfo) int { return strings.Compare(a.SHA256, b.SHA256) })
	// Keys that do not belong to the layout, or to the store's prefix.
	junk := want[0].SHA256
	for _, key := range []string{
		"pre/blobs/zz/" + junk,
		"pre/blobs/" + junk[2:4] + "/" + junk,
		"pre/blobs/" + junk[:2] + "/" + strings.ToUpper(junk),
		"pre/blobs/stray",
		"blobs/" + junk[:2] + "/" + junk,
		"other/blobs/" + junk[:2] + "/" + junk,
	} {
		if _, err := f.backend.PutObject(testBucket, key, nil, strings.NewReader("x"), 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []filehub.BlobInfo
	err := s.Walk(t.Context(), func(info filehub.BlobInfo) error {
		if info.ModTime.IsZero() || time.Since(info.ModTime) > time.Hour {
			t.Errorf("%s: ModTime %v", info.SHA256, info.ModTime)
		}
		info.ModTime = time.Time{}
		got = append(got, info)
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Walk = %+v\nwant %+v", got, want)
	}

	stop := errors.New("stop")
	calls := 0
	if err := s.Walk(t.Context(), func(filehub.BlobInfo) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("Walk with a failing fn = %v after %d calls, want the error unchanged after 1", err, calls)
	}
}

func TestWalkTempRemoveTemp(t *testing.T) {
	f := newFakeS3(t)
	cfg := testConfig()
	cfg.PartSize = s3.MinPartSize
	s := mustOpen(t, f, "", cfg)
	ctx := t.Context()

	big := blobBytes(20, 11<<20) // a multipart upload in progress
	small := blobBytes(21, 1000) // a completed temp object
	bigStaged, err := s.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer bigStaged.Close(context.Background())
	writeOdd(t, bigStaged, big)
	smallStaged, err := s.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer smallStaged.Close(context.Background())
	writeOdd(t, smallStaged, small)
	if err := smallStaged.Sync(); err != nil {
		t.Fatal(err)
	}

	temps := map[string]int64{}
	if err := s.WalkTemp(ctx, func(name string, mod time.Time, size int64) error {
		temps[name] = size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(temps) != 2 {
		t.Fatalf("WalkTemp = %v, want two uploads", temps)
	}
	for name, size := range temps {
		if size != int64(len(small)) && size%s3.MinPartSize != 0 {
			t.Errorf("temp %s has size %d", name, size)
		}
		if err := s.RemoveTemp(t.Context(), name); err != nil {
			t.Fatalf("RemoveTemp(%s): %v", name, err)
		}
		if err := s.RemoveTemp(t.Context(), name); err != nil {
			t.Fatalf("second RemoveTemp(%s): %v", name, err)
		}
	}
	assertTempEmpty(t, s)
	// Neither can be committed any more.
	if err := smallStaged.Commit(ctx, sumOf(small)); err == nil {
		t.Error("Commit of a removed temp object succeeded")
	}
	if err := bigStaged.Commit(ctx, sumOf(big)); err == nil {
		t.Error("Commit of a removed multipart upload succeeded")
	}
	for _, name := range []string{"", ".", "..", "a/b", `a\b`, "a\x00"} {
		if err := s.RemoveTemp(t.Context(), name); filehub.ErrorCode(err) != filehub.EINVALID {
			t.Errorf("RemoveTemp(%q) = %v, want EINVALID", name, err)
		}
	}
	// Closing after the removal is fine.
	if err := bigStaged.Close(t.Context()); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := smallStaged.Close(t.Context()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestCommitMultipartCopy lowers the 5 GiB CopyObject limit to check the
// UploadPartCopy path; gofakes3 has no UploadPartCopy, so the fake server
// implements it here by a ranged GET of the source and an UploadPart.
func TestCommitMultipartCopy(t *testing.T) {
	f := newFakeS3(t)
	f.setIntercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		src := r.Header.Get("X-Amz-Copy-Source")
		if r.Method != http.MethodPut || !r.URL.Query().Has("partNumber") || src == "" {
			return false
		}
		get := httptest.NewRequestWithContext(r.Context(), http.MethodGet, "/"+strings.TrimPrefix(src, "/"), nil)
		get.Header.Set("Range", r.Header.Get("X-Amz-Copy-Source-Range"))
		got := httptest.NewRecorder()
		next.ServeHTTP(got, get)
		body := got.Body.Bytes()
		put := httptest.NewRequestWithContext(r.Context(), http.MethodPut, r.URL.String(), bytes.NewReader(body))
		put.Header.Set("Content-Length", fmt.Sprint(len(body)))
		put.ContentLength = int64(len(body))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, put)
		if rec.Code != http.StatusOK || got.Code != http.StatusPartialContent {
			http.Error(w, "copy failed", http.StatusInternalServerError)
			return true
		}
		fmt.Fprintf(w, `<CopyPartResult><ETag>%s</ETag></CopyPartResult>`, rec.Header().Get("ETag"))
		return true
	})
	s := mustOpen(t, f, "", testConfig())
	s3.SetCopyLimits(s, 1<<20, 300<<10)
	data := blobBytes(30, 1<<20+12345)
	f.takeRequests()
	// Synced first: a body of one part committed without Sync goes
	// straight to its key, with no copy at all.
	sum := stageSyncCommit(t, s, data)
	if n := countRequests(f.takeRequests(), "PUT", "partNumber="); n != 4 {
		t.Errorf("%d UploadPartCopy requests, want 4", n)
	}
	if got := readAll(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("copied object differs")
	}
}

// TestTwoPartsInFlight: when the second part buffer is full while the
// first part is still uploading, the second part's upload starts at once
// rather than after the first, so that the server works on both. The fake
// server holds the first part until the second arrives (or ten seconds
// pass, and the test fails).
func TestTwoPartsInFlight(t *testing.T) {
	f := newFakeS3(t)
	second := make(chan struct{})
	var once sync.Once
	var sawSecond atomic.Bool
	f.setIntercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.Method != http.MethodPut || !r.URL.Query().Has("partNumber") {
			return false
		}
		switch r.URL.Query().Get("partNumber") {
		case "1":
			select {
			case <-second:
				sawSecond.Store(true)
			case <-time.After(10 * time.Second):
			}
		case "2":
			once.Do(func() { close(second) })
		}
		return false
	})
	cfg := testConfig()
	cfg.PartSize = s3.MinPartSize
	s := mustOpen(t, f, "", cfg)
	data := blobBytes(70, 3*s3.MinPartSize+1)
	sum := stageCommit(t, s, data)
	if !sawSecond.Load() {
		t.Error("part 2 was not sent while part 1 was uploading")
	}
	if got := readAll(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("read back different content")
	}
	assertTempEmpty(t, s)
}
