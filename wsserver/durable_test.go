package wsserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/wsproto"
	"github.com/filehub/filehub/wsserver"
)

var durableMode = mode{"durable", true}

// inDurableModes runs f as a subtest per durable mode: the in-memory test
// store, the SQLite database and PostgreSQL (FILEHUB_TEST_POSTGRES; skipped
// without it, except in CI where that fails).
func inDurableModes(t *testing.T, f func(t *testing.T, m mode)) {
	for _, m := range append(modes, mode{"postgres", true}) {
		if m.durable {
			t.Run(m.name, func(t *testing.T) { f(t, m) })
		}
	}
}

// errStoreDown is what a failing session store returns.
var errStoreDown = filehub.Errorf(filehub.EUNAVAILABLE, "session store down (test)")

// countingEcho is an echo MessageHandler that counts its calls.
type countingEcho struct{ n atomic.Int64 }

func (h *countingEcho) handle(_ context.Context, _ wsserver.Peer, data json.RawMessage) (json.RawMessage, error) {
	h.n.Add(1)
	return data, nil
}

// reader follows the server frames of a session across connections, the
// way a client does: it hands each reliable frame to the application once,
// in order, and fails the test on a gap.
type reader struct {
	t       *testing.T
	lastSeq int64                     // last server seq handed over
	acked   int64                     // highest ack seen
	msgs    []string                  // data of the msg frames, in order
	res     map[string]*wsproto.Frame // res frames by request id
	check   func(f *wsproto.Frame)    // sees every frame read, if set
	frames  map[int64]*wsproto.Frame  // every reliable frame by seq
}

func newReader(t *testing.T) *reader {
	return &reader{t: t, res: map[string]*wsproto.Frame{}, frames: map[int64]*wsproto.Frame{}}
}

// until reads from c until done holds.
func (r *reader) until(c *client, done func() bool) {
	r.t.Helper()
	for !done() {
		f := c.next()
		if r.check != nil {
			r.check(f)
		}
		r.acked = max(r.acked, f.Ack)
		if !wsproto.Reliable(f.Type) {
			continue
		}
		switch {
		case f.Seq <= r.lastSeq:
			continue // a replay of a frame handed over already
		case f.Seq > r.lastSeq+1:
			r.t.Fatalf("gap: server seq %d after %d", f.Seq, r.lastSeq)
		}
		r.lastSeq = f.Seq
		r.frames[f.Seq] = f
		switch f.Type {
		case wsproto.TypeMsg:
			r.msgs = append(r.msgs, string(f.Data))
		case wsproto.TypeRes:
			if r.res[f.ID] != nil {
				r.t.Fatalf("second res for request %s", f.ID)
			}
			r.res[f.ID] = f
		}
	}
}

// drain reads from c until the connection ends, like until.
func (r *reader) drain(c *client) {
	for {
		f, err := c.read(10 * time.Second)
		if err != nil {
			return
		}
		c.pending = append([]*wsproto.Frame{f}, c.pending...)
		r.until(c, func() bool { return len(c.pending) == 0 })
	}
}

// wantMsgs checks that the msgs handed over are exactly the echoes of
// the client seqs in ranges (from, to inclusive), once each, in order.
func (r *reader) wantMsgs(ranges ...[2]int64) {
	r.t.Helper()
	var want []string
	for _, rg := range ranges {
		for i := rg[0]; i <= rg[1]; i++ {
			want = append(want, fmt.Sprint(i))
		}
	}
	if fmt.Sprint(r.msgs) != fmt.Sprint(want) {
		r.t.Fatalf("echoes %v, want %v (lost, duplicated or reordered)", r.msgs, want)
	}
}

func msgs(from, to int64) []*wsproto.Frame {
	var fs []*wsproto.Frame
	for i := from; i <= to; i++ {
		fs = append(fs, msg(i, fmt.Sprint(i)))
	}
	return fs
}

