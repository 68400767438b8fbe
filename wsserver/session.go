package wsserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// outFrame is a reliable server frame kept until the client acknowledges it.
type outFrame struct {
	seq  int64
	data []byte    // the encoded frame (msg, res)
	ev   *hubEvent // or: an event, encoded with seq at write time
	sent int64     // unix nanos of the first write, 0 before
}

// session is the state that outlives connections (protocol §5.1).
type session struct {
	srv     *Server
	id      string
	keyID   string
	keyHash []byte

	// procMu serializes the processing of client frames: handle holds it
	// for a whole message, and resume takes it before it computes the
	// welcome. A connection that was taken over may still be processing a
	// frame it had read; resume waits for that frame to finish so that the
	// welcome's last_seq counts it, and the old connection processes
	// nothing after it (it no longer owns the session). Without this the
	// client's replay of such a frame would be taken as new and the frame
	// processed twice. Lock order: procMu before mu.
	procMu sync.Mutex

	mu        sync.Mutex
	key       *filehub.APIKey // scopes; refreshed by key re-checks
	tokenHash []byte          // SHA-256 of the current resume token
	// prevTokenHash is the hash of the token the last resume presented. It
	// stays valid until the client sends a frame on the new connection:
	// the client may have lost the connection before it read the welcome
	// carrying the new token (protocol §5.2).
	prevTokenHash []byte
	conn          *conn // nil while detached
	detachedAt    time.Time
	dropped       bool

	// Durable sessions (Config.Sessions); see durable.go. inSaved and
	// outSaved are the durable marks: acks never exceed inSaved, and the
	// writer writes no frame above outSaved.
	epoch     int64
	inSaved   int64
	outSaved  int64
	outQueued int64 // highest server seq handed to a save
	ver       int64 // counts changes (markDirtyLocked)
	savedVer  int64 // the ver the last successful save covered
	savedAt   time.Time
	fenced    bool // another instance claimed the session
	queued    bool // in the committer's dirty list; guarded by committer.mu

	// Client → server.
	inSeq        int64 // last client seq processed
	inRecv       int64 // last client seq received (processed or in backlog)
	ackSent      int64 // last ack written to the client
	clientAcked  int64 // highest ack (or resume last_seq) from the client
	backlog      []*wsproto.Frame
	backlogBytes int
	ackTimer     *time.Timer
	ackArmed     bool

	// Server → client.
	outSeq   int64
	out      []outFrame // unacknowledged frames, out[head:], seqs contiguous
	head     int
	next     int64 // seq of the next frame to write on this connection
	outCount int   // counted (msg, res) frames and their bytes
	outBytes int
	evCount  int // unacknowledged event frames

	fullSince time.Time
	slowTimer *time.Timer

	// Event subscription.
	subscribed bool
	evCursor   int64 // id of the last event put in the outbox
	evTarget   int64 // latest event id known at subscribe time

	results *sessionResults // in srv.results, guarded by its lock; the pointer by mu
}

func newToken() []byte {
	var b [32]byte
	rand.Read(b[:])
	return []byte(base64.RawURLEncoding.EncodeToString(b[:]))
}

func hashToken(t []byte) []byte {
	h := sha256.Sum256(t)
	return h[:]
}

// tokenMatches reports whether presented is the current or the previous
// resume token, in constant time.
func (ss *session) tokenMatchesLocked(presented []byte) bool {
	h := hashToken(presented)
	current := subtle.ConstantTimeCompare(ss.tokenHash, h) == 1
	previous := subtle.ConstantTimeCompare(ss.prevTokenHash, h) == 1
	return current || previous
}

