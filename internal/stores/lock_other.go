//go:build !unix

package stores

import "os"

// LockDataDir does nothing where flock is not available: running two
// servers on one data dir is then the operator's mistake to avoid.
func LockDataDir(dir string) (*os.File, error) { return nil, nil }
