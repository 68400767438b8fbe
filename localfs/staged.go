package localfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/filehub/filehub"
)

// writeBehindChunk is how many bytes are written before write-back of them
// is started. Large enough that the extra system call is negligible, small
// enough that the disk starts working early and that little is left for the
// final fsync.
const writeBehindChunk = 4 << 20

var errClosed = errors.New("localfs: staged blob is closed")

// staged is a filehub.StagedBlob: a temp file in tmp/. The temp file is
// kept until Close, so that Commit can re-create the object from it.
type staged struct {
	s    *Store
	path string // temp file, a name the store generated

	mu          sync.Mutex
	f           *os.File // nil once closed
	size        int64    // bytes written
	flushed     int64    // bytes handed to write-behind
	writeBehind bool
	synced      bool   // nothing written since the last successful fsync
	committed   string // sum of the last successful Commit, durable in its directory
	err         error  // sticky: a failed write or fsync spoils the content
}

func newStaged(s *Store, f *os.File, path string) *staged {
	return &staged{s: s, f: f, path: path, writeBehind: s.writeBehind && writeBehindSupported}
}

// Write appends p to the staged file. Returns ESTORAGE on a full disk or
// quota. After an error the staged blob can no longer be committed.
func (b *staged) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil {
		return 0, errClosed
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.f.Write(p)
	b.size += int64(n)
	if n > 0 {
		b.synced = false
	}
	if err != nil {
		b.err = storageError("write staged blob", err)
		return n, b.err
	}
	if b.writeBehind && b.size-b.flushed >= writeBehindChunk {
		if err := startWriteBack(b.f, b.flushed, b.size-b.flushed); err != nil {
			// Only an optimization: the final fsync reports any real
			// write-back error. Stop trying on this file (e.g. a file
			// system that does not support it).
			b.writeBehind = false
		}
		b.flushed = b.size
	}
	return n, nil
}

// Sync fsyncs the staged file. Returns ESTORAGE on a full disk or quota.
func (b *staged) Sync() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.syncLocked()
}

func (b *staged) syncLocked() error {
	if b.f == nil {
		return errClosed
	}
	if b.err != nil {
		return b.err
	}
	if b.synced {
		return nil
	}
	if err := b.f.Sync(); err != nil {
		// After a failed fsync the page cache may no longer hold what was
		// written, so a retry could "succeed" on lost data: never commit.
		b.err = storageError("sync staged blob", err)
		return b.err
	}
	b.synced = true
	return nil
}

// Commit fsyncs the staged file if needed and makes it visible as the object
// sum: it hard-links the staged file to the object's path and fsyncs the
// fan-out directory. If the object already exists it is kept (same sum, same
// bytes). Commit may be called again and re-links the object if it was
// removed meanwhile. If the file system does not support hard links, the
// staged file is copied to a new temp file that is renamed into place.
//
// Returns EINVALID for an invalid sum, ESTORAGE on a full disk, and an error
// if the staged blob is closed or an earlier Write or Sync failed.
func (b *staged) Commit(ctx context.Context, sum string) error {
	_, err := b.commit(ctx, sum, false)
	return err
}

// CommitNew is Commit for content nobody has looked up yet: if an object
// sum exists already (and this staged blob did not commit it), it returns
// existed true and leaves it as it is, without the directory fsync, for
// the caller to decide from the metadata whether to Commit after all. The
// link's EEXIST is the existence check, so new content costs no extra
// stat (issue 14). Errors are Commit's.
func (b *staged) CommitNew(ctx context.Context, sum string) (existed bool, err error) {
	return b.commit(ctx, sum, true)
}

func (b *staged) commit(ctx context.Context, sum string, onlyNew bool) (existed bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	fanOut, path, err := b.s.objectPath(sum)
	if err != nil {
		return false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.syncLocked(); err != nil {
		return false, err
	}
	// A repeated Commit (the MetaStore's place callback after the
	// pre-commit) usually finds the object it made durable itself: one stat
	// instead of a link and a directory fsync, which matters because the
	// callback runs inside the metadata store's serialized write batch.
	if b.committed == sum {
		if _, err := os.Lstat(path); err == nil {
			return false, nil
		}
	}

	createdDir := false
	err = b.s.link(b.path, path)
	if errors.Is(err, fs.ErrNotExist) {
		// The fan-out directory was removed after Open (or the staged
		// file was removed, in which case the retry fails again).
		if err := os.Mkdir(fanOut, dirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
			return false, storageError("create fan-out directory", err)
		} else if err == nil {
			createdDir = true
		}
		err = b.s.link(b.path, path)
	}
	switch {
	case errors.Is(err, fs.ErrExist) && onlyNew:
		return true, nil
	case err == nil, errors.Is(err, fs.ErrExist):
		// Linked, or an object with the same sum (so the same bytes) is
		// already there. In both cases fsync the directory: the existing
		// entry may come from a concurrent Commit that has not synced yet.
	case linkUnsupported(err):
		if onlyNew {
			if _, err := os.Lstat(path); err == nil {
				return true, nil
			}
		}
		if err := b.copyInto(path); err != nil {
			return false, err
		}
	default:
		return false, storageError("commit blob "+sum, err)
	}
	if err := syncDir(fanOut); err != nil {
		return false, storageError("commit blob "+sum, err)
	}
	if createdDir {
		if err := syncDir(b.s.blobDir); err != nil {
			return false, storageError("commit blob "+sum, err)
		}
	}
	b.committed = sum
	return false, nil
}

// linkUnsupported reports whether a link error means the file system has no
// hard links. EXDEV is not among them: a rename across file systems fails
// too.
func linkUnsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EMLINK)
}

// copyInto is Commit's fallback without hard links: copy the staged file to
// a new temp file, fsync it and rename it to path. An existing object is
// kept; if one appears between the check and the rename it is replaced by
// identical bytes, which is harmless.
func (b *staged) copyInto(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return nil
	}
	c, err := os.CreateTemp(b.s.tmpDir, copyPattern)
	if err != nil {
		return storageError("copy staged blob", err)
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
			os.Remove(c.Name())
		}
	}()
	if err := c.Chmod(filePerm); err != nil {
		return fmt.Errorf("localfs: chmod copy: %w", err)
	}
	if _, err := io.Copy(c, io.NewSectionReader(b.f, 0, b.size)); err != nil {
		return storageError("copy staged blob", err)
	}
	if err := c.Sync(); err != nil {
		return storageError("sync copy", err)
	}
	if err := c.Close(); err != nil {
		return storageError("close copy", err)
	}
	if err := os.Rename(c.Name(), path); err != nil {
		return storageError("rename copy", err)
	}
	ok = true
	return nil
}

// Close closes and removes the staged file; a committed object is kept.
// Close is idempotent. It does not block on anything but the local disk, so
// it ignores ctx.
func (b *staged) Close(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil {
		return nil
	}
	err := b.f.Close()
	b.f = nil
	if rerr := os.Remove(b.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("localfs: close staged blob %s: %w", filepath.Base(b.path), err)
	}
	return nil
}

var _ filehub.StagedBlob = (*staged)(nil)
