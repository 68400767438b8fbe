package wsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// conn is one WebSocket connection. ServeHTTP's goroutine runs its hello
// phase, a goroutine of its own the read loop; its writer runs only while
// the session has something to send.
type conn struct {
	srv   *Server
	ws    *websocket.Conn
	lazy  *lazyConn // ws's socket, if it could be made one
	keyID string    // the key charged for this connection ("" until known)
	key   *filehub.APIKey
	hash  []byte
	addr  string // the client's address, charged with failed authentications
	// pending: upgraded without a key and counted in Server.pending until
	// its hello is read (guarded by the server's mu).
	pending bool

	ping *time.Timer // nil until the session is attached

	closing       atomic.Bool  // a close frame was sent (or the connection ended)
	failed        atomic.Bool  // fail was called: ignore further input
	closeDeadline atomic.Int64 // unix nanos; valid once closing is set
	closeOnce     sync.Once

	// Guarded by the session's mu once the connection is attached.
	sess      *session
	welcomed  bool           // welcome written: the writer may start
	writing   bool           // a writer goroutine runs
	fatal     *wsproto.Frame // error frame to write, then close with fatalCode
	fatalCode int
}

func (c *conn) init(srv *Server, ws *websocket.Conn, key *filehub.APIKey, hash []byte, addr string) {
	c.srv, c.ws, c.key, c.hash, c.addr = srv, ws, key, hash, addr
	c.lazy, _ = ws.NetConn().(*lazyConn)
}

// window is how long a connection may be silent before it is considered
// dead: a ping is due within PingInterval, its pong within PongTimeout.
func (c *conn) window() time.Duration { return c.srv.cfg.PingInterval + c.srv.cfg.PongTimeout }

// serve runs the connection: hello and welcome on the calling goroutine
// (ServeHTTP's) with the request's context, then the read loop on a
// goroutine of its own, so that ServeHTTP can return. See the package doc
// for why.
//
// The read loop's handlers get a context of their own, not the request's:
// nothing they call reads request-scoped values, and keeping the request's
// context chain (net/http's connection and request contexts, their values
// and a done channel) would cost every idle connection ≈ 0.6 KB of heap for
// its whole life.
func (c *conn) serve(ctx context.Context) {
	ss, rest, ok := c.handshake(ctx)
	if !ok {
		c.finish()
		return
	}
	go c.readLoop(context.Background(), ss, rest)
}

// handshake reads hello, opens or resumes the session and writes welcome.
// It returns the session and the frames that came after hello in the same
// message. On failure it has closed the connection (but not finished it)
// and returns false.
func (c *conn) handshake(ctx context.Context) (*session, []*wsproto.Frame, bool) {
	srv := c.srv
	c.ws.SetReadLimit(srv.cfg.MaxMessageBytes)
	timeout := srv.cfg.HelloTimeout
	if c.key == nil {
		timeout = srv.cfg.AnonHelloTimeout
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(timeout))

	typ, msg, err := c.ws.ReadMessage()
	srv.endPending(c)
	if err != nil {
		c.readFailed(err, true)
		return nil, nil, false
	}
	if c.closing.Load() { // shut down meanwhile
		c.drainUntilClosed()
		return nil, nil, false
	}
	frames, err := decode(typ, msg)
	if err == nil && frames[0].Type != wsproto.TypeHello {
		err = errors.New("the first frame must be hello")
	}
	if err != nil {
		c.writeFatalNow(filehub.EINVALID, err.Error(), wsproto.CloseProtocolError)
		return nil, nil, false
	}
	srv.metrics.frameIn(wsproto.TypeHello)
	ss, welcome, ok := c.hello(ctx, frames[0])
	if !ok {
		return nil, nil, false
	}
	if err := c.writeFrames(welcome); err != nil {
		c.closeNow(websocket.CloseGoingAway, "")
		// The session is attached: finish detaches it.
		return nil, nil, false
	}
	srv.metrics.frameOut(wsproto.TypeWelcome, 1)
	srv.metrics.connections.WithLabelValues(connAccepted).Inc()
	c.touch()
	c.ping = time.AfterFunc(srv.cfg.PingInterval, c.sendPing)
	c.ws.SetPongHandler(c.pong)
	ss.welcomed(c)
	return ss, frames[1:], true
}

// readLoop reads and handles client messages until the connection ends,
// then finishes it.
func (c *conn) readLoop(ctx context.Context, ss *session, rest []*wsproto.Frame) {
	if len(rest) > 0 {
		ss.handle(ctx, c, rest)
	}
	c.reads(ctx, ss)
}