// openSession creates or resumes the session hello asks for, attaches c to
// it (not yet welcomed) and returns the welcome frame. An error with code
// ERATELIMIT or EUNAVAILABLE refuses the hello; any other error means a
// protocol violation.
func (srv *Server) openSession(ctx context.Context, c *conn, h *wsproto.Frame) (*session, *wsproto.Frame, error) {
	now := time.Now()
	refused := ""
	if h.SessionID != "" {
		var ss *session
		var welcome *wsproto.Frame
		var err error
		if srv.durable() {
			ss, welcome, refused, err = srv.resumeDurable(ctx, c, h, now)
		} else {
			ss, welcome, refused, err = srv.resumeMemory(c, h, now)
		}
		if err != nil {
			return nil, nil, err
		}
		if ss != nil {
			srv.metrics.resumes.WithLabelValues(resumeResumed).Inc()
			return ss, welcome, nil
		}
		srv.metrics.resumes.WithLabelValues(refused).Inc()
	}
	token := newToken()
	ss := &session{
		srv:       srv,
		id:        filehub.NewID("s_"),
		keyID:     c.key.ID,
		keyHash:   c.hash,
		key:       c.key,
		tokenHash: hashToken(token),
		next:      1,
	}
	if srv.durable() {
		if err := srv.createDurable(ctx, ss, now); err != nil {
			return nil, nil, err
		}
	}
	srv.mu.Lock()
	if !srv.durable() && srv.sessKey[ss.keyID] >= srv.cfg.MaxSessionsPerKey {
		srv.mu.Unlock()
		return nil, nil, tooManySessions(srv.cfg.MaxSessionsPerKey)
	}
	// Attached before it is registered: others read conn under ss.mu only
	// once they can find the session.
	ss.conn = c
	c.sess = ss
	srv.sessKey[ss.keyID]++
	srv.sessions[ss.id] = ss
	srv.mu.Unlock()
	srv.metrics.sessions.Add(1)
	srv.metrics.connected.Add(1)
	w := ss.welcomeFrame(false, token)
	w.ResumeRefused = refused
	return ss, w, nil
}

func tooManySessions(limit int) error {
	return filehub.Errorf(filehub.ERATELIMIT,
		"too many WebSocket sessions for this key (limit %d); resume one or wait for one to expire", limit)
}

// resumeMemory resumes a session this process holds (the in-memory mode).
// It returns the session, or the reason of a refusal.
func (srv *Server) resumeMemory(c *conn, h *wsproto.Frame, now time.Time) (*session, *wsproto.Frame, string, error) {
	srv.mu.Lock()
	ss := srv.sessions[h.SessionID]
	srv.mu.Unlock()
	if ss == nil {
		return nil, nil, wsproto.RefusedUnknown, nil
	}
	welcome, res, err := ss.resume(c, h, now)
	if err != nil || res != resumeResumed {
		return nil, nil, res, err
	}
	return ss, welcome, "", nil
}

func (ss *session) welcomeFrame(resumed bool, token []byte) *wsproto.Frame {
	cfg := &ss.srv.cfg
	return &wsproto.Frame{
		Type: wsproto.TypeWelcome, SessionID: ss.id, ResumeToken: string(token),
		Resumed: resumed, LastSeq: ss.inSeq,
		HeartbeatMS: cfg.PingInterval.Milliseconds(), SessionTTLMS: cfg.SessionTTL.Milliseconds(),
		MaxMessageBytes: cfg.MaxMessageBytes,
	}
}

// resume attaches c to ss if h presents the right key and token (§5.2).
// It returns the result for the metrics (a wsproto.Refused* reason when
// refused); only resumeResumed attached c.
func (ss *session) resume(c *conn, h *wsproto.Frame, now time.Time) (*wsproto.Frame, string, error) {
	ss.mu.Lock()
	// Compare the tokens even for the wrong key, so timing tells nothing.
	presented := []byte(h.ResumeToken)
	match := ss.tokenMatchesLocked(presented)
	switch {
	case ss.dropped || ss.expiredLocked(now):
		ss.mu.Unlock()
		return nil, resumeExpired, nil
	case !match || ss.keyID != c.key.ID:
		ss.mu.Unlock()
		return nil, resumeBadToken, nil
	case h.LastSeq > ss.outSeq:
		ss.mu.Unlock()
		return nil, "", fmt.Errorf("protocol error: last_seq %d is beyond the last frame sent (%d)", h.LastSeq, ss.outSeq)
	case h.LastSeq < ss.clientAcked:
		// The frames up to the ack are gone: they cannot be sent again.
		ss.mu.Unlock()
		return nil, "", fmt.Errorf("protocol error: last_seq %d is below %d, which the client has acknowledged", h.LastSeq, ss.clientAcked)
	}
	old := ss.conn
	if old == nil {
		ss.srv.metrics.connected.Add(1)
	}
	// From here on the old connection owns nothing: its reader stops
	// after the frame it is processing, its writer at once.
	ss.conn = c
	c.sess = ss
	ss.mu.Unlock()
	if old != nil {
		// Takeover: the old connection is probably half-open.
		old.closeNow(wsproto.CloseTakenOver, "session taken over by a newer connection")
	}

	ss.procMu.Lock()
	defer ss.procMu.Unlock()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	switch {
	case ss.conn != c:
		// An even newer connection took the session over while this one
		// waited, and has closed this one with 4007. Write it a welcome
		// that changes nothing (its token resumes nothing): its frames
		// will be dropped.
		return ss.welcomeFrame(true, newToken()), resumeResumed, nil
	case ss.dropped:
		// Dropped while this one waited (key revoked, events trimmed).
		ss.conn = nil
		c.sess = nil
		ss.srv.metrics.connected.Add(-1)
		return nil, resumeExpired, nil
	}
	ss.ackLocked(h.LastSeq)
	// The presented token stays valid until the client shows, by sending
	// a frame on c, that it read the welcome with the new one.
	ss.prevTokenHash = hashToken(presented)
	token := newToken()
	ss.tokenHash = hashToken(token)
	ss.reattachLocked()
	return ss.welcomeFrame(true, token), resumeResumed, nil
}

