package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/filehub/filehub"
)

// reader is the io.ReadSeekCloser of Store.Open. It holds at most one GET
// response body, opened at the current position on the first Read after
// Open or a Seek and read sequentially from then on.
type reader struct {
	ctx  context.Context
	s    *Store
	key  string
	sum  string
	size int64 // from the HeadObject of Open; objects are immutable

	pos    int64
	body   io.ReadCloser // nil until the next Read
	closed bool
}

var errReaderClosed = errors.New("s3: blob reader is closed")

func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errReaderClosed
	}
	if r.pos >= r.size {
		// Also the empty object: S3 answers 416 to any range of it.
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.body == nil {
		rng := "bytes=" + strconv.FormatInt(r.pos, 10) + "-"
		out, err := r.s.client.GetObject(r.ctx, &s3.GetObjectInput{Bucket: &r.s.bucket, Key: &r.key, Range: &rng})
		if err != nil {
			if isNotFound(err) {
				return 0, filehub.Errorf(filehub.ENOTFOUND, "blob %s not found", r.sum)
			}
			return 0, r.s.wrap(fmt.Sprintf("read blob %s at %d", r.sum, r.pos), err)
		}
		r.body = out.Body
	}
	n, err := r.body.Read(p)
	r.pos += int64(n)
	if err == io.EOF {
		r.body.Close()
		r.body = nil
		if r.pos < r.size {
			// The object ended early: it was replaced or truncated.
			return n, fmt.Errorf("s3: read blob %s: %w at %d of %d bytes", r.sum, io.ErrUnexpectedEOF, r.pos, r.size)
		}
		return n, io.EOF
	}
	if err != nil {
		r.body.Close()
		r.body = nil
		return n, r.s.wrap("read blob "+r.sum, err)
	}
	return n, nil
}

// Seek sets the position for the next Read. Seeking is free: the next Read
// starts a new ranged GET only if the position changed.
func (r *reader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, errReaderClosed
	}
	var pos int64
	switch whence {
	case io.SeekStart:
		pos = offset
	case io.SeekCurrent:
		pos = r.pos + offset
	case io.SeekEnd:
		pos = r.size + offset
	default:
		return 0, fmt.Errorf("s3: seek: invalid whence %d", whence)
	}
	if pos < 0 {
		return 0, fmt.Errorf("s3: seek: negative position %d", pos)
	}
	if pos != r.pos && r.body != nil {
		r.body.Close()
		r.body = nil
	}
	r.pos = pos
	return pos, nil
}

func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}
