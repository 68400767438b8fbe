package localfs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/storetest"
)

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  localfs.Config
	}{
		{"WriteBehind", localfs.Config{}},
		{"NoWriteBehind", localfs.Config{DisableWriteBehind: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.RunBlobStore(t, func(t *testing.T) filehub.BlobStore {
				dir := t.TempDir()
				// Registered before the suite's own cleanups, so it runs
				// after them: every staged blob has been closed by then.
				t.Cleanup(func() { assertTempEmpty(t, dir) })
				return mustOpen(t, dir, tc.cfg)
			})
		})
	}
}

func TestOpenInvalidDir(t *testing.T) {
	if _, err := localfs.Open("", localfs.Config{}); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("Open(\"\") = %v, want EINVALID", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := localfs.Open(file, localfs.Config{}); err == nil {
		t.Error("Open of a regular file succeeded")
	}
}

// TestLayout checks that a committed blob is exactly blobs/ab/<sum> with the
// documented modes, that the data dir holds nothing else but empty fan-out
// directories, and that nothing outside the data dir is touched.
func TestLayout(t *testing.T) {
	parent := t.TempDir()
	osTemp := t.TempDir()
	t.Setenv("TMPDIR", osTemp) // catches any use of the default temp dir
	dir := filepath.Join(parent, "data")
	s := mustOpen(t, dir, localfs.Config{})
	ctx := t.Context()

	data := []byte("hello, layout")
	sum := mustCommit(t, s, data)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			if perm := info.Mode().Perm(); perm != 0o750 && path != dir {
				t.Errorf("%s: mode %v, want 0750", rel, perm)
			}
			return nil
		}
		if perm := info.Mode().Perm(); perm != 0o640 {
			t.Errorf("%s: mode %v, want 0640", rel, perm)
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"blobs/" + sum[:2] + "/" + sum}
	if !slices.Equal(files, want) {
		t.Errorf("files in data dir = %q, want %q", files, want)
	}
	fanOuts, err := os.ReadDir(filepath.Join(dir, "blobs"))
	if err != nil || len(fanOuts) != 256 {
		t.Errorf("blobs/ has %d entries (%v), want 256 fan-out dirs", len(fanOuts), err)
	}
	if got := dirNames(t, parent); !slices.Equal(got, []string{"data"}) {
		t.Errorf("parent of data dir holds %q, want only data", got)
	}
	if got := dirNames(t, osTemp); len(got) != 0 {
		t.Errorf("os temp dir holds %q, want nothing", got)
	}
}

func TestRemoveStaleTemp(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, localfs.Config{})
	ctx := t.Context()
	sum := mustCommit(t, s, []byte("kept"))

	// Two uploads in progress, as a killed server would leave them.
	for range 2 {
		b, err := s.Stage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close(context.Background()) })
		if _, err := b.Write([]byte("partial")); err != nil {
			t.Fatal(err)
		}
	}

	// A second process (the CLI) must not remove them.
	mustOpen(t, dir, localfs.Config{})
	if got := dirNames(t, filepath.Join(dir, "tmp")); len(got) != 2 {
		t.Fatalf("without RemoveStaleTemp tmp/ holds %q, want 2 files", got)
	}

	var logBuf bytes.Buffer
	s2 := mustOpen(t, dir, localfs.Config{
		RemoveStaleTemp: true,
		Logger:          slog.New(slog.NewTextHandler(&logBuf, nil)),
	})
	assertTempEmpty(t, dir)
	if !strings.Contains(logBuf.String(), "count=2") {
		t.Errorf("log %q does not report count=2", logBuf.String())
	}
	if _, err := s2.Stat(ctx, sum); err != nil {
		t.Errorf("committed blob gone after stale temp removal: %v", err)
	}
}

func TestStorageError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"ENOSPC", syscall.ENOSPC, filehub.ESTORAGE},
		{"EDQUOT", syscall.EDQUOT, filehub.ESTORAGE},
		{"wrapped ENOSPC", &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, filehub.ESTORAGE},
		{"EIO", &fs.PathError{Op: "write", Path: "x", Err: syscall.EIO}, filehub.EINTERNAL},
		{"other", errors.New("boom"), filehub.EINTERNAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := localfs.StorageError("op", tc.err)
			if got := filehub.ErrorCode(err); got != tc.want {
				t.Errorf("code = %q, want %q (err %v)", got, tc.want, err)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("%v does not wrap %v", err, tc.err)
			}
		})
	}
}

func TestWriteDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir := t.TempDir()
	s := mustOpen(t, dir, localfs.Config{})
	localfs.WriteStagedTo(s, "/dev/full")
	ctx := t.Context()

	b, err := s.Stage(ctx)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	data := []byte("does not fit")
	_, err = b.Write(data)
	if !errors.Is(err, filehub.ErrStorageFull) {
		t.Fatalf("Write = %v, want ESTORAGE", err)
	}
	if _, err := b.Write(data); !errors.Is(err, filehub.ErrStorageFull) {
		t.Errorf("second Write = %v, want the sticky ESTORAGE", err)
	}
	sum := hexSum(data)
	if err := b.Commit(ctx, sum); err == nil {
		t.Error("Commit after a failed Write succeeded")
	}
	if err := b.Close(t.Context()); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := s.Stat(ctx, sum); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("Stat = %v, want ENOTFOUND", err)
	}
	assertTempEmpty(t, dir)
}

func TestPingFails(t *testing.T) {
	// Tests run as root, which ignores permission bits: break the store by
	// removing directories or putting files in their place instead.
	for _, tc := range []struct {
		name    string
		breakIt func(t *testing.T, dir string)
	}{
		{"data dir removed", func(t *testing.T, dir string) { mustRemoveAll(t, dir) }},
		{"tmp removed", func(t *testing.T, dir string) { mustRemoveAll(t, filepath.Join(dir, "tmp")) }},
		{"blobs removed", func(t *testing.T, dir string) { mustRemoveAll(t, filepath.Join(dir, "blobs")) }},
		{"tmp is a file", func(t *testing.T, dir string) { replaceWithFile(t, filepath.Join(dir, "tmp")) }},
		{"blobs is a file", func(t *testing.T, dir string) { replaceWithFile(t, filepath.Join(dir, "blobs")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir, localfs.Config{})
			if err := s.Ping(t.Context()); err != nil {
				t.Fatalf("Ping before: %v", err)
			}
			tc.breakIt(t, dir)
			if err := s.Ping(t.Context()); !errors.Is(err, filehub.ErrUnavailable) {
				t.Errorf("Ping = %v, want EUNAVAILABLE", err)
			}
		})
	}
}

// TestCommitWithoutHardLinks checks the copy+rename fallback.
func TestCommitWithoutHardLinks(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, localfs.Config{})
	links := 0
	localfs.SetLink(s, func(oldname, newname string) error {
		links++
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EPERM}
	})
	ctx := t.Context()
	data := bytes.Repeat([]byte("no links here "), 10_000)
	sum := hexSum(data)

	b := mustStage(t, s, data)
	if err := b.Commit(ctx, sum); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if links == 0 {
		t.Fatal("the link seam was not used")
	}
	if got := readAll(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("copied object differs")
	}
	if got := dirNames(t, filepath.Join(dir, "tmp")); len(got) != 1 {
		t.Errorf("tmp/ holds %q, want only the staged file", got)
	}

	// An existing object is kept.
	other := mustStage(t, s, []byte("other bytes"))
	if err := other.Commit(ctx, sum); err != nil {
		t.Fatalf("Commit over existing: %v", err)
	}
	if got := readAll(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("existing object replaced")
	}
	// And a vanished one is re-created.
	if err := s.Delete(ctx, sum); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, sum); err != nil {
		t.Fatalf("second Commit: %v", err)
	}
	if got := readAll(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("re-created object differs")
	}
}

func TestCommitOtherLinkErrors(t *testing.T) {
	s := mustOpen(t, t.TempDir(), localfs.Config{})
	localfs.SetLink(s, func(oldname, newname string) error {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.ENOSPC}
	})
	data := []byte("full")
	b := mustStage(t, s, data)
	if err := b.Commit(t.Context(), hexSum(data)); !errors.Is(err, filehub.ErrStorageFull) {
		t.Fatalf("Commit = %v, want ESTORAGE", err)
	}
}