// reattachLocked prepares the session for the connection it was just
// attached to.
func (ss *session) reattachLocked() {
	// Everything unacknowledged is re-sent on the new connection; the
	// client's unprocessed frames will be replayed by the client.
	ss.next = ss.outSeq + 1
	if ss.head < len(ss.out) {
		ss.next = ss.out[ss.head].seq
	}
	ss.backlog, ss.backlogBytes = nil, 0
	ss.inRecv = ss.inSeq
	ss.ackSent = 0 // make the writer confirm inSeq again
	// A slow-consumer clock started for a taken-over connection would
	// never fire (it checks the connection): start it again for c.
	if ss.slowTimer != nil {
		ss.slowTimer.Stop()
		ss.slowTimer = nil
	}
	ss.fullSince = time.Time{}
	if !ss.roomLocked() || ss.eventsBlockedLocked() {
		ss.markFullLocked()
	}
}

// welcomed lets c's writer start: the welcome has been written.
func (ss *session) welcomed(c *conn) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	c.welcomed = true
	ss.kickLocked(c)
}

// detach is called when c ends.
func (ss *session) detach(c *conn) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.conn != c {
		return
	}
	ss.conn = nil
	ss.detachedAt = time.Now()
	ss.markDirtyLocked() // the TTL runs from the saved DetachedAt
	ss.backlog, ss.backlogBytes = nil, 0
	ss.inRecv = ss.inSeq
	if ss.slowTimer != nil {
		ss.slowTimer.Stop()
		ss.slowTimer = nil
	}
	ss.fullSince = time.Time{}
	ss.srv.metrics.connected.Add(-1)
}

func (ss *session) expired(now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.expiredLocked(now)
}

func (ss *session) expiredLocked(now time.Time) bool {
	return ss.conn == nil && !ss.detachedAt.IsZero() && now.Sub(ss.detachedAt) > ss.srv.cfg.SessionTTL
}

// drop releases the session's resources after it left the registry.
func (ss *session) drop() {
	ss.srv.hub.unsubscribe(ss)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.dropped {
		return
	}
	ss.dropped = true
	ss.srv.metrics.outboxDepth.Add(-int64(len(ss.out) - ss.head))
	ss.out, ss.head = nil, 0
	ss.srv.results.release(ss.results)
	ss.results = nil
	if ss.ackTimer != nil {
		ss.ackTimer.Stop()
	}
}

func (ss *session) setKey(k *filehub.APIKey) {
	ss.mu.Lock()
	ss.key = k
	ss.mu.Unlock()
}

// fail sends an error frame and closes the session's connection, if any.
func (ss *session) fail(code, msg string, closeCode int) {
	ss.mu.Lock()
	c := ss.conn
	ss.mu.Unlock()
	if c != nil {
		c.fail(code, msg, closeCode)
	}
}

