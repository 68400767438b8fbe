//go:build unix

package stores

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// LockDataDir takes an exclusive lock on dir for as long as the process
// holds the returned file (the kernel drops it when the process dies, even
// by SIGKILL). Two servers on one data dir would each remove the other's
// uploads in progress at start-up, taking them for leftovers of a crash.
func LockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "filehub.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another filehub server", dir)
		}
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	return f, nil
}
