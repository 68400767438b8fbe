//go:build unix

package localfs

import "golang.org/x/sys/unix"

// freeSpace returns the bytes available to unprivileged users (f_bavail, not
// f_bfree: the blocks reserved for root are not ours to fill).
func freeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
