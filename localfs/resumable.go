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

	"github.com/filehub/filehub"
)

var _ filehub.ResumableStager = (*Store)(nil)

// uploadsDir is the directory of resumable uploads under the data dir. It is
// apart from tmp/ on purpose: tmp/ is emptied at start-up and swept as
// stale_temp, while a resumable upload must survive a restart until it
// expires.
const uploadsDir = "uploads"

// resumablePath returns the path of upload id's content, creating uploads/
// if needed. Returns EINVALID unless id is a server-made upload ID: it is the
// only place an upload ID becomes a path.
func (s *Store) resumablePath(id string) (string, error) {
	if !filehub.ValidUploadID(id) {
		return "", filehub.Errorf(filehub.EINVALID, "invalid upload id %q", id)
	}
	return filepath.Join(s.dir, uploadsDir, id), nil
}

// WriteResumable writes r at offset of upload id's file and fsyncs it; see
// filehub.ResumableStager. Anything past offset (a chunk whose checksum did
// not match, or that a crash cut short) is truncated first.
func (s *Store) WriteResumable(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	path, err := s.resumablePath(id)
	if err != nil {
		return 0, err
	}
	flags := os.O_RDWR
	if offset == 0 {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, filePerm)
	if errors.Is(err, fs.ErrNotExist) && offset == 0 {
		// First upload on this data dir: create uploads/ and make its
		// entry durable, then the file.
		if err := os.Mkdir(filepath.Dir(path), dirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
			return 0, storageError("create uploads directory", err)
		}
		if err := syncDir(s.dir); err != nil {
			return 0, storageError("create uploads directory", err)
		}
		f, err = os.OpenFile(path, flags, filePerm)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return 0, filehub.Errorf(filehub.ENOTFOUND, "content of upload %s not found", id)
	}
	if err != nil {
		return 0, storageError("open upload", err)
	}
	defer f.Close()
	if offset > 0 {
		fi, err := f.Stat()
		if err != nil {
			return 0, storageError("stat upload", err)
		}
		if fi.Size() < offset {
			return 0, filehub.Errorf(filehub.ENOTFOUND, "content of upload %s ends at %d, before offset %d", id, fi.Size(), offset)
		}
	}
	if err := f.Truncate(offset); err != nil {
		return 0, storageError("truncate upload", err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, storageError("seek upload", err)
	}
	var w io.Writer = f
	if s.writeBehind && writeBehindSupported {
		w = &writeBehindWriter{f: f, flushed: offset, pos: offset}
	}
	n, readErr, writeErr := copyChunk(w, r)
	if writeErr != nil {
		return 0, storageError("write upload", writeErr)
	}
	// The data, and for a new file its directory entry, are durable before
	// the caller may answer the new offset.
	if err := f.Sync(); err != nil {
		return 0, storageError("sync upload", err)
	}
	if offset == 0 {
		if err := syncDir(filepath.Dir(path)); err != nil {
			return 0, storageError("sync uploads directory", err)
		}
	}
	return n, readErr
}

// writeBehindWriter starts write-back of every writeBehindChunk bytes as
// soon as they are written (as staged blobs do, see Config.DisableWriteBehind),
// so that the fsync that ends the chunk has little left to do.
type writeBehindWriter struct {
	f            *os.File
	flushed, pos int64
	off          bool // write-back failed once: stop trying on this file
}

func (w *writeBehindWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.pos += int64(n)
	if !w.off && w.pos-w.flushed >= writeBehindChunk {
		if startWriteBack(w.f, w.flushed, w.pos-w.flushed) != nil {
			w.off = true // only an optimization; the fsync reports real errors
		}
		w.flushed = w.pos
	}
	return n, err
}

// chunkBufs recycles WriteResumable's copy buffers. 256 KiB keeps the
// number of write system calls per chunk low; the bound on memory is one
// buffer per PATCH being received.
var chunkBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// copyChunk copies r to w until r ends, keeping read and write errors apart:
// bytes read before a read error are still written.
func copyChunk(w io.Writer, r io.Reader) (n int64, readErr, writeErr error) {
	bp := chunkBufs.Get().(*[]byte)
	defer chunkBufs.Put(bp)
	buf := *bp
	for {
		m, err := r.Read(buf)
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return n, nil, werr
			}
			n += int64(m)
		}
		if err == io.EOF {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
	}
}

// ReadResumable opens upload id's file at offset; see
// filehub.ResumableStager.
func (s *Store) ReadResumable(ctx context.Context, id string, offset int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, err := s.resumablePath(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "content of upload %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("localfs: open upload %s: %w", id, err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("localfs: seek upload %s: %w", id, err)
	}
	return f, nil
}

// StageResumable returns upload id's file, cut to size, as a staged blob:
// Commit hard-links it into blobs/ exactly like an ordinary upload's staged
// file (no copy), and Close removes it from uploads/. See
// filehub.ResumableStager.
func (s *Store) StageResumable(ctx context.Context, id string, size int64) (filehub.StagedBlob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, err := s.resumablePath(id)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "content of upload %s not found", id)
	}
	if err != nil {
		return nil, storageError("open upload", err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() < size {
		err = filehub.Errorf(filehub.ENOTFOUND, "content of upload %s is %d bytes, not %d", id, fi.Size(), size)
	}
	if err == nil && fi.Size() > size {
		// Bytes past the last answered offset were never acknowledged:
		// they are not part of the content.
		if err = f.Truncate(size); err == nil {
			err = f.Sync()
		}
	}
	if err != nil {
		f.Close()
		return nil, storageError("stage upload", err)
	}
	b := newStaged(s, f, path)
	b.size, b.flushed, b.synced = size, size, true
	return b, nil
}

// RemoveResumable removes upload id's file; see filehub.ResumableStager.
func (s *Store) RemoveResumable(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	path, err := s.resumablePath(id)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("localfs: remove upload %s: %w", id, err)
	}
	return nil
}
