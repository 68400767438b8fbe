package localfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/filehub/filehub"
)

var (
	_ filehub.BlobWalker  = (*Store)(nil)
	_ filehub.SumWalker   = (*Store)(nil)
	_ filehub.TempCleaner = (*Store)(nil)
)

// Walk calls fn for every object in the store, in lexical order of sum.
// Entries that do not conform to the layout (a name that is not a lowercase
// SHA-256, a sum in the wrong fan-out directory, anything but a regular file)
// are skipped and logged as warnings. Walk stops at the first error from fn
// and returns it unchanged, or returns ctx's error if ctx is done. Objects
// added or removed during the walk may or may not be seen.
func (s *Store) Walk(ctx context.Context, fn func(filehub.BlobInfo) error) error {
	return s.walk(ctx, func(sum string, e fs.DirEntry) error {
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted since ReadDir
		}
		if err != nil {
			return fmt.Errorf("localfs: walk: %w", err)
		}
		return fn(filehub.BlobInfo{SHA256: sum, Size: fi.Size(), ModTime: fi.ModTime()})
	})
}

// WalkSums is Walk without the size and modification time: it calls fn
// with every object's sum, in lexical order, and skips the same entries.
// It reads only the directories, where Walk stats every object too (about
// half of Walk's time), which is why the cleanup scan prefers it.
func (s *Store) WalkSums(ctx context.Context, fn func(sum string) error) error {
	return s.walk(ctx, func(sum string, _ fs.DirEntry) error { return fn(sum) })
}

// walk calls fn for every conforming object in lexical order of sum, with
// its directory entry. The entries' types come from
// the directory listing itself (d_type on Linux), not from a stat.
func (s *Store) walk(ctx context.Context, fn func(sum string, e fs.DirEntry) error) error {
	fanOuts, err := os.ReadDir(s.blobDir)
	if err != nil {
		return fmt.Errorf("localfs: walk: %w", err)
	}
	for _, d := range fanOuts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.IsDir() || !isFanOut(d.Name()) {
			s.log.Warn("localfs: walk: skipping non-conforming entry", "path", filepath.Join(s.blobDir, d.Name()))
			continue
		}
		dir := filepath.Join(s.blobDir, d.Name())
		// os.ReadDir returns the entries sorted by name, so the objects
		// come in sum order without a sort of our own.
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("localfs: walk: %w", err)
		}
		for i, e := range entries {
			// A fan-out directory holds thousands of objects at most a
			// million blobs: looking at ctx every 1,024 of them is often
			// enough and keeps its cost out of the loop.
			if i%1024 == 1023 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			name := e.Name()
			if !e.Type().IsRegular() || !filehub.ValidSHA256(name) || name[:2] != d.Name() {
				s.log.Warn("localfs: walk: skipping non-conforming entry", "path", filepath.Join(dir, name))
				continue
			}
			if err := fn(name, e); err != nil {
				return err
			}
		}
	}
	return nil
}

func isFanOut(name string) bool {
	if len(name) != 2 {
		return false
	}
	for _, c := range []byte(name) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// WalkTemp calls fn for every regular file in tmp/ (staged uploads, copies
// being committed, Ping probes) with its name, modification time and size,
// so that a cleanup service can remove the ones abandoned for long. A staged
// upload's modification time is that of its last write. WalkTemp stops at
// the first error from fn and returns it unchanged, or returns ctx's error if
// ctx is done.
func (s *Store) WalkTemp(ctx context.Context, fn func(name string, modTime time.Time, size int64) error) error {
	entries, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return fmt.Errorf("localfs: walk temp: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("localfs: walk temp: %w", err)
		}
		if err := fn(e.Name(), fi.ModTime(), fi.Size()); err != nil {
			return err
		}
	}
	return nil
}

// RemoveTemp removes the file name from tmp/. name must be a bare file name
// as passed by WalkTemp; anything else (empty, "." or "..", containing a
// path separator or NUL) returns EINVALID. Removing a missing file is not an
// error. A staged blob whose file was removed can no longer be committed.
// Removing one file does not wait on anything but the local disk; ctx is
// checked before it.
func (s *Store) RemoveTemp(ctx context.Context, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`+"\x00") ||
		filepath.Base(name) != name {
		return filehub.Errorf(filehub.EINVALID, "invalid temp file name %q", name)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(s.tmpDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("localfs: remove temp: %w", err)
	}
	return nil
}
