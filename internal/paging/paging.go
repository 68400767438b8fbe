// Package paging holds the dialect-neutral parts of cursor-based listing
// shared by the metadata stores (sqlite, postgres): page-size limits and the
// opaque cursor format. Keeping them in one place means a cursor and a limit
// mean the same thing whichever backend answers, which matters when several
// instances or a migrated deployment serve the same clients.
package paging

import (
	"encoding/base64"
	"strconv"

	"github.com/filehub/filehub"
)

// Page sizes of listings: the default when a caller asks for 0, and the cap.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Limit turns a requested page size into the one to use: 0 means
// DefaultLimit, anything above MaxLimit is capped. Returns EINVALID for a
// negative size.
func Limit(n int) (int, error) {
	switch {
	case n < 0:
		return 0, filehub.Errorf(filehub.EINVALID, "limit must not be negative")
	case n == 0:
		return DefaultLimit, nil
	case n > MaxLimit:
		return MaxLimit, nil
	}
	return n, nil
}

// EncodeCursor returns the opaque cursor for the position after seq.
func EncodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString(strconv.AppendInt(nil, seq, 10))
}

// DecodeCursor returns the position a cursor stands for; "" is the start
// (0). Returns EINVALID for anything EncodeCursor did not produce.
func DecodeCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, filehub.WrapError(filehub.EINVALID, "malformed cursor", err)
	}
	seq, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || seq < 1 {
		return 0, filehub.WrapError(filehub.EINVALID, "malformed cursor", err)
	}
	return seq, nil
}