// handle processes the frames of one client message, on the reader. It
// drops the frames of a connection that no longer owns the session.
func (ss *session) handle(ctx context.Context, c *conn, frames []*wsproto.Frame) {
	ss.procMu.Lock()
	defer ss.procMu.Unlock()
	ss.mu.Lock()
	owner := ss.conn == c
	if owner && ss.prevTokenHash != nil {
		// The client has the welcome of c, so its new token: the one the
		// resume presented is spent.
		ss.prevTokenHash = nil
		ss.markDirtyLocked()
	}
	ss.mu.Unlock()
	if !owner {
		return
	}
	m := ss.srv.metrics
	// Acks first: they may make room for the frames that follow.
	for _, f := range frames {
		m.frameIn(f.Type)
		if f.Type == wsproto.TypeHello {
			c.fail(filehub.EINVALID, "protocol error: hello on an open session", wsproto.CloseProtocolError)
			return
		}
		if f.Ack > 0 {
			if err := ss.ack(f.Ack); err != nil {
				c.fail(filehub.EINVALID, err.Error(), wsproto.CloseProtocolError)
				return
			}
		}
	}
	for _, f := range frames {
		if !wsproto.Reliable(f.Type) {
			continue
		}
		if f.Type != wsproto.TypeMsg && f.Type != wsproto.TypeReq {
			c.fail(filehub.EINVALID, "protocol error: clients may not send "+f.Type+" frames", wsproto.CloseProtocolError)
			return
		}
		ss.mu.Lock()
		switch {
		case ss.conn != c:
			// Taken over while the previous frame was processed: the new
			// connection's welcome counts that frame, and the client
			// replays the rest there.
			ss.mu.Unlock()
			return
		case f.Seq <= ss.inRecv:
			// A replayed duplicate: drop it, but acknowledge again.
			ss.ackSent = min(ss.ackSent, f.Seq-1)
			ss.mu.Unlock()
			continue
		case f.Seq > ss.inRecv+1:
			ss.mu.Unlock()
			c.fail(filehub.EINVALID, fmt.Sprintf("protocol error: seq %d after %d", f.Seq, ss.inRecv), wsproto.CloseProtocolError)
			return
		}
		ss.inRecv = f.Seq
		if len(ss.backlog) > 0 || !ss.roomLocked() {
			ss.backlog = append(ss.backlog, f)
			ss.backlogBytes += len(f.Data) + len(f.Params)
			over := len(ss.backlog) > ss.srv.cfg.OutboxMaxFrames || ss.backlogBytes > ss.srv.cfg.OutboxMaxBytes
			ss.markFullLocked()
			ss.mu.Unlock()
			if over {
				// The client keeps sending but does not acknowledge.
				ss.slowConsumer(c)
				return
			}
			continue
		}
		ss.mu.Unlock()
		if !ss.process(ctx, c, f) {
			return
		}
	}
	ss.drainBacklog(ctx, c)
	ss.scheduleAck(c)
}

// drainBacklog processes backlogged client frames while there is room.
func (ss *session) drainBacklog(ctx context.Context, c *conn) {
	for {
		ss.mu.Lock()
		if len(ss.backlog) == 0 || !ss.roomLocked() || ss.conn != c {
			ss.mu.Unlock()
			return
		}
		f := ss.backlog[0]
		ss.backlog[0] = nil
		ss.backlog = ss.backlog[1:]
		ss.backlogBytes -= len(f.Data) + len(f.Params)
		if len(ss.backlog) == 0 {
			ss.backlog = nil
		}
		ss.mu.Unlock()
		if !ss.process(ctx, c, f) {
			return
		}
	}
}

// process runs one in-order client frame. It returns false if the
// connection is being closed.
func (ss *session) process(ctx context.Context, c *conn, f *wsproto.Frame) bool {
	switch f.Type {
	case wsproto.TypeMsg:
		ss.mu.Lock()
		key := ss.key
		ss.mu.Unlock()
		if !key.Has(filehub.ScopeWrite) {
			c.fail(filehub.EFORBIDDEN, "this key lacks the \"write\" scope needed to send messages", wsproto.CloseAuthFailed)
			return false
		}
		reply, err := ss.srv.cfg.MessageHandler(ctx, Peer{SessionID: ss.id, KeyID: ss.keyID}, f.Data)
		if err != nil {
			ss.srv.log.Warn("websocket message handler failed", "session_id", ss.id, "err", err)
			reply = nil
		}
		var body []byte
		if reply != nil {
			body, err = msgBody(reply, sameBytes(reply, f.Data))
			if err != nil {
				ss.srv.log.Error("websocket message handler returned invalid JSON", "session_id", ss.id, "err", err)
			}
		}
		ss.mu.Lock()
		ss.advanceInLocked(f.Seq)
		if body != nil {
			ss.enqueueLocked(wsproto.TypeMsg, body)
		}
		ss.markDirtyLocked()
		ss.mu.Unlock()
	case wsproto.TypeReq:
		ss.request(ctx, f)
	}
	return true
}

