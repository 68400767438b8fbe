package localfs

import (
	"os"

	"golang.org/x/sys/unix"
)

const writeBehindSupported = true

// startWriteBack asks the kernel to start writing back the n bytes at off of
// f, without waiting for it: the disk writes while the caller goes on
// receiving data, and the final fsync finds little left to do.
func startWriteBack(f *os.File, off, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
	if err != nil {
		return err
	}
	return serr
}