// TestDurableRestart crashes a server while it holds processed but unsaved
// client frames, and resumes the session on a new server on the same
// stores: the client loses nothing and sees nothing twice, and a request
// that had not run before the crash runs once.
func TestDurableRestart(t *testing.T) {
	fp := &fakePusher{}
	hA := &countingEcho{}
	a := newEnvIn(t, durableMode, wsserver.Config{Providers: fp, MessageHandler: hA.handle})
	f1, f2 := a.upload(t, "one.txt", "1"), a.upload(t, "two.txt", "2")
	pushParams := func(f *filehub.File) string { return `{"id":"` + f.ID + `","provider":"kimi"}` }

	c, w := a.connect(t, "rw")
	r := newReader(t)
	// Phase 1: saved and acknowledged.
	c.send(msgs(1, 20)...)
	c.send(req(21, "push1", wsproto.MethodProvidersPush, pushParams(f1)))
	r.until(c, func() bool { return r.acked >= 21 && len(r.msgs) == 20 && r.res["push1"] != nil })

	// Phase 2: the store fails; the server processes the messages but
	// may neither acknowledge them nor send their echoes, and it does not
	// run the request whose id it cannot save first.
	a.sessions.setFail(errStoreDown)
	c.send(msgs(22, 30)...)
	c.send(req(31, "push2", wsproto.MethodProvidersPush, pushParams(f2)))
	waitFor(t, "the server to process 22..30", func() bool { return hA.n.Load() == 29 })
	a.srv.Crash()
	r.drain(c) // whatever the server wrote before it died
	a.stop()
	if r.acked > 21 || len(r.msgs) > 20 {
		t.Fatalf("the client saw ack %d and %d echoes of unsaved work", r.acked, len(r.msgs))
	}
	a.sessions.setFail(nil)

	b := a.twin(t, wsserver.Config{Providers: fp})
	c2, w2 := b.resume(t, "rw", w, r.lastSeq)
	if !w2.Resumed || w2.LastSeq != 21 {
		t.Fatalf("welcome = %+v, want resumed at last_seq 21", w2)
	}
	c2.send(msgs(22, 30)...)
	c2.send(req(31, "push2", wsproto.MethodProvidersPush, pushParams(f2)))
	r.until(c2, func() bool { return r.acked >= 31 && len(r.msgs) == 29 && r.res["push2"] != nil })
	r.wantMsgs([2]int64{1, 20}, [2]int64{22, 30})
	if r.res["push2"].Error != nil {
		t.Fatalf("push2 = %+v", r.res["push2"].Error)
	}
	if n := fp.count(); n != 2 {
		t.Fatalf("provider pushed %d times, want 2 (once per request)", n)
	}
	// The cached result survived the restart: a re-sent id runs nothing.
	again := c2.call(32, "push1", wsproto.MethodProvidersPush, pushParams(f1))
	if string(again.Result) != string(r.res["push1"].Result) {
		t.Fatalf("re-sent push1 = %s, want the cached %s", again.Result, r.res["push1"].Result)
	}
	if n := fp.count(); n != 2 {
		t.Fatalf("a re-sent request ran again (%d pushes)", n)
	}
}