// advanceInLocked records that client frame seq has been processed. Frames
// are processed in order, one at a time (procMu), so seq is inSeq+1; but
// inSeq must never go backwards, since the client drops what an ack or a
// welcome's last_seq covers.
func (ss *session) advanceInLocked(seq int64) {
	if seq > ss.inSeq {
		ss.inSeq = seq
	}
}

// sameBytes reports whether a and b are the same bytes in memory.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// msgBody returns the tail of a msg frame carrying data: `,"data":…}`.
// decoded says that data is a value Decode returned — an echo handler
// replies with the data it got — and so is known to be valid JSON: a
// second scan of every echoed message would cost more than the rest of its
// processing.
func msgBody(data json.RawMessage, decoded bool) ([]byte, error) {
	if !decoded && !json.Valid(data) {
		return nil, fmt.Errorf("invalid JSON reply")
	}
	if bytes.IndexByte(data, '\n') >= 0 || bytes.IndexByte(data, '\r') >= 0 {
		// Frames are separated by newlines: compact the reply.
		var buf bytes.Buffer
		if err := json.Compact(&buf, data); err != nil {
			return nil, err
		}
		data = buf.Bytes()
	}
	b := make([]byte, 0, len(data)+10)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}'), nil
}

// enqueueLocked appends a reliable frame of type typ whose encoding after
// the seq is body (starting with ',' and ending with '}') and wakes the
// writer.
func (ss *session) enqueueLocked(typ string, body []byte) {
	ss.outSeq++
	data := make([]byte, 0, len(typ)+len(body)+32)
	data = append(data, `{"type":"`...)
	data = append(data, typ...)
	data = append(data, `","seq":`...)
	data = strconv.AppendInt(data, ss.outSeq, 10)
	data = append(data, body...)
	ss.out = append(ss.out, outFrame{seq: ss.outSeq, data: data})
	ss.outCount++
	ss.outBytes += len(data)
	ss.srv.metrics.outboxDepth.Add(1)
	if !ss.roomLocked() {
		ss.markFullLocked()
	}
	if ss.conn != nil {
		ss.kickLocked(ss.conn)
	}
}

// roomLocked reports whether the outbox can take another msg or res.
func (ss *session) roomLocked() bool {
	cfg := &ss.srv.cfg
	return ss.outCount < cfg.OutboxMaxFrames && ss.outBytes < cfg.OutboxMaxBytes
}

// eventsWaitingLocked reports whether the session has events to send that
// its window cannot take.
func (ss *session) eventsBlockedLocked() bool {
	return ss.subscribed && ss.evCount >= ss.srv.cfg.OutboxMaxFrames &&
		ss.evCursor < max(ss.evTarget, ss.srv.hub.latest.Load())
}

// markFullLocked starts the slow-consumer clock.
func (ss *session) markFullLocked() {
	if !ss.fullSince.IsZero() || ss.conn == nil {
		return
	}
	ss.fullSince = time.Now()
	c := ss.conn
	ss.slowTimer = time.AfterFunc(ss.srv.cfg.SlowConsumerTimeout, func() {
		ss.mu.Lock()
		still := ss.conn == c && !ss.fullSince.IsZero()
		ss.mu.Unlock()
		if still {
			ss.slowConsumer(c)
		}
	})
}

// clearFullLocked stops the slow-consumer clock if there is room again.
func (ss *session) clearFullLocked() {
	if ss.fullSince.IsZero() || !ss.roomLocked() || len(ss.backlog) > 0 || ss.eventsBlockedLocked() {
		return
	}
	ss.fullSince = time.Time{}
	if ss.slowTimer != nil {
		ss.slowTimer.Stop()
		ss.slowTimer = nil
	}
}