func TestCommitRecreatesFanOutDir(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, localfs.Config{})
	ctx := t.Context()
	data := []byte("fan-out removed")
	sum := hexSum(data)
	b := mustStage(t, s, data)
	if err := b.Commit(ctx, sum); err != nil {
		t.Fatal(err)
	}
	// A cleanup that also prunes empty fan-out directories.
	if err := s.Delete(ctx, sum); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "blobs", sum[:2])); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, sum); err != nil {
		t.Fatalf("Commit after the fan-out dir was removed: %v", err)
	}
	if got := readAll(t, s, sum); !bytes.Equal(got, data) {
		t.Fatal("object differs")
	}
}

func TestCommitCanceled(t *testing.T) {
	s := mustOpen(t, t.TempDir(), localfs.Config{})
	data := []byte("canceled")
	b := mustStage(t, s, data)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Commit(ctx, hexSum(data)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit = %v, want context.Canceled", err)
	}
	if _, err := s.Stat(t.Context(), hexSum(data)); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("Stat = %v, want ENOTFOUND", err)
	}
}

func TestWriteAfterClose(t *testing.T) {
	s := mustOpen(t, t.TempDir(), localfs.Config{})
	b := mustStage(t, s, []byte("x"))
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("y")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if err := b.Sync(); err == nil {
		t.Error("Sync after Close succeeded")
	}
}