// TestDurableRequestReplayedAfterCrash: the process dies after a request's
// effect committed but before its result was saved. The client's replay on
// the next owner finds the request's tombstone and runs it in replay mode:
// it answers with the state the first run left (the file deleted, the
// content at the provider) and does not do the effect again.
func TestDurableRequestReplayedAfterCrash(t *testing.T) {
	fp := &fakePusher{}
	a := newEnvIn(t, durableMode, wsserver.Config{Providers: fp})
	f := a.upload(t, "one.txt", "1")
	a.sessions.onSave = func(m *memSessions, updates []filehub.WSSessionUpdate) error {
		for _, u := range updates {
			for _, res := range u.PutResults {
				if res.ID == "del" && len(res.Body) > 0 {
					m.fail = errStoreDown // from here on, nothing is saved
				}
			}
		}
		return nil
	}
	c, w := a.connect(t, "rw")
	c.send(req(1, "push", wsproto.MethodProvidersPush, `{"id":"`+f.ID+`","provider":"kimi"}`))
	c.send(req(2, "del", wsproto.MethodFilesDelete, `{"id":"`+f.ID+`"}`))
	waitFor(t, "the push and the delete", func() bool {
		g, err := a.files.Find(t.Context(), f.ID)
		return fp.count() == 1 && err == nil && g.Deleted()
	})
	a.srv.Crash()
	a.stop()
	a.sessions.setFail(nil)
	a.sessions.onSave = nil

	b := a.twin(t, wsserver.Config{Providers: fp})
	c2, w2 := b.resume(t, "rw", w, 0)
	if !w2.Resumed {
		t.Fatalf("welcome = %+v, want resumed", w2)
	}
	// The push's result may have been saved before the store failed
	// (then the welcome's last_seq covers it); if not, its replay answers
	// from the stand-in, where the content was uploaded once (later
	// pushes of it answer reused).
	if w2.LastSeq == 0 {
		res := c2.call(1, "push", wsproto.MethodProvidersPush, `{"id":"`+f.ID+`","provider":"kimi"}`)
		var pushed api.PushResult
		if res.Error != nil || json.Unmarshal(res.Result, &pushed) != nil || pushed.ProviderFileID != "file-"+f.ID {
			t.Fatalf("replayed push = %s %+v", res.Result, res.Error)
		}
	}
	// (The push's saved res, if any, comes again first: skip it.)
	c2.send(req(2, "del", wsproto.MethodFilesDelete, `{"id":"`+f.ID+`"}`))
	del := c2.expect(wsproto.TypeRes)
	for del.ID == "push" {
		del = c2.expect(wsproto.TypeRes)
	}
	var got filehub.File
	if del.Error != nil || json.Unmarshal(del.Result, &got) != nil || got.ID != f.ID || !got.Deleted() {
		t.Fatalf("replayed delete = %s %+v, want the deleted file", del.Result, del.Error)
	}
	entries, err := a.db.ListAudit(t.Context(), filehub.AuditFilter{Action: filehub.AuditFileDeleted})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(entries); n != 1 {
		t.Fatalf("file deleted %d times (audit log), want once", n)
	}
}

// TestDurableAcksCoverOnlySavedState checks, for every frame a client
// reads, that the store already holds what it acknowledges and the frame
// itself.
func TestDurableAcksCoverOnlySavedState(t *testing.T) {
	e := newEnvIn(t, durableMode, wsserver.Config{})
	c, w := e.connect(t, "rw")
	r := newReader(t)
	checked := 0
	r.check = func(f *wsproto.Frame) {
		s := e.sessions.get(w.SessionID)
		if f.Ack > s.InSeq {
			t.Fatalf("ack %d above the saved in_seq %d", f.Ack, s.InSeq)
		}
		if f.Seq > s.OutSeq {
			t.Fatalf("server frame %d above the saved out_seq %d", f.Seq, s.OutSeq)
		}
		if f.Type == wsproto.TypeRes && !savedResult(s, f.ID) {
			t.Fatalf("res %s written before its result was saved", f.ID)
		}
		checked++
	}
	const n = 600
	go func() {
		for i := int64(1); i <= n; i += 20 {
			c.send(msgs(i, i+18)...)
			c.send(req(i+19, fmt.Sprint("r", i), wsproto.MethodFilesList, `{}`))
		}
	}()
	r.until(c, func() bool { return r.acked >= n && r.lastSeq >= n })
	if checked < 10 {
		t.Fatalf("only %d frames checked", checked)
	}
}

func savedResult(s *filehub.WSSession, id string) bool {
	for _, r := range s.Results {
		if r.ID == id && len(r.Body) > 0 {
			return true
		}
	}
	return false
}

// TestDurableTakeoverFencesOtherInstance resumes a session on instance B
// while instance A still holds it with a connection: A's next save is
// refused, A closes its connection with 4007 without acknowledging, and the
// session carries on on B.
func TestDurableTakeoverFencesOtherInstance(t *testing.T) {
	inDurableModes(t, testDurableTakeoverFencesOtherInstance)
}