// reads is the read loop proper. It waits for the socket at the bottom of
// its goroutine, rather than deep in gorilla, so that an idle reader's stack
// is only what the wait needs: a reader that has never handled more than
// its hello stays on the smallest stack.
func (c *conn) reads(ctx context.Context, ss *session) {
	for {
		if c.lazy != nil && c.lazy.idle() {
			c.lazy.fill()
		}
		if !c.readOne(ctx, ss) {
			c.finish()
			return
		}
	}
}

// readOne reads and handles one client message. It returns false when the
// connection has ended.
func (c *conn) readOne(ctx context.Context, ss *session) bool {
	typ, msg, err := c.ws.ReadMessage()
	if err != nil {
		c.readFailed(err, false)
		return false
	}
	if c.closing.Load() || c.failed.Load() {
		return true // draining until the client's close frame
	}
	c.touch()
	frames, err := decode(typ, msg)
	if err != nil {
		c.fail(filehub.EINVALID, err.Error(), wsproto.CloseProtocolError)
		return true
	}
	ss.handle(ctx, c, frames)
	return true
}

func decode(typ int, msg []byte) ([]*wsproto.Frame, error) {
	if typ != websocket.TextMessage {
		return nil, errors.New("protocol error: binary messages are not allowed")
	}
	return wsproto.Decode(msg)
}

// touch extends the read deadline after something was received.
func (c *conn) touch() {
	_ = c.ws.SetReadDeadline(time.Now().Add(c.window()))
	if c.closing.Load() || c.failed.Load() {
		// A concurrent close set a short deadline that we may just have
		// overwritten: restore it.
		_ = c.ws.SetReadDeadline(time.Unix(0, c.closeDeadline.Load()))
	}
}

// readFailed handles the error that ends the read loop.
func (c *conn) readFailed(err error, inHello bool) {
	var ne net.Error
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has sent close 1009. Read what is left of the oversize
		// message so that closing the socket does not reset it before the
		// client has read the close frame.
		c.closing.Store(true)
		nc := c.ws.NetConn()
		_ = nc.SetReadDeadline(time.Now().Add(closeGrace))
		_, _ = io.CopyN(io.Discard, nc, 2*c.srv.cfg.MaxMessageBytes)
	case c.closing.Load() || c.failed.Load():
		// Our own close, completed or timed out.
	case errors.As(err, &ne) && ne.Timeout():
		if inHello {
			c.srv.metrics.connections.WithLabelValues(connHelloTimeout).Inc()
			c.closeNow(wsproto.CloseHelloTimeout, "no hello within the hello timeout")
		} else {
			c.srv.log.Debug("websocket connection silent for too long; closing it, keeping the session", "window", c.window())
		}
	default:
		c.srv.log.Debug("websocket connection ended", "err", err)
	}
}

// finish releases everything the connection holds.
func (c *conn) finish() {
	c.closing.Store(true)
	if c.ping != nil {
		c.ping.Stop()
	}
	_ = c.ws.NetConn().Close()
	if c.lazy != nil {
		c.lazy.release() // finish runs on the reader: nothing reads any more
	}
	if ss := c.sess; ss != nil {
		ss.detach(c)
	}
	c.srv.release(c)
}

// hello authenticates, opens or resumes the session and returns it with the
// welcome frame. On failure it has closed the connection and returns false.
func (c *conn) hello(ctx context.Context, h *wsproto.Frame) (*session, *wsproto.Frame, bool) {
	srv := c.srv
	if c.key == nil {
		key, hash, err := srv.auth.Authenticate(ctx, c.addr, h.Token, missingCredentials)
		if err == nil && !canOpen(key) {
			err = filehub.Errorf(filehub.EFORBIDDEN, "this key cannot open WebSocket sessions (it needs the read or write scope)")
		}
		if err != nil {
			result, code := connUnauthorized, wsproto.CloseAuthFailed
			switch filehub.ErrorCode(err) {
			case filehub.EFORBIDDEN:
				result = connForbidden
			case filehub.ERATELIMIT:
				// Too many failed attempts from this address: a
				// later try may work, so it is not the permanent 4001.
				result, code = connTooMany, websocket.CloseTryAgainLater
			case filehub.EUNAVAILABLE, filehub.EINTERNAL:
				result, code = connUnavailable, websocket.CloseTryAgainLater
			}
			srv.metrics.connections.WithLabelValues(result).Inc()
			c.writeFatalNow(filehub.ErrorCode(err), filehub.ErrorMessage(err), code)
			return nil, nil, false
		}
		if !srv.countKey(c, key.ID) {
			srv.metrics.connections.WithLabelValues(connTooMany).Inc()
			c.writeFatalNow(filehub.ERATELIMIT, "too many WebSocket connections for this key", wsproto.CloseTooManyConns)
			return nil, nil, false
		}
		c.key, c.hash = key, hash
	}
	ss, welcome, err := srv.openSession(ctx, c, h)
	switch filehub.ErrorCode(err) {
	case filehub.ERATELIMIT:
		srv.metrics.connections.WithLabelValues(connTooMany).Inc()
		c.writeFatalNow(filehub.ERATELIMIT, filehub.ErrorMessage(err), wsproto.CloseTooManyConns)
		return nil, nil, false
	case filehub.EUNAVAILABLE:
		// The session store failed: a later try may work.
		srv.log.Warn("websocket hello failed", "err", err)
		srv.metrics.connections.WithLabelValues(connUnavailable).Inc()
		c.writeFatalNow(filehub.EUNAVAILABLE, filehub.ErrorMessage(err), websocket.CloseTryAgainLater)
		return nil, nil, false
	}
	if err != nil {
		c.writeFatalNow(filehub.EINVALID, err.Error(), wsproto.CloseProtocolError)
		return nil, nil, false
	}
	return ss, welcome, true
}

