package wsclient

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// run is the connection goroutine: it connects, serves the connection until
// it fails, waits a jittered backoff and does it again, until the client is
// closed or fails permanently. It alone changes the state.
func (c *Client) run() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.deliver()
	}()
	defer func() {
		wg.Wait()
		close(c.done)
	}()

	firstDone := false
	reportFirst := func(err error) {
		if !firstDone {
			firstDone = true
			c.first <- err
		}
	}
	everConnected := false
	stable := c.opts.Backoff.withDefaults().Max
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			c.m.attempts.Inc()
		}
		c.mu.Lock()
		c.accountLocked()
		c.mu.Unlock()
		conn, err := c.connect()
		if err == nil {
			if attempt > 0 {
				c.m.successes.Inc()
			}
			everConnected = true
			c.setState(StateConnected)
			reportFirst(nil)
			start := time.Now()
			err = c.serve(conn)
			// Start over at the initial interval only after a connection
			// that lasted: one that a server accepts and then drops at
			// once (overload, a crash loop) must not be hammered.
			if time.Since(start) >= stable {
				c.jitter.reset()
			}
		} else if attempt > 0 {
			c.m.failedRetries.Inc()
		}
		if c.ctx.Err() != nil {
			c.stop(ErrClosed)
			reportFirst(ErrClosed)
			c.setState(StateClosed)
			return
		}
		var ce *ConnError
		if errors.As(err, &ce) && ce.Permanent {
			c.log.Warn("wsclient: permanent failure, not reconnecting", "err", err)
			c.stop(err)
			reportFirst(err)
			c.setState(StateClosed)
			return
		}
		c.mu.Lock()
		c.lastErr = err
		c.mu.Unlock()
		c.log.Info("wsclient: connection failed, reconnecting", "err", err)
		if everConnected {
			c.setState(StateReconnecting)
		}
		t := time.NewTimer(c.jitter.next())
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
	}
}

// connState is what the reader and writer of one connection share.
type connState struct {
	conn     *websocket.Conn
	stop     chan struct{} // closed to stop the writer
	errFrame *wsproto.Frame
	mu       sync.Mutex // guards errFrame
}

// connect dials, says hello and applies the welcome. It returns a
// connection ready to serve.
func (c *Client) connect() (*connState, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.HandshakeTimeout)
	defer cancel()
	conn, resp, err := c.dialer.DialContext(ctx, c.url, c.header)
	if err != nil {
		if resp != nil {
			return nil, statusError(resp.StatusCode, readBody(resp))
		}
		return nil, err
	}
	cs := &connState{conn: conn, stop: make(chan struct{})}
	if p := conn.Subprotocol(); p != wsproto.Subprotocol {
		_ = conn.Close()
		return nil, &ConnError{Status: resp.StatusCode, Code: filehub.EINVALID, Permanent: true,
			Message: fmt.Sprintf("server chose subprotocol %q, want %q", p, wsproto.Subprotocol)}
	}
	deadline, _ := ctx.Deadline()
	// Closing the connection is what unblocks a read or write when Close is
	// called during the handshake.
	stopWatch := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stopWatch()

	c.mu.Lock()
	conn.SetReadLimit(c.maxMessage)
	hello := &wsproto.Frame{Type: wsproto.TypeHello, SessionID: c.sessionID, ResumeToken: c.resumeToken}
	if c.sessionID != "" {
		// The spec asks for the last seq received in order; we send the
		// last one handed to the application, which is never more. Frames
		// received but not yet delivered are then sent again and dropped as
		// duplicates, but the server cannot open a new window of frames on
		// every reconnect while the application is not reading, so what
		// the client holds stays bounded by one server outbox.
		hello.LastSeq = c.delivered
	}
	c.mu.Unlock()
	if c.opts.TokenInHello {
		hello.Token = c.opts.Key
	}
	b, err := wsproto.Encode(nil, hello)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetWriteDeadline(deadline)
	if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	_ = conn.SetReadDeadline(deadline)
	var frames []*wsproto.Frame
	for len(frames) == 0 {
		frames, err = c.read(cs)
		if err != nil {
			_ = conn.Close()
			return nil, err
		}
		// An error frame comes just before the close; the next read
		// returns that close, which then carries the frame's code.
		if frames[0].Type == wsproto.TypeError {
			frames = frames[1:]
		}
	}
	w := frames[0]
	if w.Type != wsproto.TypeWelcome {
		err := protocolError(fmt.Errorf("%w: %s frame before welcome", wsproto.ErrProtocol, w.Type))
		c.closeWith(conn, wsproto.CloseProtocolError, "expected welcome")
		_ = conn.Close()
		return nil, err
	}
	if err := c.applyWelcome(w); err != nil {
		c.closeWith(conn, wsproto.CloseProtocolError, err.Error())
		_ = conn.Close()
		return nil, protocolError(err)
	}
	if err := c.handleFrames(cs, frames[1:]); err != nil {
		c.closeWith(conn, wsproto.CloseProtocolError, err.Error())
		_ = conn.Close()
		return nil, protocolError(err)
	}
	return cs, nil
}