func testDurableTakeoverFencesOtherInstance(t *testing.T, m mode) {
	a := newEnvIn(t, m, wsserver.Config{EpochCheckInterval: -1})
	b := a.twin(t, wsserver.Config{})
	c1, w := a.connect(t, "rw")
	c1.send(msg(1, `1`))
	c1.waitAck(1)
	c2, w2 := b.resume(t, "rw", w, 0)
	if !w2.Resumed || w2.LastSeq != 1 {
		t.Fatalf("welcome on B = %+v, want resumed at last_seq 1", w2)
	}
	// A still thinks it owns the session: it processes msg 2, but its
	// save is lost.
	c1.send(msg(2, `2`))
	for {
		f, err := c1.read(10 * time.Second)
		if err != nil {
			var code int
			if ce := closeErr(err); ce != nil {
				code = ce.Code
			}
			if code != wsproto.CloseTakenOver {
				t.Fatalf("A's connection ended with %v, want close 4007", err)
			}
			break
		}
		if f.Ack >= 2 || f.Seq >= 2 {
			t.Fatalf("fenced A wrote %+v", f)
		}
	}
	if a.sessions != nil {
		if s := a.sessions.get(w.SessionID); s.InSeq != 1 || s.Epoch != 2 {
			t.Fatalf("store after A's lost save: in_seq %d epoch %d, want 1 and 2", s.InSeq, s.Epoch)
		}
	}
	if got := a.metric("filehub_ws_sessions_fenced_total"); got != 1 {
		t.Errorf("A's sessions_fenced_total = %v, want 1", got)
	}
	// On B the session goes on: its echo of 1 is replayed, 2 is new.
	r := newReader(t)
	c2.send(msg(2, `2`))
	r.until(c2, func() bool { return len(r.msgs) == 2 && r.acked >= 2 })
	r.wantMsgs([2]int64{1, 2})
}

// TestDurableIdleTakeoverIsDetected: a connection that sends nothing is
// closed with 4007 once another instance claimed its session.
func TestDurableIdleTakeoverIsDetected(t *testing.T) {
	inDurableModes(t, testDurableIdleTakeoverIsDetected)
}

func testDurableIdleTakeoverIsDetected(t *testing.T, m mode) {
	a := newEnvIn(t, m, wsserver.Config{EpochCheckInterval: 20 * time.Millisecond})
	b := a.twin(t, wsserver.Config{})
	c1, w := a.connect(t, "rw")
	_, w2 := b.resume(t, "rw", w, 0)
	if !w2.Resumed {
		t.Fatalf("welcome on B = %+v, want resumed", w2)
	}
	if code := c1.closeCode(); code != wsproto.CloseTakenOver {
		t.Fatalf("idle connection on A closed with %d, want 4007", code)
	}
}

// TestDurableShutdownResumesElsewhere: a graceful shutdown sends 4005 and
// saves everything; the session resumes on another server with the frames
// the client had not read.
func TestDurableShutdownResumesElsewhere(t *testing.T) {
	inDurableModes(t, testDurableShutdownResumesElsewhere)
}

func testDurableShutdownResumesElsewhere(t *testing.T, m mode) {
	a := newEnvIn(t, m, wsserver.Config{})
	b := a.twin(t, wsserver.Config{})
	c, w := a.connect(t, "rw")
	r := newReader(t)
	c.send(msgs(1, 10)...)
	r.until(c, func() bool { return r.acked >= 10 && len(r.msgs) >= 4 })
	// The client read some echoes; the server is stopped.
	a.stop()
	if code := c.closeCode(); code != wsproto.CloseServerShutdown {
		t.Fatalf("close code %d, want 4005", code)
	}
	if a.sessions != nil {
		if s := a.sessions.get(w.SessionID); s == nil || s.DetachedAt.IsZero() {
			t.Fatalf("session after shutdown = %+v, want it saved detached", s)
		}
	}
	c2, w2 := b.resume(t, "rw", w, r.lastSeq)
	if !w2.Resumed || w2.LastSeq != 10 {
		t.Fatalf("welcome on B = %+v, want resumed at last_seq 10", w2)
	}
	c2.send(msgs(11, 12)...)
	r.until(c2, func() bool { return len(r.msgs) == 12 })
	r.wantMsgs([2]int64{1, 12})
}