// slowConsumer closes c with 4008, keeping the session for a resume.
func (ss *session) slowConsumer(c *conn) {
	ss.srv.metrics.slowConsumers.Inc()
	ss.srv.log.Info("closing the connection of a slow consumer", "session_id", ss.id, "key_id", ss.keyID)
	c.closeNow(wsproto.CloseSlowConsumer, "slow consumer: acknowledge faster, then resume")
}

// ack drops the frames the client acknowledged with n.
func (ss *session) ack(n int64) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if n > ss.outSeq {
		return fmt.Errorf("protocol error: ack %d is beyond the last frame sent (%d)", n, ss.outSeq)
	}
	hadEvents := ss.eventsBlockedLocked()
	if n > ss.clientAcked {
		// Saved lazily, with whatever comes next: it only lets the store
		// forget frames (a resume's last_seq drops them too).
		ss.markDirtyLocked()
	}
	ss.ackLocked(n)
	ss.clearFullLocked()
	if hadEvents && ss.conn != nil {
		ss.kickLocked(ss.conn)
	}
	return nil
}

func (ss *session) ackLocked(n int64) {
	ss.clientAcked = max(ss.clientAcked, n)
	var last *outFrame
	dropped := 0
	for ss.head < len(ss.out) && ss.out[ss.head].seq <= n {
		f := &ss.out[ss.head]
		if f.ev != nil {
			ss.evCount--
		} else {
			ss.outCount--
			ss.outBytes -= len(f.data)
		}
		last = f
		dropped++
		ss.head++
	}
	if dropped == 0 {
		return
	}
	if last.sent != 0 {
		ss.srv.metrics.ackLatency.Observe(time.Duration(time.Now().UnixNano() - last.sent).Seconds())
	}
	// Let acknowledged frames be collected.
	clear(ss.out[ss.head-dropped : ss.head])
	ss.srv.metrics.outboxDepth.Add(-int64(dropped))
	switch {
	case ss.head == len(ss.out):
		ss.out, ss.head = ss.out[:0], 0
		if cap(ss.out) > 64 {
			ss.out = nil // an idle session keeps no big array
		}
	case ss.head > 256 && ss.head*2 > len(ss.out):
		ss.out = append(ss.out[:0:0], ss.out[ss.head:]...)
		ss.head = 0
	}
	if ss.next <= n {
		ss.next = n + 1
	}
}

// scheduleAck makes sure processed client frames are acknowledged: at once
// after 64 frames, otherwise within 20ms (protocol §4).
func (ss *session) scheduleAck(c *conn) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	pending := ss.ackLimitLocked() - ss.ackSent
	if pending <= 0 || ss.conn != c {
		return
	}
	if pending >= 64 || c.writing {
		// A running writer sends the ack with its next message.
		ss.kickLocked(c)
		return
	}
	if ss.ackArmed {
		return
	}
	ss.ackArmed = true
	if ss.ackTimer == nil {
		ss.ackTimer = time.AfterFunc(ackDelay, ss.ackTimeout)
	} else {
		ss.ackTimer.Reset(ackDelay)
	}
}

// ackDelay is how long an ack may wait for a frame to ride on.
const ackDelay = 20 * time.Millisecond

func (ss *session) ackTimeout() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.ackArmed = false
	if ss.conn != nil && ss.ackLimitLocked() > ss.ackSent {
		ss.kickLocked(ss.conn)
	}
}

// kickLocked starts c's writer unless it runs already.
func (ss *session) kickLocked(c *conn) {
	if c.writing || !c.welcomed || ss.conn != c {
		return
	}
	c.writing = true
	go ss.writeLoop(c)
}

func (ss *session) kick() {
	ss.mu.Lock()
	if ss.conn != nil {
		ss.kickLocked(ss.conn)
	}
	ss.mu.Unlock()
}

