package files_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a Service on real stores in a temp data dir.
type env struct {
	dir   string
	meta  *sqlite.DB
	blobs filehub.BlobStore
	svc   *files.Service
	reg   *prometheus.Registry
}

func newEnv(t testing.TB, cfg files.Config, wrap func(filehub.BlobStore) filehub.BlobStore) *env {
	t.Helper()
	dir := t.TempDir()
	meta, err := sqlite.Open(context.Background(), filepath.Join(dir, "filehub.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	var blobs filehub.BlobStore
	blobs, err = localfs.Open(dir, localfs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		blobs = wrap(blobs)
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	if cfg.MinFreeSpace == 0 {
		cfg.MinFreeSpace = -1 // the test machine's disk is not the subject here
	}
	svc, err := files.New(meta, blobs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{dir: dir, meta: meta, blobs: blobs, svc: svc, reg: reg}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// randomBytes returns incompressible, non-executable content.
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	if n > 0 {
		b[0] = 0 // never "MZ" or "\x7fELF" by chance
	}
	return b
}

// assertNothingLeft checks that no record, no blob object and no staged
// file exist: what every failed upload must leave behind.
func (e *env) assertNothingLeft(t *testing.T) {
	t.Helper()
	list, _, err := e.meta.ListFiles(context.Background(), filehub.FileFilter{IncludeDeleted: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("%d file records left", len(list))
	}
	e.assertDirEmpty(t, "tmp")
	e.assertNoObjects(t)
}

func (e *env) assertDirEmpty(t *testing.T, sub string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(e.dir, sub))
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		t.Errorf("left in %s/: %s", sub, en.Name())
	}
}

func (e *env) assertNoObjects(t *testing.T) {
	t.Helper()
	filepath.WalkDir(filepath.Join(e.dir, "blobs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("blob object left: %s", path)
		}
		return nil
	})
}

func (e *env) download(t *testing.T, id string) []byte {
	t.Helper()
	_, rc, err := e.svc.Open(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := filehub.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func TestUploadStoresAndDeduplicates(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int{0, 1, 100, 64 << 10, 64<<10 + 1, 1<<20 + 12345} {
		t.Run(strings.ReplaceAll(time.Duration(size).String(), "ns", "B"), func(t *testing.T) {
			e := newEnv(t, files.Config{}, nil)
			content := randomBytes(size, byte(size))
			up, err := e.svc.Upload(ctx, bytes.NewReader(content), "../a/b.bin", "k_owner")
			if err != nil {
				t.Fatal(err)
			}
			if up.Deduplicated || up.Size != int64(size) || up.SHA256 != sum(content) || up.Name != "b.bin" || up.OwnerKeyID != "k_owner" {
				t.Fatalf("unexpected upload %+v", up)
			}
			obj := filepath.Join(e.dir, "blobs", up.SHA256[:2], up.SHA256)
			if onDisk, err := os.ReadFile(obj); err != nil || !bytes.Equal(onDisk, content) {
				t.Fatalf("object at %s: %v", obj, err)
			}
			again, err := e.svc.Upload(ctx, bytes.NewReader(content), "copy.bin", "k_owner")
			if err != nil {
				t.Fatal(err)
			}
			if !again.Deduplicated || again.ID == up.ID || again.SHA256 != up.SHA256 {
				t.Fatalf("second upload %+v, want deduplicated with a new id", again)
			}
			b, err := e.meta.FindBlob(ctx, up.SHA256)
			if err != nil || b.RefCount != 2 {
				t.Fatalf("blob %+v, %v; want ref count 2", b, err)
			}
			if got := e.download(t, again.ID); !bytes.Equal(got, content) {
				t.Fatal("downloaded bytes differ")
			}
			e.assertDirEmpty(t, "tmp")
		})
	}
}

func TestConcurrentIdenticalUploadsMakeOneBlob(t *testing.T) {
	e := newEnv(t, files.Config{}, nil)
	content := randomBytes(200<<10, 3)
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.svc.Upload(context.Background(), bytes.NewReader(content), "same.bin", "k")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := e.meta.FindBlob(context.Background(), sum(content))
	if err != nil || b.RefCount != n {
		t.Fatalf("blob %+v, %v; want ref count %d", b, err, n)
	}
	objects := 0
	filepath.WalkDir(filepath.Join(e.dir, "blobs"), func(_ string, d os.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			objects++
		}
		return nil
	})
	if objects != 1 {
		t.Fatalf("%d objects, want 1", objects)
	}
	if got := counterValue(t, e.reg, "filehub_dedup_hits_total"); got != n-1 {
		t.Errorf("dedup hits %v, want %d", got, n-1)
	}
	e.assertDirEmpty(t, "tmp")
}

// counterValue returns the value of an unlabelled counter as /metrics
// would show it.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

func TestUploadSizeLimit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, files.Config{MaxUploadSize: 100_000}, nil)
	if _, err := e.svc.Upload(ctx, bytes.NewReader(randomBytes(100_001, 1)), "big", "k"); err == nil {
		t.Fatal("upload one byte over the limit succeeded")
	} else {
		wantCode(t, err, filehub.ETOOLARGE)
	}
	e.assertNothingLeft(t)
	// A body far larger than the limit is not read to the end.
	r := &countingReader{r: io.LimitReader(zeroReader{}, 10<<20)}
	_, err := e.svc.Upload(ctx, r, "huge", "k")
	wantCode(t, err, filehub.ETOOLARGE)
	if r.n > 100_001+64<<10 {
		t.Errorf("read %d bytes of an oversized body; should stop right after the limit", r.n)
	}
	e.assertNothingLeft(t)
	// Exactly the limit is fine.
	if _, err := e.svc.Upload(ctx, bytes.NewReader(randomBytes(100_000, 2)), "max", "k"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.svc.Admit(ctx, 100_001), filehub.ETOOLARGE)
	if err := e.svc.Admit(ctx, -1); err != nil {
		t.Fatalf("Admit(unknown length) = %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestUploadRefusesExecutablesBeforeWriting(t *testing.T) {
	e := newEnv(t, files.Config{}, nil)
	elf := append([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"), randomBytes(200<<10, 9)...)
	_, err := e.svc.Upload(context.Background(), bytes.NewReader(elf), "harmless.txt", "k")
	wantCode(t, err, filehub.EUNSUPPORTED)
	e.assertNothingLeft(t)
}

// failingReader returns some bytes, then an error, like a client that hangs up.
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

func TestUploadBodyErrorsLeaveNothing(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code string
	}{
		{"client disconnect", io.ErrClosedPipe, filehub.EINVALID},
		{"stall reported by transport", filehub.Errorf(filehub.ETIMEOUT, "stalled"), filehub.ETIMEOUT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, files.Config{}, nil)
			r := &failingReader{data: randomBytes(300<<10, 4), err: tt.err}
			_, err := e.svc.Upload(context.Background(), r, "x", "k")
			wantCode(t, err, tt.code)
			e.assertNothingLeft(t)
		})
	}
}

// fullDisk wraps a BlobStore so that staged writes fail with ESTORAGE after
// limit bytes, like a disk filling up mid-upload, and reports free space.
type fullDisk struct {
	filehub.BlobStore
	limit int64
	free  int64
}

func (d *fullDisk) Stage(ctx context.Context) (filehub.StagedBlob, error) {
	sb, err := d.BlobStore.Stage(ctx)
	if err != nil {
		return nil, err
	}
	return &limitedStaged{StagedBlob: sb, left: d.limit}, nil
}

func (d *fullDisk) FreeSpace(context.Context) (int64, error) { return d.free, nil }

type limitedStaged struct {
	filehub.StagedBlob
	left int64
}

func (s *limitedStaged) Write(p []byte) (int, error) {
	if int64(len(p)) > s.left {
		return 0, filehub.Errorf(filehub.ESTORAGE, "no space left on device")
	}
	s.left -= int64(len(p))
	return s.StagedBlob.Write(p)
}

func TestDiskFullMidUploadLeavesNothing(t *testing.T) {
	e := newEnv(t, files.Config{}, func(b filehub.BlobStore) filehub.BlobStore {
		return &fullDisk{BlobStore: b, limit: 200 << 10, free: 1 << 40}
	})
	_, err := e.svc.Upload(context.Background(), bytes.NewReader(randomBytes(1<<20, 5)), "x", "k")
	wantCode(t, err, filehub.ESTORAGE)
	e.assertNothingLeft(t)
}

func TestAdmitRefusesBelowFreeSpaceFloor(t *testing.T) {
	e := newEnv(t, files.Config{MinFreeSpace: 1 << 20}, func(b filehub.BlobStore) filehub.BlobStore {
		return &fullDisk{BlobStore: b, limit: 1 << 40, free: 1<<20 + 500}
	})
	ctx := context.Background()
	if err := e.svc.Admit(ctx, 100); err != nil {
		t.Fatalf("Admit(100) with room: %v", err)
	}
	wantCode(t, e.svc.Admit(ctx, 1000), filehub.ESTORAGE)
	e2 := newEnv(t, files.Config{MinFreeSpace: 1 << 20}, func(b filehub.BlobStore) filehub.BlobStore {
		return &fullDisk{BlobStore: b, limit: 1 << 40, free: 1 << 19}
	})
	wantCode(t, e2.svc.Admit(ctx, -1), filehub.ESTORAGE)
	wantCode(t, e2.svc.Ready(ctx), filehub.ESTORAGE)
	if err := e.svc.Ready(ctx); err != nil {
		t.Fatalf("Ready above the floor: %v", err)
	}
}

func TestDeleteRestoreLifecycle(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, files.Config{TrashGrace: time.Hour, Now: func() time.Time { return now }}, nil)
	up, err := e.svc.Upload(ctx, strings.NewReader("hello"), "h.txt", "k")
	if err != nil {
		t.Fatal(err)
	}
	del, err := e.svc.Delete(ctx, up.ID)
	if err != nil {
		t.Fatal(err)
	}
	if del.DeletedAt == nil || !del.DeletedAt.Equal(now) || del.PurgeAfter == nil || !del.PurgeAfter.Equal(now.Add(time.Hour)) {
		t.Fatalf("deleted record %+v", del)
	}
	_, err = e.svc.Get(ctx, up.ID)
	wantCode(t, err, filehub.ENOTFOUND)
	_, _, err = e.svc.Open(ctx, up.ID)
	wantCode(t, err, filehub.ENOTFOUND)
	if list, _, _ := e.svc.List(ctx, 10, ""); len(list) != 0 {
		t.Fatalf("deleted file still listed")
	}
	_, err = e.svc.Delete(ctx, up.ID)
	wantCode(t, err, filehub.ENOTFOUND)

	if _, err := e.svc.Restore(ctx, up.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.download(t, up.ID); string(got) != "hello" {
		t.Fatalf("restored content %q", got)
	}
	_, err = e.svc.Restore(ctx, up.ID)
	wantCode(t, err, filehub.ENOTFOUND)
	_, err = e.svc.Get(ctx, "f_doesnotexist")
	wantCode(t, err, filehub.ENOTFOUND)
}

func TestDiscardRemovesRecord(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, files.Config{}, nil)
	up, err := e.svc.Upload(ctx, strings.NewReader("part one"), "a", "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Discard(ctx, up.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.meta.FindFile(ctx, up.ID)
	wantCode(t, err, filehub.ENOTFOUND)
	b, err := e.meta.FindBlob(ctx, up.SHA256)
	if err != nil || b.RefCount != 0 {
		t.Fatalf("blob %+v, %v: want an unreferenced blob left for cleanup", b, err)
	}
}

// TestUploadMemoryDoesNotGrowWithSize checks the streaming claim: bytes
// allocated while uploading 64 MiB stay far below the upload's size.
func TestUploadMemoryDoesNotGrowWithSize(t *testing.T) {
	e := newEnv(t, files.Config{}, nil)
	ctx := context.Background()
	measure := func(size int64) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if _, err := e.svc.Upload(ctx, io.LimitReader(&pattern{}, size), "big.bin", "k"); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	small := measure(1 << 20)
	large := measure(64 << 20)
	t.Logf("allocated %d bytes for 1 MiB, %d bytes for 64 MiB", small, large)
	if large > 4<<20 {
		t.Fatalf("a 64 MiB upload allocated %d bytes; memory grows with file size", large)
	}
}

// pattern is an endless non-executable byte stream.
type pattern struct{ i byte }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = p.i
		p.i++
	}
	return len(b), nil
}