// TestDurableResumeRefusedSaysWhy: the welcome of a refused resume names
// the reason, and a refused resume leaves the session to its owner.
func TestDurableResumeRefusedSaysWhy(t *testing.T) {
	bothModes(t, func(t *testing.T, m mode) {
		e := newEnvIn(t, m, wsserver.Config{})
		c, w := e.connect(t, "rw")
		c.send(msg(1, `1`))
		c.waitAck(1)
		bad := *w
		bad.ResumeToken += "x"
		_, w2 := e.resume(t, "rw", &bad, 0)
		if w2.Resumed || w2.ResumeRefused != wsproto.RefusedBadToken {
			t.Fatalf("bad token: welcome = %+v, want refused bad_token", w2)
		}
		unknown := *w
		unknown.SessionID = "s_nope"
		_, w3 := e.resume(t, "rw", &unknown, 0)
		if w3.Resumed || w3.ResumeRefused != wsproto.RefusedUnknown {
			t.Fatalf("unknown: welcome = %+v, want refused unknown", w3)
		}
		// The owner's connection was not disturbed.
		c.send(msg(2, `2`))
		c.waitAck(2)
	})
}

// TestDurableStoreFailsAtHello: a hello the session store cannot serve is
// refused with "try again later", not a protocol error.
func TestDurableStoreFailsAtHello(t *testing.T) {
	e := newEnvIn(t, durableMode, wsserver.Config{})
	e.sessions.setFail(errStoreDown)
	c, _, err := e.dial(t, e.keys["rw"])
	if err != nil {
		t.Fatal(err)
	}
	c.send(&wsproto.Frame{Type: wsproto.TypeHello})
	if f := c.expect(wsproto.TypeError); f.Code != filehub.EUNAVAILABLE {
		t.Fatalf("error frame %+v, want unavailable", f)
	}
	if code := c.closeCode(); code != 1013 {
		t.Fatalf("close code %d, want 1013", code)
	}
}

func closeErr(err error) *websocket.CloseError {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}

// TestDurableSubscriptionMovesWithTheSession: an event subscription is
// part of the saved session: resumed on another server, it goes on after
// the last event the client acknowledged, and the events it had been sent
// but not acknowledged come again with their seqs, so the application gets
// each event once.
func TestDurableSubscriptionMovesWithTheSession(t *testing.T) {
	inDurableModes(t, func(t *testing.T, m mode) {
		a := newEnvIn(t, m, wsserver.Config{EventPollInterval: 5 * time.Millisecond})
		b := a.twin(t, wsserver.Config{EventPollInterval: 5 * time.Millisecond})
		for i := range 3 {
			a.upload(t, fmt.Sprint("before", i), "x")
		}
		c, w := a.connect(t, "ro")
		c.call(1, "sub", wsproto.MethodEventsSubscribe, `{"after":0}`)
		// Events 1 and 2 are handed over and acknowledged; 3 is read
		// but not acknowledged before the server goes.
		var ids []int64
		for range 3 {
			f := c.expect(wsproto.TypeEvent)
			ids = append(ids, f.Event.ID)
			if f.Event.ID == 2 {
				c.send(&wsproto.Frame{Type: wsproto.TypeAck, Ack: f.Seq})
			}
		}
		waitFor(t, "the ack to be saved", func() bool {
			return a.sessions == nil || a.sessions.get(w.SessionID).ClientAcked >= 3
		})
		a.stop()
		a.upload(t, "while-down", "x")    // event 4, written while no server runs
		c2, w2 := b.resume(t, "ro", w, 3) // seq 1 res, 2 and 3 events 1 and 2
		if !w2.Resumed {
			t.Fatalf("welcome on B = %+v, want resumed", w2)
		}
		for range 2 {
			f := c2.expect(wsproto.TypeEvent)
			c2.send(&wsproto.Frame{Type: wsproto.TypeAck, Ack: f.Seq})
			ids = append(ids, f.Event.ID)
		}
		if fmt.Sprint(ids) != "[1 2 3 3 4]" {
			t.Fatalf("events %v, want 1 2 3 on A, then 3 (not acknowledged: sent again) and 4 on B", ids)
		}
	})
}

