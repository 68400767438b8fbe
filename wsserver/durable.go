package wsserver

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// Durable sessions (Config.Sessions, docs/protocol.md §5.4).
//
// A session's live state stays in memory; what changes is saved by one
// committer for the whole server. A session that changes marks itself
// dirty; the committer takes every dirty session's changes as one
// WSSessionUpdate each, saves them all with one SaveWSSessions call (a group
// commit), then advances each session's durable marks (inSaved, outSaved)
// and kicks its writer. It commits again as soon as a commit ends while
// sessions are dirty, so batches grow with the load and an idle server
// waits for nothing.
//
// Acks and frames are held back until saved: the writer acknowledges at
// most inSaved and writes no frame above outSaved. So after a crash the
// store holds everything a client was told was processed, and every frame a
// client may have seen.

// errFenced is returned by waits of a session another instance claimed.
var errFenced = errors.New("session claimed by another instance")

// durable reports whether sessions are saved in a store.
func (srv *Server) durable() bool { return srv.commit != nil }

// committer is the group-commit loop of durable sessions.
type committer struct {
	srv   *Server
	store filehub.WSSessionStore
	wake  chan struct{}

	mu    sync.Mutex
	dirty []*session
	busy  bool          // a round (collect, save, apply) is running
	round chan struct{} // closed when the running or next round ends

	// crashed stops all saving at once: a test's stand-in for the process
	// dying (export_test.go).
	crashed atomic.Bool
}

func newCommitter(srv *Server, store filehub.WSSessionStore) *committer {
	return &committer{srv: srv, store: store, wake: make(chan struct{}, 1), round: make(chan struct{})}
}

// mark queues ss for the next round. It only takes the committer's own
// lock, so it may be called under the session's and the result store's.
func (cm *committer) mark(ss *session) {
	cm.mu.Lock()
	if !ss.queued {
		ss.queued = true
		cm.dirty = append(cm.dirty, ss)
	}
	cm.mu.Unlock()
	select {
	case cm.wake <- struct{}{}:
	default:
	}
}

// roundDone returns a channel closed when the next round ends.
func (cm *committer) roundDone() <-chan struct{} {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return cm.round
}

// run commits until ctx ends.
func (cm *committer) run(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-cm.wake:
		}
		for ctx.Err() == nil {
			cm.mu.Lock()
			batch := cm.dirty
			cm.dirty = nil
			if len(batch) == 0 {
				cm.endRoundLocked()
				cm.mu.Unlock()
				break
			}
			cm.busy = true
			cm.mu.Unlock()
			if cm.commit(ctx, batch) {
				backoff = 0
			} else {
				backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
			}
			cm.mu.Lock()
			cm.endRoundLocked()
			cm.mu.Unlock()
		}
	}
}

func (cm *committer) endRoundLocked() {
	cm.busy = false
	close(cm.round)
	cm.round = make(chan struct{})
}

// pendingSave is what one session's update of a round changes once saved.
type pendingSave struct {
	ss            *session
	ver           int64
	in, out       int64
	prevOutQueued int64
	ops           []resultOp
}

