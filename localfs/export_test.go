package localfs

import "os"

// Test seams, visible only to this package's tests.

// StorageError exposes the error mapping.
var StorageError = storageError

// SetLink replaces os.Link in Commit.
func SetLink(s *Store, link func(oldname, newname string) error) { s.link = link }

// WriteStagedTo makes staged blobs write to the file at path (for example
// /dev/full) instead of their temp file. The temp file is still created and
// removed as usual.
func WriteStagedTo(s *Store, path string) {
	s.wrapStaged = func(*os.File) (*os.File, error) { return os.OpenFile(path, os.O_WRONLY, 0) }
}