// TestDurableCrashMidStream crashes the server while a client streams
// messages, at whatever point the stream is, and resumes on a new server
// on the same store: the client replays from the welcome's last_seq and
// gets every echo once, in order.
func TestDurableCrashMidStream(t *testing.T) {
	inDurableModes(t, func(t *testing.T, m mode) {
		a := newEnvIn(t, m, wsserver.Config{})
		c, w := a.connect(t, "rw")
		r := newReader(t)
		const n = 400
		c.send(msgs(1, n)...)
		r.until(c, func() bool { return len(r.msgs) >= 50 })
		a.srv.Crash()
		r.drain(c)
		a.stop()
		b := a.twin(t, wsserver.Config{})
		c2, w2 := b.resume(t, "rw", w, r.lastSeq)
		if !w2.Resumed || w2.LastSeq < r.acked || w2.LastSeq > n {
			t.Fatalf("welcome = %+v after the client saw ack %d, want resumed at or above it", w2, r.acked)
		}
		if w2.LastSeq < n { // (all n may have been saved before the crash)
			c2.send(msgs(w2.LastSeq+1, n)...)
		}
		r.until(c2, func() bool { return len(r.msgs) == n && r.acked >= n })
		r.wantMsgs([2]int64{1, n})
	})
}

// TestDurableResumeBackOnPreviousInstance: a session that moved from A to
// B comes back to A, which still holds a stale copy (with the old token):
// A finds out that the copy is stale and resumes the session from the
// store.
func TestDurableResumeBackOnPreviousInstance(t *testing.T) {
	inDurableModes(t, func(t *testing.T, m mode) {
		a := newEnvIn(t, m, wsserver.Config{EpochCheckInterval: -1})
		b := a.twin(t, wsserver.Config{EpochCheckInterval: -1})
		r := newReader(t)
		c, w := a.connect(t, "rw")
		c.send(msg(1, `1`))
		r.until(c, func() bool { return r.acked >= 1 && len(r.msgs) == 1 })
		c.ws.Close()
		waitFor(t, "A to see the disconnect", func() bool { return a.metric("filehub_ws_sessions_connected") == 0 })

		c2, w2 := b.resume(t, "rw", w, r.lastSeq)
		if !w2.Resumed {
			t.Fatalf("welcome on B = %+v, want resumed", w2)
		}
		c2.send(msg(2, `2`))
		r.until(c2, func() bool { return r.acked >= 2 && len(r.msgs) == 2 })
		c2.ws.Close()

		c3, w3 := a.resume(t, "rw", w2, r.lastSeq)
		if !w3.Resumed || w3.LastSeq != 2 {
			t.Fatalf("welcome back on A = %+v, want resumed at last_seq 2", w3)
		}
		c3.send(msg(3, `3`))
		r.until(c3, func() bool { return r.acked >= 3 && len(r.msgs) == 3 })
		r.wantMsgs([2]int64{1, 3})
	})
}

