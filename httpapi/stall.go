package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/filehub/filehub"
)

// Deadlines are pushed to now + timeout + timeout/4 and renewed at most every
// timeout/4: a stall is noticed after between 1 and 1.25 times the timeout,
// never earlier, while a fast transfer costs one deadline system call per
// quarter timeout instead of one per read or write.
func stallDeadline(now time.Time, timeout time.Duration) time.Time {
	return now.Add(timeout + timeout/4)
}

// bodyReader is an upload body that aborts when the client stalls and that
// turns every way a body can fail into a *filehub.Error, which
// files.Service passes through: ETIMEOUT for a stall, ETOOLARGE past the
// limit, EINVALID for a body that ends early or breaks.
type bodyReader struct {
	r       io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	limit   int64 // most bytes accepted; reading more is ETOOLARGE
	n       int64

	renewed   time.Time
	noDeadl   bool // the connection does not support deadlines
	deadlined bool // a deadline is set and must be cleared
	eof       bool // the body was read to its end
}

func newBodyReader(w http.ResponseWriter, r io.ReadCloser, timeout time.Duration, limit int64) *bodyReader {
	return &bodyReader{r: r, rc: http.NewResponseController(w), timeout: timeout, limit: limit}
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if !b.noDeadl {
		if now := time.Now(); now.Sub(b.renewed) >= b.timeout/4 {
			if err := b.rc.SetReadDeadline(stallDeadline(now, b.timeout)); err != nil {
				b.noDeadl = true // e.g. httptest.ResponseRecorder: nothing to protect
			} else {
				b.renewed, b.deadlined = now, true
			}
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		return n, filehub.Errorf(filehub.ETOOLARGE, "request body exceeds the limit of %d bytes", b.limit)
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		// Clear the deadline at once: net/http now starts a background
		// read on the connection, which our deadline would otherwise
		// interrupt, cancelling the request mid-commit.
		b.eof = true
		b.stop()
		return n, err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, filehub.WrapError(filehub.ETIMEOUT,
			fmt.Sprintf("upload aborted: the body stalled for more than %s", b.timeout), err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		// Not a clean end: the client announced more than it sent (or
		// broke off a chunked body). Treating this as EOF would store a
		// truncated file, so the cause is deliberately not wrapped:
		// readers that check errors.Is(err, io.ErrUnexpectedEOF) to
		// detect a short final read must not mistake it for one.
		return n, filehub.Errorf(filehub.EINVALID, "upload aborted: the body ended before it was complete")
	default:
		var fe *filehub.Error
		if errors.As(err, &fe) {
			return n, err
		}
		return n, filehub.WrapError(filehub.EINVALID, "upload aborted: the body could not be read", err)
	}
}

func (b *bodyReader) Close() error { return b.r.Close() }

// stop ends the reader's use of the connection. After a complete body it
// clears the read deadline so that a kept-alive connection does not inherit
// it. Otherwise the connection is about to be closed (see writeProblem), and
// the deadline is moved to now: net/http would else try to drain the rest
// of the body, with no deadline at all, from a client that may be stalled.
func (b *bodyReader) stop() {
	switch {
	case b.noDeadl:
	case b.eof:
		if b.deadlined {
			_ = b.rc.SetReadDeadline(time.Time{})
			b.deadlined = false
		}
	default:
		_ = b.rc.SetReadDeadline(time.Now())
	}
}

// partReader guards one multipart part. mime/multipart reports a body that
// ends before the closing boundary as io.ErrUnexpectedEOF, which would pass
// for a normal end of the part's content.
type partReader struct{ r io.Reader }

func (p partReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// Not wrapped, for the same reason as in bodyReader.Read.
		err = filehub.Errorf(filehub.EINVALID, "upload aborted: the multipart body ended inside a part")
	}
	return n, err
}

// downloadWriter is the ResponseWriter given to http.ServeContent. It cuts
// the download when the client stops accepting bytes, and it captures a
// 416 so that the handler can answer with a problem document instead of
// ServeContent's plain text.
type downloadWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	renewed time.Time
	noDeadl bool
	set     bool

	unsatisfiable bool // ServeContent answered 416; its body is dropped
}

func (d *downloadWriter) WriteHeader(code int) {
	if code == http.StatusRequestedRangeNotSatisfiable {
		d.unsatisfiable = true
		return
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *downloadWriter) Write(p []byte) (int, error) {
	if d.unsatisfiable {
		return len(p), nil
	}
	if !d.noDeadl {
		if now := time.Now(); now.Sub(d.renewed) >= d.timeout/4 {
			if err := d.rc.SetWriteDeadline(stallDeadline(now, d.timeout)); err != nil {
				d.noDeadl = true
			} else {
				d.renewed, d.set = now, true
			}
		}
	}
	return d.ResponseWriter.Write(p)
}

// finish flushes what is buffered while the deadline still guards it, then
// clears the deadline for the next request on the connection.
func (d *downloadWriter) finish() {
	if !d.set {
		return
	}
	if err := d.rc.Flush(); err == nil {
		_ = d.rc.SetWriteDeadline(time.Time{})
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (d *downloadWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
