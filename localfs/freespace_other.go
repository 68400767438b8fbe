//go:build !unix

package localfs

import "errors"

func freeSpace(dir string) (int64, error) {
	return 0, errors.New("not supported on this operating system")
}
