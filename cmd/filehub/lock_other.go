//go:build !unix

package main

import "os"

// lockDataDir does nothing where flock is not available: running two
// servers on one data dir is then the operator's mistake to avoid.
func lockDataDir(dir string) (*os.File, error) { return nil, nil }