// TestDurableRefusedResumeElsewhereDoesNotFence: a resume on another
// instance with the session's ID but a wrong token, or another key, is
// refused without taking the session over — knowing an ID is not enough to
// cut its owner off (the claim checks the credentials in the store).
func TestDurableRefusedResumeElsewhereDoesNotFence(t *testing.T) {
	inDurableModes(t, func(t *testing.T, m mode) {
		a := newEnvIn(t, m, wsserver.Config{})
		b := a.twin(t, wsserver.Config{})
		c1, w := a.connect(t, "rw")
		c1.send(msg(1, `1`))
		c1.waitAck(1)
		bad := *w
		bad.ResumeToken += "x"
		for _, try := range []struct {
			key string
			w   *wsproto.Frame
		}{{"rw", &bad}, {"admin", w}} {
			if _, w2 := b.resume(t, try.key, try.w, 0); w2.Resumed || w2.ResumeRefused != wsproto.RefusedBadToken {
				t.Fatalf("resume on B with key %s: welcome = %+v, want refused bad_token", try.key, w2)
			}
		}
		// A still owns the session: its next frame is saved and acked.
		c1.send(msg(2, `2`))
		c1.waitAck(2)
		if a.sessions != nil {
			if s := a.sessions.get(w.SessionID); s.Epoch != 1 {
				t.Fatalf("epoch after refused resumes = %d, want 1", s.Epoch)
			}
		}
		if got := a.metric("filehub_ws_sessions_fenced_total"); got != 0 {
			t.Errorf("A's sessions_fenced_total = %v, want 0", got)
		}
	})
}

// TestDurableResumeAfterTTLOfDeadOwner: the instance holding an attached
// session dies; the session's last sign of life is its last save. A
// resume on another instance later than the TTL is refused as expired
// (the claim enforces the TTL between the cleanup service's runs); within
// the TTL it resumes.
func TestDurableResumeAfterTTLOfDeadOwner(t *testing.T) {
	inDurableModes(t, func(t *testing.T, m mode) {
		const ttl = 300 * time.Millisecond
		for _, late := range []bool{false, true} {
			a := newEnvIn(t, m, wsserver.Config{SessionTTL: ttl})
			c, w := a.connect(t, "rw")
			c.send(msg(1, `1`))
			c.waitAck(1)
			a.srv.Crash()
			a.stop()
			crashed := time.Now()
			b := a.twin(t, wsserver.Config{SessionTTL: ttl})
			if late {
				waitFor(t, "the TTL to pass", func() bool { return time.Since(crashed) > 2*ttl })
			}
			_, w2 := b.resume(t, "rw", w, 1)
			switch {
			case late && (w2.Resumed || w2.ResumeRefused != wsproto.RefusedExpired):
				t.Fatalf("resume after the TTL: welcome = %+v, want refused expired", w2)
			case !late && !w2.Resumed && time.Since(crashed) < ttl/2:
				t.Fatalf("resume within the TTL: welcome = %+v, want resumed", w2)
			}
		}
	})
}

// TestDurableDroppedResultIsNeverReplayed: a request with effects whose
// result was dropped for space ran to its end; re-sent with its id it is
// refused (conflict), not run in replay mode — here it would delete the
// file a second time, after a restore.
func TestDurableDroppedResultIsNeverReplayed(t *testing.T) {
	inDurableModes(t, func(t *testing.T, m mode) {
		e := newEnvIn(t, m, wsserver.Config{ResultCacheBytes: 64}) // every file result is over the bound
		f := e.upload(t, "one.txt", "1")
		c, _ := e.connect(t, "rw")
		if res := c.call(1, "del", wsproto.MethodFilesDelete, `{"id":"`+f.ID+`"}`); res.Error != nil {
			t.Fatal(res.Error)
		}
		if res := c.call(2, "undo", wsproto.MethodFilesRestore, `{"id":"`+f.ID+`"}`); res.Error != nil {
			t.Fatal(res.Error)
		}
		wantError(t, c.call(3, "del", wsproto.MethodFilesDelete, `{"id":"`+f.ID+`"}`), filehub.ECONFLICT)
		if g, err := e.files.Find(t.Context(), f.ID); err != nil || g.Deleted() {
			t.Fatalf("after the refused re-send the file is %+v (%v), want live", g, err)
		}
	})
}