// writeLoop writes queued frames to c until there is nothing left, then
// exits; see the package doc.
func (ss *session) writeLoop(c *conn) {
	var batch []outFrame
	var num []byte
	for {
		ss.mu.Lock()
		if ss.conn != c || c.closing.Load() {
			c.writing = false
			ss.mu.Unlock()
			return
		}
		if f := c.fatal; f != nil {
			code := c.fatalCode
			c.fatal = nil
			ss.mu.Unlock()
			if c.writeFrames(f) == nil {
				ss.srv.metrics.frameOut(wsproto.TypeError, 1)
			}
			c.closeNow(code, f.Message)
			ss.mu.Lock()
			c.writing = false
			ss.mu.Unlock()
			return
		}
		needStore := ss.fillEventsLocked()
		batch = ss.collectLocked(batch[:0])
		var ack int64
		if limit := ss.ackLimitLocked(); limit > ss.ackSent {
			ack, ss.ackSent = limit, limit
		}
		cursor := ss.evCursor
		room := ss.srv.cfg.OutboxMaxFrames - ss.evCount
		if len(batch) == 0 && ack == 0 && !needStore {
			c.writing = false
			ss.mu.Unlock()
			return
		}
		ss.mu.Unlock()

		if len(batch) > 0 || ack > 0 {
			if err := ss.write(c, batch, ack, &num); err != nil {
				ss.srv.log.Debug("websocket write failed", "session_id", ss.id, "err", err)
				_ = c.ws.NetConn().Close() // the reader notices and detaches
				ss.mu.Lock()
				c.writing = false
				ss.mu.Unlock()
				return
			}
		}
		if needStore && len(batch) == 0 && !ss.readEvents(c, cursor, room) {
			ss.mu.Lock()
			c.writing = false
			ss.mu.Unlock()
			return
		}
	}
}

// collectLocked appends the frames to write next to batch and marks them
// sent.
func (ss *session) collectLocked(batch []outFrame) []outFrame {
	if ss.head == len(ss.out) {
		return batch
	}
	first := ss.out[ss.head].seq
	i := ss.head + int(ss.next-first)
	now := time.Now().UnixNano()
	size := 0
	limit := ss.outLimitLocked()
	for ; i < len(ss.out) && size < maxBatchBytes && len(batch) < 512; i++ {
		f := &ss.out[i]
		if f.seq > limit {
			break // not saved yet: the committer kicks the writer when it is
		}
		if f.sent == 0 {
			f.sent = now
		}
		batch = append(batch, *f)
		if f.ev != nil {
			size += len(f.ev.json) + 40
		} else {
			size += len(f.data)
		}
		ss.next = f.seq + 1
	}
	return batch
}

// write writes batch and an ack (if ack > 0) as one message.
func (ss *session) write(c *conn, batch []outFrame, ack int64, num *[]byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(ss.srv.cfg.SlowConsumerTimeout))
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	var msgs, res, evs int
	for i := range batch {
		f := &batch[i]
		if i > 0 {
			if _, err := w.Write(newline); err != nil {
				return err
			}
		}
		if f.ev == nil {
			if _, err := w.Write(f.data); err != nil {
				return err
			}
			if bytes.HasPrefix(f.data, resPrefix) {
				res++
			} else {
				msgs++
			}
			continue
		}
		evs++
		b := append((*num)[:0], eventPrefix...)
		b = strconv.AppendInt(b, f.seq, 10)
		b = append(b, eventInfix...)
		for _, part := range [][]byte{b, f.ev.json, closeBrace} {
			if _, err := w.Write(part); err != nil {
				return err
			}
		}
		*num = b
	}
	if ack > 0 {
		b := (*num)[:0]
		if len(batch) > 0 {
			b = append(b, newline...)
		}
		b = append(b, ackPrefix...)
		b = strconv.AppendInt(b, ack, 10)
		b = append(b, '}')
		if _, err := w.Write(b); err != nil {
			return err
		}
		*num = b
	}
	if err := w.Close(); err != nil {
		return err
	}
	m := ss.srv.metrics
	m.frameOut(wsproto.TypeMsg, msgs)
	m.frameOut(wsproto.TypeRes, res)
	m.frameOut(wsproto.TypeEvent, evs)
	if ack > 0 {
		m.frameOut(wsproto.TypeAck, 1)
	}
	if evs > 0 {
		m.eventDeliveries.Add(float64(evs))
	}
	return nil
}

var (
	newline     = []byte{'\n'}
	closeBrace  = []byte{'}'}
	resPrefix   = []byte(`{"type":"res"`)
	eventPrefix = []byte(`{"type":"event","seq":`)
	eventInfix  = []byte(`,"event":`)
	ackPrefix   = []byte(`{"type":"ack","ack":`)
)