func TestNewRejectsBadPatterns(t *testing.T) {
	_, err := files.New(nil, nil, files.Config{AllowTypes: []string{"image"}})
	wantCode(t, err, filehub.EINVALID)
}

// FuzzUpload feeds arbitrary content through the real ingest path: it is
// either stored byte for byte or refused by the type policy, and nothing is
// ever left in tmp/.
func FuzzUpload(f *testing.F) {
	f.Add([]byte("hello"), "a.txt")
	f.Add([]byte("\x7fELF\x02\x01\x01"), "x")
	f.Add([]byte("MZ"), "..")
	f.Add(bytes.Repeat([]byte{0}, 70_000), "\u202e.exe")
	e := newEnv(f, files.Config{MaxUploadSize: 1 << 20}, nil)
	f.Fuzz(func(t *testing.T, content []byte, name string) {
		up, err := e.svc.Upload(context.Background(), bytes.NewReader(content), name, "k")
		switch {
		case err == nil:
			if up.SHA256 != sum(content) || up.Size != int64(len(content)) {
				t.Fatalf("stored %+v for %d bytes", up, len(content))
			}
			if got := e.download(t, up.ID); !bytes.Equal(got, content) {
				t.Fatal("round trip differs")
			}
		case errors.Is(err, &filehub.Error{Code: filehub.EUNSUPPORTED}), len(content) > 1<<20:
		default:
			t.Fatalf("unexpected error %v", err)
		}
		e.assertDirEmpty(t, "tmp")
	})
}