// commit saves the changes of batch. It returns false if the store failed;
// the changes are then queued again.
func (cm *committer) commit(ctx context.Context, batch []*session) bool {
	if cm.crashed.Load() {
		return true
	}
	now := time.Now()
	updates := make([]filehub.WSSessionUpdate, 0, len(batch))
	saves := make([]pendingSave, 0, len(batch))
	for _, ss := range batch {
		ss.mu.Lock()
		cm.mu.Lock()
		ss.queued = false
		cm.mu.Unlock()
		if ss.dropped || ss.fenced {
			ss.mu.Unlock()
			continue
		}
		u, p := ss.updateLocked(now)
		ss.mu.Unlock()
		updates = append(updates, u)
		saves = append(saves, p)
	}
	if len(updates) == 0 {
		return true
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	start := time.Now()
	lost, err := cm.store.SaveWSSessions(sctx, updates)
	cancel()
	m := cm.srv.metrics
	m.saveSeconds.Observe(time.Since(start).Seconds())
	m.saveBatch.Observe(float64(len(updates)))
	if err != nil {
		if ctx.Err() == nil {
			cm.srv.log.Warn("saving WebSocket sessions failed; retrying", "sessions", len(updates), "err", err)
		}
		for _, p := range saves {
			p.ss.mu.Lock()
			if p.ss.outQueued > p.prevOutQueued {
				p.ss.outQueued = p.prevOutQueued
			}
			cm.srv.results.restoreOps(p.ss.results, p.ops)
			p.ss.mu.Unlock()
			cm.mark(p.ss)
		}
		return false
	}
	if cm.crashed.Load() {
		return true // died before it could tell anyone
	}
	var lostSet map[string]bool
	if len(lost) > 0 {
		lostSet = make(map[string]bool, len(lost))
		for _, id := range lost {
			lostSet[id] = true
		}
	}
	for _, p := range saves {
		ss := p.ss
		if lostSet[ss.id] {
			cm.srv.fence(ss)
			continue
		}
		ss.mu.Lock()
		ss.inSaved = max(ss.inSaved, p.in)
		ss.outSaved = max(ss.outSaved, p.out)
		ss.savedVer = max(ss.savedVer, p.ver)
		ss.savedAt = now
		if ss.conn != nil {
			ss.kickLocked(ss.conn)
		}
		ss.mu.Unlock()
	}
	return true
}

// markDirtyLocked records that the session changed: the committer saves
// it with its next round. Without a store it does nothing.
func (ss *session) markDirtyLocked() {
	if ss.srv.commit == nil {
		return
	}
	ss.ver++
	ss.srv.commit.mark(ss)
}

// ackLimitLocked is the highest client seq the session may acknowledge.
func (ss *session) ackLimitLocked() int64 {
	if ss.srv.commit == nil {
		return ss.inSeq
	}
	return min(ss.inSeq, ss.inSaved)
}

// outLimitLocked is the highest server seq the writer may write.
func (ss *session) outLimitLocked() int64 {
	if ss.srv.commit == nil {
		return ss.outSeq
	}
	return ss.outSaved
}

// updateLocked returns the session's changes since its last save.
func (ss *session) updateLocked(now time.Time) (filehub.WSSessionUpdate, pendingSave) {
	u := filehub.WSSessionUpdate{
		ID: ss.id, Epoch: ss.epoch,
		TokenHash: ss.tokenHash, PrevTokenHash: ss.prevTokenHash,
		InSeq: ss.inSeq, OutSeq: ss.outSeq, ClientAcked: ss.clientAcked,
		Subscribed: ss.subscribed, EventCursor: ss.evCursor,
		UpdatedAt: now,
	}
	if ss.conn == nil {
		u.DetachedAt = ss.detachedAt
	}
	p := pendingSave{ss: ss, ver: ss.ver, in: ss.inSeq, out: ss.outSeq, prevOutQueued: ss.outQueued}
	// The frames not handed to a save yet are the last ones of the outbox.
	i := len(ss.out)
	for i > ss.head && ss.out[i-1].seq > ss.outQueued {
		i--
	}
	u.AddOut = packFrames(ss.out[i:])
	ss.outQueued = ss.outSeq
	p.ops = ss.srv.results.takeOps(ss.results)
	updateResults(&u, p.ops)
	return u, p
}

// maxPackBytes bounds the frames packed into one saved WSFrame.
const maxPackBytes = 64 << 10

// packFrames turns outbox frames (consecutive seqs) into saved frames,
// several to one: a saved frame's Data holds the encodings of consecutive
// frames separated by '\n' (no encoding contains one: frames are separated
// by newlines on the wire too), and its Seq is the last one's. A store
// writes one row per saved frame, so packing the frames of one commit
// saves most of the per-row cost; it keeps a pack until the client
// acknowledged its last frame, and unpackFrames drops the frames of a pack
// the client had already acknowledged.
func packFrames(out []outFrame) []filehub.WSFrame {
	if len(out) == 0 {
		return nil
	}
	var packs []filehub.WSFrame
	var cur []byte
	var last int64
	for i := range out {
		enc := out[i].encoded()
		if len(cur) > 0 && len(cur)+1+len(enc) > maxPackBytes {
			packs = append(packs, filehub.WSFrame{Seq: last, Data: cur})
			cur = nil
		}
		if len(cur) == 0 && i == len(out)-1 {
			cur = enc // a single frame: no copy
		} else {
			if len(cur) > 0 {
				cur = append(cur, '\n')
			}
			cur = append(cur, enc...)
		}
		last = out[i].seq
	}
	return append(packs, filehub.WSFrame{Seq: last, Data: cur})
}

// unpackFrames splits saved frames (see packFrames) into single frames.
func unpackFrames(saved []filehub.WSFrame) []filehub.WSFrame {
	var out []filehub.WSFrame
	for _, p := range saved {
		parts := bytes.Split(p.Data, []byte{'\n'})
		first := p.Seq - int64(len(parts)) + 1
		for i, d := range parts {
			out = append(out, filehub.WSFrame{Seq: first + int64(i), Data: d})
		}
	}
	return out
}

// encoded returns the frame's whole encoding.
func (f *outFrame) encoded() []byte {
	if f.ev == nil {
		return f.data
	}
	b := make([]byte, 0, len(eventPrefix)+len(eventInfix)+len(f.ev.json)+24)
	b = append(b, eventPrefix...)
	b = strconv.AppendInt(b, f.seq, 10)
	b = append(b, eventInfix...)
	b = append(b, f.ev.json...)
	return append(b, '}')
}

// decodeOutFrame turns a saved frame back into an outbox entry.
func decodeOutFrame(f filehub.WSFrame) outFrame {
	if bytes.HasPrefix(f.Data, eventPrefix) {
		if i := bytes.Index(f.Data, eventInfix); i > 0 && len(f.Data) > i+len(eventInfix) {
			return outFrame{seq: f.Seq, ev: &hubEvent{json: f.Data[i+len(eventInfix) : len(f.Data)-1]}}
		}
	}
	return outFrame{seq: f.Seq, data: f.Data}
}

// waitSaved waits until a save covered change ver of the session. It
// returns errFenced if the session was claimed by another instance (or
// dropped) meanwhile.
func (ss *session) waitSaved(ctx context.Context, ver int64) error {
	cm := ss.srv.commit
	for {
		done := cm.roundDone()
		ss.mu.Lock()
		saved, gone := ss.savedVer >= ver, ss.fenced || ss.dropped
		ss.mu.Unlock()
		switch {
		case gone:
			return errFenced
		case saved:
			return nil
		}
		select {
		case <-done:
		case <-ctx.Done():
			return filehub.WrapError(filehub.EUNAVAILABLE, "the session store does not answer", ctx.Err())
		}
	}
}

// flushLocked marks the session dirty and returns the change to wait for.
func (ss *session) flushLocked() int64 {
	ss.markDirtyLocked()
	return ss.ver
}

// saveBefore saves request id as started (pendingResult) before the
// request runs. It
// returns false if the request must not run (the session was taken over,
// or the store failed, and the connection is being closed).
func (ss *session) saveBefore(ctx context.Context, id string) bool {
	ss.mu.Lock()
	if ss.dropped {
		ss.mu.Unlock()
		return false
	}
	ss.results = ss.srv.results.put(ss, ss.results, id, pendingResult)
	ver := ss.flushLocked()
	c := ss.conn
	ss.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, ss.srv.cfg.SlowConsumerTimeout)
	defer cancel()
	err := ss.waitSaved(wctx, ver)
	if err != nil && !errors.Is(err, errFenced) && c != nil {
		c.fail(filehub.EUNAVAILABLE, "the session store does not answer; resume later", wsproto.CloseServerShutdown)
	}
	return err == nil
}