// applyWelcome resumes the session, or starts a new one and fails what the
// lost one could not deliver (spec §5.3).
func (c *Client) applyWelcome(w *wsproto.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.HeartbeatMS > 0 {
		c.heartbeat = time.Duration(w.HeartbeatMS) * time.Millisecond
	}
	if w.MaxMessageBytes > 0 {
		c.maxMessage = w.MaxMessageBytes
	}
	lost := false
	if w.Resumed {
		if w.SessionID != c.sessionID {
			return fmt.Errorf("%w: resumed session %q, asked for %q", wsproto.ErrProtocol, w.SessionID, c.sessionID)
		}
		// Frames the server acknowledged are gone from the outbox; a
		// server that now claims fewer cannot get them back.
		if w.LastSeq < c.ackedSeq {
			return fmt.Errorf("%w: server resumed at seq %d after acknowledging %d", wsproto.ErrProtocol, w.LastSeq, c.ackedSeq)
		}
		if err := c.ackLocked(w.LastSeq); err != nil {
			return err
		}
	} else {
		lost = c.sessionID != ""
		c.epoch++
		c.recvSeq, c.delivered, c.ackSent, c.ackNeeded, c.ackedSeq = 0, 0, 0, false, 0
		c.renumberLocked(&SessionLostError{Reason: w.ResumeRefused})
	}
	c.sessionID, c.resumeToken = w.SessionID, w.ResumeToken
	if lost {
		c.m.sessionsLost.Inc()
		c.log.Warn("wsclient: session lost; a new one started", "session", w.SessionID, "reason", w.ResumeRefused)
		if c.sub != nil {
			select {
			case c.sub.lost <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// renumberLocked prepares the outbox for a new session: frames that were
// transmitted in the old session fail with lost, an ErrSessionLost (they may have
// been processed; sending them again could run them twice), frames never
// transmitted are renumbered from 1 and go out in the new session. Calls
// waiting for the old session's responses fail too, unless the response
// already arrived.
func (c *Client) renumberLocked(lost error) {
	var keep []*outFrame
	for _, of := range c.outbox {
		if of.sent {
			c.failLocked(of, lost)
			continue
		}
		keep = append(keep, of)
	}
	c.sendSeq = 0
	for _, of := range keep {
		c.sendSeq++
		of.f.Seq = c.sendSeq
		of.b, _ = wsproto.AppendFrame(of.b[:0], of.f) // it encoded before: cannot fail
	}
	clear(c.outbox)
	c.outbox = keep
	answered := make(map[string]bool)
	for _, it := range c.inbox {
		if it.f.Type == wsproto.TypeRes {
			answered[it.f.ID] = true
		}
	}
	waiting := make(map[string]bool)
	for _, of := range keep {
		if of.call != nil {
			waiting[of.call.id] = true
		}
	}
	for id, cl := range c.calls {
		if !answered[id] && !waiting[id] {
			c.failCallLocked(cl, lost)
		}
	}
	c.freeRoomLocked()
}

// serve runs the reader and the writer of one connection until it fails or
// the client is closed.
func (c *Client) serve(cs *connState) error {
	errc := make(chan error, 2)
	go func() { errc <- c.reader(cs) }()
	go func() { errc <- c.writer(cs) }()
	running := 2
	var err error
	select {
	case err = <-errc:
		running--
	case <-c.ctx.Done():
		// Say goodbye properly, and give the server a moment to answer the
		// close so the reader sees the handshake end.
		_ = cs.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(c.opts.WriteTimeout))
		t := time.NewTimer(closeWait)
		select {
		case err = <-errc:
			running--
		case <-t.C:
		}
		t.Stop()
	}
	close(cs.stop)
	_ = cs.conn.Close()
	for ; running > 0; running-- {
		_ = <-errc // the first error, the one that ended the connection, is err
	}
	return err
}

// read reads one message and decodes it. Errors are classified: a
// *ConnError for closes and protocol violations, anything else is a
// transient network failure.
func (c *Client) read(cs *connState) ([]*wsproto.Frame, error) {
	typ, data, err := cs.conn.ReadMessage()
	if err != nil {
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			cs.mu.Lock()
			ef := cs.errFrame
			cs.mu.Unlock()
			return nil, closeError(ce.Code, ce.Text, ef)
		case errors.Is(err, websocket.ErrReadLimit):
			// gorilla has already closed with 1009.
			return nil, &ConnError{CloseCode: wsproto.CloseMessageTooBig, Code: filehub.ETOOLARGE,
				Message: "server sent a message over the limit", Permanent: true}
		}
		return nil, err
	}
	if typ != websocket.TextMessage {
		c.closeWith(cs.conn, wsproto.CloseProtocolError, "binary message")
		return nil, protocolError(errBinary)
	}
	frames, err := wsproto.Decode(data)
	if err != nil {
		c.closeWith(cs.conn, wsproto.CloseProtocolError, "bad frame")
		return nil, protocolError(err)
	}
	for _, f := range frames {
		if f.Type == wsproto.TypeError {
			cs.mu.Lock()
			cs.errFrame = f
			cs.mu.Unlock()
		}
	}
	return frames, nil
}

func (c *Client) closeWith(conn *websocket.Conn, code int, text string) {
	if len(text) > 120 { // a close reason must fit a control frame
		text = text[:120]
	}
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text),
		time.Now().Add(c.opts.WriteTimeout))
}

