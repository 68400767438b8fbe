//go:build !linux

package localfs

import "os"

// Write-behind needs sync_file_range, which only Linux has.
const writeBehindSupported = false

func startWriteBack(f *os.File, off, n int64) error { return nil }