// writeFrames writes frames as one message. Only for the hello phase, when
// no writer goroutine can exist.
func (c *conn) writeFrames(frames ...*wsproto.Frame) error {
	b, err := wsproto.Encode(nil, frames...)
	if err != nil {
		return err
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(closeGrace + c.srv.cfg.PongTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// writeFatalNow writes an error frame and closes, in the hello phase.
func (c *conn) writeFatalNow(code, msg string, closeCode int) {
	if c.writeFrames(&wsproto.Frame{Type: wsproto.TypeError, Code: code, Message: msg}) == nil {
		c.srv.metrics.frameOut(wsproto.TypeError, 1)
	}
	c.closeNow(closeCode, msg)
	c.drainUntilClosed()
}

// drainUntilClosed reads until the client answers the close frame or the
// grace period ends.
func (c *conn) drainUntilClosed() {
	for {
		if _, _, err := c.ws.ReadMessage(); err != nil {
			return
		}
	}
}

// closeNow sends a close frame with code and makes the reader give up
// within closeGrace. It is safe to call from any goroutine, more than once.
func (c *conn) closeNow(code int, text string) {
	c.closeOnce.Do(func() {
		deadline := time.Now().Add(closeGrace)
		c.closeDeadline.Store(deadline.UnixNano())
		c.closing.Store(true)
		if len(text) > 120 {
			text = text[:120] // a close frame's payload is at most 125 bytes
		}
		if err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline); err != nil {
			_ = c.ws.NetConn().Close()
			return
		}
		_ = c.ws.SetReadDeadline(deadline)
	})
}

// fail sends an error frame through the writer, then closes with
// closeCode. It is safe to call from any goroutine once the connection is
// attached to a session.
func (c *conn) fail(code, msg string, closeCode int) {
	ss := c.sess
	ss.mu.Lock()
	if c.fatal == nil && !c.closing.Load() {
		c.fatal = &wsproto.Frame{Type: wsproto.TypeError, Code: code, Message: msg}
		c.fatalCode = closeCode
	}
	ss.kickLocked(c)
	ss.mu.Unlock()
	// Should the writer be stuck on a client that does not read, the
	// reader still ends within closeGrace (and closes the socket, which
	// unblocks the writer).
	deadline := time.Now().Add(closeGrace + c.srv.cfg.PongTimeout)
	if !c.closing.Load() {
		c.closeDeadline.Store(deadline.UnixNano())
	}
	c.failed.Store(true)
	_ = c.ws.SetReadDeadline(time.Unix(0, c.closeDeadline.Load()))
}

// sendPing is the ping timer's function.
func (c *conn) sendPing() {
	if c.closing.Load() {
		return
	}
	var payload [8]byte
	binary.BigEndian.PutUint64(payload[:], uint64(time.Now().UnixNano()))
	// A failure means the connection is broken or backed up; the read
	// deadline will end it.
	_ = c.ws.WriteControl(websocket.PingMessage, payload[:], time.Now().Add(c.srv.cfg.PongTimeout))
	c.ping.Reset(c.srv.cfg.PingInterval)
}

// pong is the pong handler (it runs on the reader).
func (c *conn) pong(data string) error {
	c.touch()
	if len(data) == 8 {
		sent := int64(binary.BigEndian.Uint64([]byte(data)))
		if rtt := time.Now().UnixNano() - sent; rtt >= 0 && rtt < int64(time.Hour) {
			c.srv.metrics.pingRTT.Observe(time.Duration(rtt).Seconds())
		}
	}
	return nil
}