// fence drops the local copy of a session another instance has claimed,
// and closes its connection with 4007.
func (srv *Server) fence(ss *session) {
	ss.mu.Lock()
	ss.fenced = true
	c := ss.conn
	ss.mu.Unlock()
	srv.log.Info("websocket session claimed by another instance; dropping it here", "session_id", ss.id)
	srv.metrics.fenced.Inc()
	srv.forgetSession(ss)
	if c != nil {
		c.closeNow(wsproto.CloseTakenOver, "session taken over on another instance")
	}
}

// checkEpochs saves, without changes, every attached session that was not
// saved for interval: a save of a session another instance has claimed
// comes back lost and fences it. An idle connection of a session taken
// over elsewhere is so closed within about two intervals.
func (srv *Server) checkEpochs(interval time.Duration) {
	now := time.Now()
	srv.mu.Lock()
	list := make([]*session, 0, len(srv.sessions))
	for _, ss := range srv.sessions {
		list = append(list, ss)
	}
	srv.mu.Unlock()
	for _, ss := range list {
		ss.mu.Lock()
		if ss.conn != nil && now.Sub(ss.savedAt) >= interval {
			srv.commit.mark(ss)
		}
		ss.mu.Unlock()
	}
}

// flushAll waits until every change made so far is saved (Shutdown).
func (srv *Server) flushAll(ctx context.Context) error {
	cm := srv.commit
	for {
		cm.mu.Lock()
		idle := len(cm.dirty) == 0 && !cm.busy
		done := cm.round
		cm.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// createDurable stores the new session ss before its welcome is written.
func (srv *Server) createDurable(ctx context.Context, ss *session, now time.Time) error {
	store := srv.cfg.Sessions
	ctx, cancel := context.WithTimeout(ctx, srv.cfg.HelloTimeout)
	defer cancel()
	n, err := store.CountWSSessions(ctx, ss.keyID)
	if err != nil {
		return filehub.WrapError(filehub.EUNAVAILABLE, "cannot count the key's WebSocket sessions", err)
	}
	if n >= srv.cfg.MaxSessionsPerKey {
		return tooManySessions(srv.cfg.MaxSessionsPerKey)
	}
	ss.epoch = 1
	err = store.CreateWSSession(ctx, &filehub.WSSession{
		ID: ss.id, KeyID: ss.keyID, TokenHash: ss.tokenHash, Epoch: ss.epoch, Owner: srv.cfg.InstanceID,
		CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		return filehub.WrapError(filehub.EUNAVAILABLE, "cannot store the new WebSocket session", err)
	}
	ss.savedAt = now
	return nil
}

// resumeDurable resumes session h.SessionID from the store, whichever
// instance held it: it hands over the local copy (if this process holds
// it) by saving it, claims the session, checks the key and token, and
// saves the new token before the welcome is written. It returns the
// session, or the reason of a refusal.
func (srv *Server) resumeDurable(ctx context.Context, c *conn, h *wsproto.Frame, now time.Time) (*session, *wsproto.Frame, string, error) {
	presented := []byte(h.ResumeToken)
	srv.mu.Lock()
	local := srv.sessions[h.SessionID]
	srv.mu.Unlock()
	if local != nil {
		local.mu.Lock()
		match := local.tokenMatchesLocked(presented) && local.keyID == c.key.ID
		fenced := local.fenced
		local.mu.Unlock()
		if !match && !fenced {
			// Either the token is wrong, or another instance has claimed
			// the session since and given the client a newer one. A save
			// tells: if it commits, this copy is the session, and the
			// resume is refused without disturbing its connection.
			local.mu.Lock()
			ver := local.flushLocked()
			local.mu.Unlock()
			wctx, cancel := context.WithTimeout(ctx, srv.cfg.HelloTimeout)
			err := local.waitSaved(wctx, ver)
			cancel()
			switch {
			case err == nil:
				return nil, nil, wsproto.RefusedBadToken, nil
			case !errors.Is(err, errFenced):
				return nil, nil, "", err
			}
			// Claimed elsewhere: the copy is dropped; claim it back.
		}
		if err := srv.handOver(ctx, local); err != nil {
			return nil, nil, "", err
		}
	}

	store := srv.cfg.Sessions
	sctx, cancel := context.WithTimeout(ctx, srv.cfg.HelloTimeout)
	defer cancel()
	// The claim checks the key and the token in the statement that bumps
	// the epoch: a connection that knows only the session's ID cannot
	// fence the session's owner out.
	h2 := hashToken(presented)
	st, err := store.ClaimWSSession(sctx, filehub.WSClaim{
		ID: h.SessionID, Owner: srv.cfg.InstanceID, KeyID: c.key.ID, TokenHash: h2,
		// The TTL holds between the cleanup service's runs too, also for
		// a session whose instance died while it was attached.
		AliveAfter: now.Add(-srv.cfg.SessionTTL),
	}, now)
	switch {
	case errors.Is(err, filehub.ErrWSSessionExpired):
		return nil, nil, wsproto.RefusedExpired, nil
	case filehub.ErrorCode(err) == filehub.ENOTFOUND:
		return nil, nil, wsproto.RefusedUnknown, nil
	case filehub.ErrorCode(err) == filehub.EFORBIDDEN:
		return nil, nil, wsproto.RefusedBadToken, nil
	}
	if err != nil {
		return nil, nil, "", filehub.WrapError(filehub.EUNAVAILABLE, "cannot load the WebSocket session", err)
	}
	// The claim refused a session past its TTL (AliveAfter): what it
	// finds is resumable.
	current := subtle.ConstantTimeCompare(st.TokenHash, h2) == 1
	previous := subtle.ConstantTimeCompare(st.PrevTokenHash, h2) == 1
	var refusal string
	var perr error
	switch {
	case !current && !previous || st.KeyID != c.key.ID:
		refusal = wsproto.RefusedBadToken
	case h.LastSeq > st.OutSeq:
		perr = fmt.Errorf("protocol error: last_seq %d is beyond the last frame sent (%d)", h.LastSeq, st.OutSeq)
	case h.LastSeq < st.ClientAcked:
		perr = fmt.Errorf("protocol error: last_seq %d is below %d, which the client has acknowledged", h.LastSeq, st.ClientAcked)
	}
	if refusal != "" || perr != nil {
		// The claim attached the session to nobody: mark it detached
		// again, so that it expires if its owner does not come back.
		back := now
		_, err := store.SaveWSSessions(sctx, []filehub.WSSessionUpdate{{
			ID: st.ID, Epoch: st.Epoch, TokenHash: st.TokenHash, PrevTokenHash: st.PrevTokenHash,
			InSeq: st.InSeq, OutSeq: st.OutSeq, ClientAcked: st.ClientAcked,
			Subscribed: st.Subscribed, EventCursor: st.EventCursor, UpdatedAt: now, DetachedAt: back,
		}})
		if err != nil {
			srv.log.Warn("cannot mark a refused WebSocket session detached", "session_id", st.ID, "err", err)
		}
		return nil, nil, refusal, perr
	}

	ss := srv.rebuild(c, st)
	ss.ackLocked(h.LastSeq)
	ss.prevTokenHash = h2
	token := newToken()
	ss.tokenHash = hashToken(token)
	ss.reattachLocked()
	// Saved before the welcome: a client holding the new token must find
	// it after a crash.
	u, p := ss.updateLocked(now)
	lost, err := store.SaveWSSessions(sctx, []filehub.WSSessionUpdate{u})
	if err != nil || len(lost) > 0 {
		ss.drop()
		if err == nil {
			err = errors.New("claimed by another instance meanwhile")
		}
		return nil, nil, "", filehub.WrapError(filehub.EUNAVAILABLE, "cannot save the resumed WebSocket session", err)
	}
	ss.inSaved, ss.outSaved, ss.savedVer, ss.savedAt = p.in, p.out, p.ver, now

	srv.mu.Lock()
	if prev := srv.sessions[ss.id]; prev != nil {
		// A concurrent resume on this process got here first; its copy
		// is fenced by the newer epoch.
		srv.mu.Unlock()
		srv.fence(prev)
		srv.mu.Lock()
	}
	// Attached before it is registered: others read conn under ss.mu only
	// once they can find the session.
	ss.conn = c
	c.sess = ss
	srv.sessKey[ss.keyID]++
	srv.sessions[ss.id] = ss
	srv.mu.Unlock()
	if ss.subscribed {
		srv.hub.subscribe(ss)
	}
	srv.metrics.sessions.Add(1)
	srv.metrics.connected.Add(1)
	return ss, ss.welcomeFrame(true, token), "", nil
}

// handOver stops the local copy of a session that is being resumed: its
// connection (if any) is closed with 4007, the frame it is processing
// finishes, everything it changed is saved, and the copy is dropped, so
// that the claim that follows reads all of it from the store.
func (srv *Server) handOver(ctx context.Context, ss *session) error {
	ss.mu.Lock()
	old := ss.conn
	ss.conn = nil // the old connection owns nothing from here on
	if old != nil {
		srv.metrics.connected.Add(-1)
	}
	ss.mu.Unlock()
	if old != nil {
		old.closeNow(wsproto.CloseTakenOver, "session taken over by a newer connection")
	}
	ss.procMu.Lock()
	defer ss.procMu.Unlock()
	ss.mu.Lock()
	ver := ss.flushLocked()
	ss.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, srv.cfg.HelloTimeout)
	defer cancel()
	err := ss.waitSaved(wctx, ver)
	if err != nil && !errors.Is(err, errFenced) {
		return err
	}
	srv.forgetSession(ss)
	return nil
}

// rebuild makes the live copy of a session loaded from the store.
func (srv *Server) rebuild(c *conn, st *filehub.WSSession) *session {
	ss := &session{
		srv: srv, id: st.ID, keyID: st.KeyID, keyHash: c.hash, key: c.key,
		tokenHash: st.TokenHash, prevTokenHash: st.PrevTokenHash,
		epoch: st.Epoch,
		inSeq: st.InSeq, inRecv: st.InSeq, inSaved: st.InSeq,
		outSeq: st.OutSeq, outSaved: st.OutSeq, outQueued: st.OutSeq,
		clientAcked: st.ClientAcked,
		subscribed:  st.Subscribed, evCursor: st.EventCursor, evTarget: st.EventCursor,
	}
	ss.out = make([]outFrame, 0, len(st.Out))
	for _, f := range unpackFrames(st.Out) {
		if f.Seq <= st.ClientAcked {
			continue
		}
		of := decodeOutFrame(f)
		if of.ev != nil {
			ss.evCount++
		} else {
			ss.outCount++
			ss.outBytes += len(of.data)
		}
		ss.out = append(ss.out, of)
	}
	ss.next = ss.outSeq + 1
	if len(ss.out) > 0 {
		ss.next = ss.out[0].seq
	}
	srv.metrics.outboxDepth.Add(int64(len(ss.out)))
	if len(st.Results) > 0 {
		ss.results = srv.results.load(ss, st.Results)
	}
	return ss
}

// forgetSession removes ss from this process without deleting it from the
// store (it lives on there, for a resume here or elsewhere).
func (srv *Server) forgetSession(ss *session) {
	srv.mu.Lock()
	if srv.sessions[ss.id] == ss {
		delete(srv.sessions, ss.id)
		if srv.sessKey[ss.keyID]--; srv.sessKey[ss.keyID] <= 0 {
			delete(srv.sessKey, ss.keyID)
		}
		srv.metrics.sessions.Add(-1)
	}
	srv.mu.Unlock()
	ss.drop()
}