// reader reads until the connection fails. Anything received — a message, a
// ping, a pong — proves the connection alive and pushes the read deadline
// to heartbeat + pong timeout from now (spec §6).
func (c *Client) reader(cs *connState) error {
	c.mu.Lock()
	live := c.heartbeat + c.opts.PongTimeout
	cs.conn.SetReadLimit(c.maxMessage)
	c.mu.Unlock()
	conn := cs.conn
	alive := func() { _ = conn.SetReadDeadline(time.Now().Add(live)) }
	alive()
	conn.SetPongHandler(func(string) error { alive(); return nil })
	conn.SetPingHandler(func(data string) error {
		alive()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.opts.WriteTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	for {
		frames, err := c.read(cs)
		if err != nil {
			return err
		}
		alive()
		if err := c.handleFrames(cs, frames); err != nil {
			c.closeWith(conn, wsproto.CloseProtocolError, err.Error())
			return protocolError(err)
		}
	}
}

// handleFrames applies acks and queues reliable frames for delivery, in
// sequence order, dropping duplicates from replays.
func (c *Client) handleFrames(cs *connState, frames []*wsproto.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	queued, ack := false, false
	for _, f := range frames {
		if f.Ack > 0 {
			if err := c.ackLocked(f.Ack); err != nil {
				return err
			}
		}
		switch f.Type {
		case wsproto.TypeAck, wsproto.TypeError:
			continue
		case wsproto.TypeMsg, wsproto.TypeRes, wsproto.TypeEvent:
		default:
			return fmt.Errorf("%w: unexpected %s frame from server", wsproto.ErrProtocol, f.Type)
		}
		switch {
		case f.Seq <= c.recvSeq:
			// A replay of something we have: drop it, but make sure the
			// server hears the ack again.
			c.ackNeeded, ack = true, true
		case f.Seq > c.recvSeq+1:
			return fmt.Errorf("%w: server seq %d after %d", wsproto.ErrProtocol, f.Seq, c.recvSeq)
		default:
			c.recvSeq = f.Seq
			c.inbox = append(c.inbox, inItem{epoch: c.epoch, f: f})
			queued = true
		}
	}
	if queued {
		select {
		case c.inboxWake <- struct{}{}:
		default:
		}
	}
	if ack {
		c.wakeWriter()
	}
	return nil
}

// writer sends outbox frames not yet sent on this connection, acks, and
// pings at the heartbeat interval, until the connection fails or cs.stop is
// closed.
func (c *Client) writer(cs *connState) error {
	c.mu.Lock()
	hb := c.heartbeat
	c.mu.Unlock()
	tick := time.NewTicker(hb)
	defer tick.Stop()
	// A lone ack may wait up to ackDelay for a frame to ride on (spec §4),
	// which saves a message per delivered frame under load.
	ackTimer := time.NewTimer(ackDelay)
	ackTimer.Stop()
	ackArmed, forceAck := false, false
	var written int64 // last seq written on this connection
	var buf []byte
	for {
		var ackDue bool
		buf, ackDue = c.collect(buf[:0], &written, forceAck)
		forceAck = false
		if len(buf) > 0 {
			_ = cs.conn.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
			if err := cs.conn.WriteMessage(websocket.TextMessage, buf); err != nil {
				return err
			}
			continue
		}
		if ackDue && !ackArmed {
			ackArmed = true
			ackTimer.Reset(ackDelay)
		}
		select {
		case <-cs.stop:
			ackTimer.Stop()
			return nil
		case <-c.wake:
			// Concurrent Sends arrive together (one ack from the server
			// releases several waiting senders), but the first wakes the
			// writer at once. Yielding once lets the others that are ready
			// to run enqueue first, so they share a message and its
			// system call: 1.2-1.5 frames per message before, 9-14 after.
			runtime.Gosched()
		case <-ackTimer.C:
			ackArmed, forceAck = false, true
		case <-tick.C:
			c.mu.Lock()
			c.accountLocked()
			c.mu.Unlock()
			if err := cs.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.opts.WriteTimeout)); err != nil {
				return err
			}
		}
	}
}

