//go:build unix

package localfs

import (
	"math"

	"golang.org/x/sys/unix"
)

// freeSpace returns the bytes available to unprivileged users (f_bavail, not
// f_bfree: the blocks reserved for root are not ours to fill).
func freeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	free := st.Bavail * uint64(st.Bsize) //nolint:gosec // Bsize is a positive block size
	if free > math.MaxInt64 {
		return math.MaxInt64, nil
	}
	return int64(free), nil
}