// TestTruncatedBodyIsNotStored covers the way net/http reports a body cut
// short of its Content-Length: io.ErrUnexpectedEOF. It must abort the
// upload, not end it.
func TestTruncatedBodyIsNotStored(t *testing.T) {
	e := newEnv(t, files.Config{}, nil)
	for _, size := range []int{10, 100 << 10} {
		r := &failingReader{data: randomBytes(size, 6), err: io.ErrUnexpectedEOF}
		_, err := e.svc.Upload(context.Background(), r, "cut", "k")
		wantCode(t, err, filehub.EINVALID)
	}
	e.assertNothingLeft(t)
}

// TestCanceledContextIsAnAbort: a request whose client hung up surfaces as a
// coded error, never a bare context.Canceled (which would be a 500).
func TestCanceledContextIsAnAbort(t *testing.T) {
	e := newEnv(t, files.Config{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	r := &cancelingReader{data: randomBytes(300<<10, 7), cancel: cancel}
	_, err := e.svc.Upload(ctx, r, "x", "k")
	if code := filehub.ErrorCode(err); code != filehub.EINVALID {
		t.Fatalf("error %v: code %q, want %q", err, code, filehub.EINVALID)
	}
	e.assertNothingLeft(t)
}

// cancelingReader cancels its context after the first chunk and then fails
// like a request body whose connection was closed.
type cancelingReader struct {
	data   []byte
	cancel func()
	reads  int
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	c.reads++
	if c.reads > 1 {
		c.cancel()
		return 0, context.Canceled
	}
	n := copy(p, c.data)
	return n, nil
}

func TestChangedIsCalledAfterEachCommittedChange(t *testing.T) {
	ctx := context.Background()
	var calls int
	e := newEnv(t, files.Config{Changed: func() { calls++ }}, nil)
	up, err := e.svc.Upload(ctx, strings.NewReader("x"), "x", "k")
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Delete(ctx, up.ID)
	e.svc.Delete(ctx, up.ID) // fails: already deleted, no call
	e.svc.Restore(ctx, up.ID)
	e.svc.Discard(ctx, up.ID)
	e.svc.Upload(ctx, bytes.NewReader(elfHeader()), "x", "k") // refused, no call
	if calls != 4 {
		t.Fatalf("Changed called %d times, want 4 (upload, delete, restore, discard)", calls)
	}
}

func elfHeader() []byte {
	return []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00")
}

// TestUploadRecreatesMissingObject: content whose object has gone missing
// (its record and files still there) is stored again by the next upload
// of the same content, instead of being answered "deduplicated" and
// thrown away; the files flagged content_missing are unflagged.
func TestUploadRecreatesMissingObject(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, files.Config{}, nil)
	content := randomBytes(100<<10, 7)
	first, err := e.svc.Upload(ctx, bytes.NewReader(content), "a.bin", "k_owner")
	if err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(e.dir, "blobs", first.SHA256[:2], first.SHA256)
	if err := os.Remove(obj); err != nil {
		t.Fatal(err)
	}
	// As the cleanup service would find it.
	if _, err := e.meta.SetBlobMissing(ctx, first.SHA256, time.Now(), filehub.AuditEntry{Action: filehub.AuditObjectMissing}); err != nil {
		t.Fatal(err)
	}
	again, err := e.svc.Upload(ctx, bytes.NewReader(content), "b.bin", "k_owner")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Deduplicated {
		t.Errorf("second upload %+v: want deduplicated (the record existed)", again)
	}
	if onDisk, err := os.ReadFile(obj); err != nil || !bytes.Equal(onDisk, content) {
		t.Fatalf("object after the re-upload: %v (equal %v)", err, bytes.Equal(onDisk, content))
	}
	if got := e.download(t, first.ID); !bytes.Equal(got, content) {
		t.Error("the first file's content differs after the re-upload")
	}
	if f, err := e.meta.FindFile(ctx, first.ID); err != nil || f.ContentMissing {
		t.Errorf("first file after the re-upload = %+v, %v; want content_missing cleared", f, err)
	}
	if b, err := e.meta.FindBlob(ctx, first.SHA256); err != nil || b.MissingSince != nil || b.RefCount != 2 {
		t.Errorf("blob after the re-upload = %+v, %v; want present, 2 references", b, err)
	}
	e.assertDirEmpty(t, "tmp")
}