// Ack coalescing limits of spec §4.
const (
	ackDelay     = 20 * time.Millisecond
	ackMaxFrames = 64
)

// collect appends to buf the next message to write: the outbox frames after
// *written, up to the message size limit, and an ack if one is due. An ack
// alone is only sent when forced, after ackMaxFrames deliveries, or to
// answer a duplicate; otherwise collect reports it as still due.
func (c *Client) collect(buf []byte, written *int64, force bool) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if len(c.outbox) > 0 {
		// The outbox holds consecutive seqs, so the next frame is found by
		// arithmetic rather than a scan.
		i := max(0, int(*written-c.outbox[0].f.Seq+1))
		for ; i < len(c.outbox); i++ {
			of := c.outbox[i]
			if len(buf) > 0 && int64(len(buf)+1+len(of.b)+32) > c.maxMessage {
				break // 32: room for the ack frame
			}
			if len(buf) > 0 {
				buf = append(buf, '\n')
			}
			buf = append(buf, of.b...)
			*written = of.f.Seq
			if !of.sent {
				of.sent, of.firstSent = true, now
			}
		}
	}
	due := c.delivered > 0 && (c.delivered > c.ackSent || c.ackNeeded)
	if !due {
		return buf, false
	}
	if len(buf) == 0 && !force && !c.ackNeeded && c.delivered-c.ackSent < ackMaxFrames {
		return buf, true
	}
	if len(buf) > 0 {
		buf = append(buf, '\n')
	}
	buf, _ = wsproto.AppendFrame(buf, &wsproto.Frame{Type: wsproto.TypeAck, Ack: c.delivered})
	c.ackSent, c.ackNeeded = c.delivered, false
	return buf, false
}

// deliver hands received frames to the application in sequence order and
// records what it handed over, which is what the acks report.
func (c *Client) deliver() {
	if c.messages != nil {
		defer close(c.messages)
	}
	for {
		c.mu.Lock()
		for len(c.inbox) == 0 {
			c.mu.Unlock()
			select {
			case <-c.inboxWake:
			case <-c.ctx.Done():
				return
			}
			c.mu.Lock()
		}
		it := c.inbox[0]
		c.inbox[0] = inItem{}
		c.inbox = c.inbox[1:]
		sub := c.sub
		var cl *call
		if it.f.Type == wsproto.TypeRes {
			cl = c.calls[it.f.ID]
			delete(c.calls, it.f.ID)
			// Events that follow the response to our subscribe belong to
			// this subscription; those before it to an older one.
			if sub != nil && sub.callID == it.f.ID && it.f.Error == nil {
				sub.active = true
			}
		}
		active := sub != nil && sub.active
		c.mu.Unlock()

		switch it.f.Type {
		case wsproto.TypeRes:
			if cl != nil {
				r := callResult{result: it.f.Result}
				if it.f.Error != nil {
					r.err = resError(it.f.Error)
				}
				cl.res <- r
			}
		case wsproto.TypeMsg:
			if c.messages != nil {
				select {
				case c.messages <- it.f.Data:
				case <-c.ctx.Done():
					return
				}
			}
		case wsproto.TypeEvent:
			if active && !sub.offer(c.ctx, it.f.Event) {
				return
			}
		}

		c.mu.Lock()
		if it.epoch == c.epoch && it.f.Seq > c.delivered {
			c.delivered = it.f.Seq
		}
		c.mu.Unlock()
		c.wakeWriter()
	}
}