func TestWalk(t *testing.T) {
	dir := t.TempDir()
	var logBuf bytes.Buffer
	s := mustOpen(t, dir, localfs.Config{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	ctx := t.Context()

	want := map[string]int64{}
	for i := range 3 {
		data := bytes.Repeat([]byte{byte(i)}, 100*(i+1))
		want[mustCommit(t, s, data)] = int64(len(data))
	}
	// Non-conforming entries, each to be skipped and logged.
	valid := hexSum([]byte("elsewhere"))
	wrongFanOut := "00"
	if valid[:2] == wrongFanOut {
		wrongFanOut = "01"
	}
	blobs := filepath.Join(dir, "blobs")
	for _, p := range []string{
		filepath.Join(blobs, "stray-file"),
		filepath.Join(blobs, "ab", "not-a-sum"),
		filepath.Join(blobs, "ab", strings.ToUpper(valid)),
		filepath.Join(blobs, wrongFanOut, valid),
	} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(blobs, "zz"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(blobs, "ab", valid), 0o750); err != nil { // a directory named like a sum
		t.Fatal(err)
	}

	got := map[string]int64{}
	var order []string
	err := s.Walk(ctx, func(info filehub.BlobInfo) error {
		got[info.SHA256] = info.Size
		order = append(order, info.SHA256)
		if info.ModTime.IsZero() {
			t.Errorf("%s: zero ModTime", info.SHA256)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Walk saw %v, want %v", got, want)
	}
	if !slices.IsSorted(order) {
		t.Errorf("Walk order %q is not sorted", order)
	}
	if n := strings.Count(logBuf.String(), "non-conforming"); n != 6 {
		t.Errorf("logged %d non-conforming entries, want 6:\n%s", n, logBuf.String())
	}

	// WalkSums lists the same sums in the same order and skips the same
	// entries.
	logBuf.Reset()
	var sums []string
	if err := s.WalkSums(ctx, func(sum string) error { sums = append(sums, sum); return nil }); err != nil {
		t.Fatalf("WalkSums: %v", err)
	}
	if !slices.Equal(sums, order) {
		t.Errorf("WalkSums saw %q, want %q as Walk", sums, order)
	}
	if n := strings.Count(logBuf.String(), "non-conforming"); n != 6 {
		t.Errorf("WalkSums logged %d non-conforming entries, want 6:\n%s", n, logBuf.String())
	}

	stop := errors.New("stop")
	calls := 0
	if err := s.Walk(ctx, func(filehub.BlobInfo) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("Walk with failing fn = %v after %d calls, want stop after 1", err, calls)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Walk(canceled, func(filehub.BlobInfo) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Walk with canceled ctx = %v, want context.Canceled", err)
	}
	calls = 0
	if err := s.WalkSums(ctx, func(string) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("WalkSums with failing fn = %v after %d calls, want stop after 1", err, calls)
	}
	if err := s.WalkSums(canceled, func(string) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("WalkSums with canceled ctx = %v, want context.Canceled", err)
	}
}

func TestWalkTempAndRemoveTemp(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, localfs.Config{})
	ctx := t.Context()
	before := time.Now().Add(-time.Minute) // coarse: file system clocks may lag

	b1 := mustStage(t, s, []byte("one"))
	mustStage(t, s, []byte("three"))

	sizes := map[int64]string{}
	err := s.WalkTemp(ctx, func(name string, modTime time.Time, size int64) error {
		if modTime.Before(before) {
			t.Errorf("%s: modTime %v, want recent", name, modTime)
		}
		sizes[size] = name
		return nil
	})
	if err != nil {
		t.Fatalf("WalkTemp: %v", err)
	}
	if len(sizes) != 2 || sizes[3] == "" || sizes[5] == "" {
		t.Fatalf("WalkTemp saw sizes %v, want 3 and 5", sizes)
	}

	if err := s.RemoveTemp(t.Context(), sizes[3]); err != nil {
		t.Fatalf("RemoveTemp: %v", err)
	}
	if err := s.RemoveTemp(t.Context(), sizes[3]); err != nil {
		t.Errorf("RemoveTemp of a missing file = %v, want nil", err)
	}
	if got := dirNames(t, filepath.Join(dir, "tmp")); !slices.Equal(got, []string{sizes[5]}) {
		t.Errorf("tmp/ holds %q, want %q", got, sizes[5])
	}
	// The staged blob whose file was removed can no longer be committed.
	if err := b1.Commit(ctx, hexSum([]byte("one"))); err == nil {
		t.Error("Commit of a removed staged file succeeded")
	}

	// Names that would leave tmp/ are refused, and remove nothing.
	sum := mustCommit(t, s, []byte("precious"))
	for _, name := range []string{
		"", ".", "..", "../blobs", "../blobs/" + sum[:2] + "/" + sum, "a/b", `a\b`, "/etc/passwd", "x\x00y",
	} {
		if err := s.RemoveTemp(t.Context(), name); filehub.ErrorCode(err) != filehub.EINVALID {
			t.Errorf("RemoveTemp(%q) = %v, want EINVALID", name, err)
		}
	}
	if _, err := s.Stat(ctx, sum); err != nil {
		t.Errorf("blob gone after invalid RemoveTemp calls: %v", err)
	}

	stop := errors.New("stop")
	if err := s.WalkTemp(ctx, func(string, time.Time, int64) error { return stop }); err != stop {
		t.Errorf("WalkTemp with failing fn = %v, want stop", err)
	}
}

func TestFreeSpace(t *testing.T) {
	s := mustOpen(t, t.TempDir(), localfs.Config{})
	n, err := s.FreeSpace(t.Context())
	if err != nil || n <= 0 {
		t.Fatalf("FreeSpace = %d, %v; want > 0", n, err)
	}
}

func mustOpen(t *testing.T, dir string, cfg localfs.Config) *localfs.Store {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := localfs.Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

// mustStage stages data and closes it at the end of the test.
func mustStage(t *testing.T, s *localfs.Store, data []byte) filehub.StagedBlob {
	t.Helper()
	b, err := s.Stage(t.Context())
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	if _, err := b.Write(data); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return b
}

// mustCommit stores data, closes the staged blob and returns the sum.
func mustCommit(t *testing.T, s *localfs.Store, data []byte) string {
	t.Helper()
	b := mustStage(t, s, data)
	sum := hexSum(data)
	if err := b.Commit(t.Context(), sum); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return sum
}

func readAll(t *testing.T, s *localfs.Store, sum string) []byte {
	t.Helper()
	r, err := s.Open(t.Context(), sum)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func assertTempEmpty(t *testing.T, dir string) {
	t.Helper()
	if got := dirNames(t, filepath.Join(dir, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ holds %q, want nothing", got)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func mustRemoveAll(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

func replaceWithFile(t *testing.T, path string) {
	t.Helper()
	mustRemoveAll(t, path)
	if err := os.WriteFile(path, []byte("not a dir"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func hexSum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}
