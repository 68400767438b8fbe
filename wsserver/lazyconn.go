package wsserver

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
)

// An idle connection is most of what a server with many sessions holds, so
// the read side of a connection keeps no buffer while nothing is to be
// read: gorilla reads through a small bufio.Reader (gorillaReadBuffer) from a
// lazyConn, which borrows a readChunk buffer from a pool only once the
// socket is readable, and returns it as soon as gorilla has consumed what it
// read. The reader waits for the socket (fill) at the bottom of its
// goroutine (conn.reads), so an idle reader also keeps the smallest stack.

const (
	// gorillaReadBuffer is the size of the bufio.Reader gorilla reads
	// frame headers through; gorilla reuses a hijacked reader only if it is
	// larger than 256 bytes, and 288 is the allocator's next size class.
	// Payloads larger than it bypass it.
	gorillaReadBuffer = 288
	// readChunk is the size of a pooled read buffer: what one read system
	// call may take from the socket.
	readChunk = 8 << 10
)

var readBufferPool = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

// readBuffersLent counts the pooled read buffers held by connections,
// readBuffersBorrowed the times one was borrowed (tests read them).
var readBuffersLent, readBuffersBorrowed atomic.Int64

// lazyConn is a socket that borrows its read buffer only while there is
// something to read. Only the connection's reader reads from it (gorilla's
// rule), so its read state needs no lock.
type lazyConn struct {
	net.Conn
	rc  syscall.RawConn
	br  *bufio.Reader // gorilla's reader over this connection
	buf *[]byte       // borrowed; nil while nothing is pending
	r   int           // (*buf)[r:w] is read and not yet consumed
	w   int
	err error // the error that ended the last fill, returned once
}

// lazyHijacker makes gorilla's Upgrade read through a lazyConn. Sockets
// without a file descriptor (TLS is terminated in front of filehub, or
// tests) are passed through unchanged.
type lazyHijacker struct {
	http.ResponseWriter
}

func (h lazyHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		// gorilla refuses early data itself.
		return nc, brw, err
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nc, brw, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nc, brw, nil
	}
	lc := &lazyConn{Conn: nc, rc: rc}
	lc.br = bufio.NewReaderSize(lc, gorillaReadBuffer)
	// net/http's 4 KiB reader is dropped here; its writer serves gorilla's
	// handshake response and is dropped after it.
	return lc, bufio.NewReadWriter(lc.br, brw.Writer), nil
}

// Read serves what fill read, or reads a large p from the socket directly.
func (c *lazyConn) Read(p []byte) (int, error) {
	if c.buf == nil && c.err == nil {
		if len(p) >= readChunk {
			return c.Conn.Read(p)
		}
		c.fill()
	}
	if c.buf == nil {
		err := c.err
		c.err = nil
		return 0, err
	}
	n := copy(p, (*c.buf)[c.r:c.w])
	c.r += n
	if c.r == c.w {
		c.release()
	}
	return n, nil
}

// idle reports whether nothing read is waiting to be consumed, in gorilla's
// reader or here: the next read would wait for the socket.
func (c *lazyConn) idle() bool {
	return c.buf == nil && c.err == nil && c.br.Buffered() == 0
}

// fill waits until the socket is readable, holding no buffer, then reads
// what it can into a borrowed one. An error is kept for Read to return.
func (c *lazyConn) fill() {
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		b := readBufferPool.Get().(*[]byte)
		for {
			n, rerr = syscall.Read(int(fd), *b)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			readBufferPool.Put(b)
			return false // wait for the socket, without the buffer
		}
		if n > 0 {
			c.buf, c.r, c.w = b, 0, n
			readBuffersLent.Add(1)
			readBuffersBorrowed.Add(1)
		} else {
			readBufferPool.Put(b)
		}
		return true
	})
	switch {
	case err != nil: // deadline, closed
		c.err = err
	case rerr != nil:
		c.err = &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: rerr}
	case n == 0:
		c.err = io.EOF
	}
}

// release returns the borrowed buffer. Only the reader calls it; conn.finish
// does when the connection ends with data unread.
func (c *lazyConn) release() {
	if c.buf != nil {
		readBufferPool.Put(c.buf)
		c.buf = nil
		readBuffersLent.Add(-1)
	}
}
