package tus

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/filehub/filehub"
)

// body is a PATCH body: it aborts when the client stalls, refuses bytes
// past the upload's end, and turns how a body fails into filehub errors.
// The read deadline is renewed lazily (every timeout/4), so a stall is
// noticed after 1 to 1.25 times the timeout.
type body struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
	limit   int64 // most bytes accepted
	n       int64

	renewed   time.Time
	noDeadl   bool
	deadlined bool
	eof       bool
}

func newBody(w http.ResponseWriter, r io.Reader, timeout time.Duration, limit int64) *body {
	return &body{r: r, rc: http.NewResponseController(w), timeout: timeout, limit: limit}
}

func (b *body) Read(p []byte) (int, error) {
	if !b.noDeadl {
		if now := time.Now(); now.Sub(b.renewed) >= b.timeout/4 {
			if err := b.rc.SetReadDeadline(now.Add(b.timeout + b.timeout/4)); err != nil {
				b.noDeadl = true
			} else {
				b.renewed, b.deadlined = now, true
			}
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		return 0, filehub.Errorf(filehub.ETOOLARGE, "the chunk goes past the upload's length (or the size limit)")
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		// Clear the deadline at once: net/http starts a background
		// read on the connection now, which the deadline would
		// interrupt, cancelling the request while it commits.
		b.eof = true
		b.stop()
		return n, io.EOF
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, filehub.WrapError(filehub.ETIMEOUT, fmt.Sprintf("the chunk stalled for more than %s; the bytes before are kept", b.timeout), err)
	default:
		return n, filehub.WrapError(filehub.EINVALID, "the chunk ended before it was complete; the bytes before are kept", err)
	}
}

// stop ends the body's use of the connection: after a complete body the
// deadline is cleared for keep-alive; otherwise the connection is about to
// be closed, and net/http must not wait for the rest of a stalled body.
func (b *body) stop() {
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
