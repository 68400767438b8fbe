package wsserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
	"github.com/filehub/filehub/wsserver"
)

func TestDuplicateFrameDropped(t *testing.T) { bothModes(t, testDuplicateFrameDropped) }

func testDuplicateFrameDropped(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{})
	c, _ := e.connect(t, "rw")
	c.send(msg(1, `"a"`))
	got := c.waitAck(1)
	c.send(msg(1, `"a again"`)) // a replay: dropped, acknowledged again
	got = append(got, c.waitAck(1)...)
	c.send(msg(2, `"b"`))
	got = append(got, c.waitAck(2)...)
	for len(got) < 2 {
		got = append(got, c.expect(wsproto.TypeMsg))
	}
	if len(got) != 2 || string(got[0].Data) != `"a"` || string(got[1].Data) != `"b"` || got[1].Seq != 2 {
		for _, f := range got {
			t.Logf("%+v", f)
		}
		t.Fatalf("got %d echoes, want a and b once each", len(got))
	}
}

func TestSequenceGapIsProtocolError(t *testing.T) { bothModes(t, testSequenceGapIsProtocolError) }

func testSequenceGapIsProtocolError(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{})
	c, _ := e.connect(t, "rw")
	c.send(msg(1, `1`), msg(3, `3`))
	for {
		f := c.next()
		if f.Type == wsproto.TypeError {
			if f.Code != "invalid" {
				t.Errorf("error code %q, want invalid", f.Code)
			}
			break
		}
	}
	if code := c.closeCode(); code != wsproto.CloseProtocolError {
		t.Fatalf("close code %d, want %d", code, wsproto.CloseProtocolError)
	}
}

func TestAckBeyondSentIsProtocolError(t *testing.T) { bothModes(t, testAckBeyondSentIsProtocolError) }

func testAckBeyondSentIsProtocolError(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{})
	c, _ := e.connect(t, "rw")
	c.send(&wsproto.Frame{Type: wsproto.TypeAck, Ack: 5})
	if f := c.expect(wsproto.TypeError); f.Code != "invalid" {
		t.Errorf("error code %q, want invalid", f.Code)
	}
	if code := c.closeCode(); code != wsproto.CloseProtocolError {
		t.Fatalf("close code %d, want %d", code, wsproto.CloseProtocolError)
	}
}

func TestMsgNeedsWriteScope(t *testing.T) { bothModes(t, testMsgNeedsWriteScope) }

func testMsgNeedsWriteScope(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{})
	c, _ := e.connect(t, "ro")
	c.send(msg(1, `1`))
	if f := c.expect(wsproto.TypeError); f.Code != filehub.EFORBIDDEN {
		t.Errorf("error code %q, want forbidden", f.Code)
	}
	if code := c.closeCode(); code != wsproto.CloseAuthFailed {
		t.Fatalf("close code %d, want %d", code, wsproto.CloseAuthFailed)
	}
}

func TestResumeReplaysAndDedups(t *testing.T) { bothModes(t, testResumeReplaysAndDedups) }

func testResumeReplaysAndDedups(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{})
	c, w := e.connect(t, "rw")
	c.send(msg(1, `1`), msg(2, `2`))
	echoes := c.waitAck(2)
	for len(echoes) < 2 {
		echoes = append(echoes, c.expect(wsproto.TypeMsg))
	}
	// The client received both echoes but lost the connection before
	// handing the second to its application (it acknowledges only 1).
	c.send(&wsproto.Frame{Type: wsproto.TypeAck, Ack: 1})
	c.ws.Close()

	c2, w2 := e.resume(t, "rw", w, 1)
	if !w2.Resumed || w2.SessionID != w.SessionID || w2.LastSeq != 2 {
		t.Fatalf("welcome = %+v, want resumed with last_seq 2", w2)
	}
	if w2.ResumeToken == w.ResumeToken {
		t.Error("resume token did not rotate")
	}
	// Server frame 2 is replayed with its original seq.
	if f := c2.expect(wsproto.TypeMsg); f.Seq != 2 || string(f.Data) != "2" {
		t.Fatalf("replayed %+v, want msg 2", f)
	}
	// The client replays its unacknowledged frames; the server has them.
	c2.send(msg(2, `2`), msg(3, `3`))
	got := c2.waitAck(3)
	for len(got) < 1 {
		got = append(got, c2.expect(wsproto.TypeMsg))
	}
	if len(got) != 1 || got[0].Seq != 3 || string(got[0].Data) != "3" {
		t.Fatalf("after replay got %v, want exactly the echo of 3 as seq 3", got)
	}
	// The old token is spent.
	c3, w3 := e.resume(t, "rw", w, 0)
	if w3.Resumed {
		t.Fatal("resumed with a rotated-out token")
	}
	c3.ws.Close()
	if got := e.metric("filehub_ws_resumes_total"); got != 2 {
		t.Errorf("resumes_total = %v, want 2", got)
	}
}

func TestResumeRefused(t *testing.T) { bothModes(t, testResumeRefused) }

func testResumeRefused(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{SessionTTL: 20 * time.Millisecond})
	for _, tc := range []struct {
		name   string
		key    string
		mangle func(w *wsproto.Frame)
		wait   bool
	}{
		{name: "bad token", key: "rw", mangle: func(w *wsproto.Frame) { w.ResumeToken += "x" }},
		{name: "unknown session", key: "rw", mangle: func(w *wsproto.Frame) { w.SessionID = "s_nope" }},
		{name: "other key", key: "admin"},
		{name: "expired", key: "rw", wait: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, w := e.connect(t, "rw")
			c.send(msg(1, `1`))
			c.waitAck(1)
			c.ws.Close()
			if tc.mangle != nil {
				tc.mangle(w)
			}
			if tc.wait {
				waitFor(t, "the session to expire", func() bool { return e.metric("filehub_ws_sessions_active") == 0 })
			}
			c2, w2 := e.resume(t, tc.key, w, 1)
			if w2.Resumed || w2.SessionID == w.SessionID || w2.LastSeq != 0 {
				t.Fatalf("welcome = %+v, want a new session", w2)
			}
			// The new session starts over at seq 1.
			c2.send(msg(1, `"new"`))
			if f := c2.expect(wsproto.TypeMsg); f.Seq != 1 {
				t.Fatalf("first msg of the new session has seq %d", f.Seq)
			}
			c2.ws.Close()
		})
	}
}

func TestTakeover(t *testing.T) { bothModes(t, testTakeover) }

func testTakeover(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{})
	old, w := e.connect(t, "rw")
	old.send(msg(1, `1`))
	old.waitAck(1)
	c2, w2 := e.resume(t, "rw", w, 0)
	if !w2.Resumed {
		t.Fatalf("welcome = %+v, want resumed", w2)
	}
	if code := old.closeCode(); code != wsproto.CloseTakenOver {
		t.Fatalf("old connection closed with %d, want %d", code, wsproto.CloseTakenOver)
	}
	if f := c2.expect(wsproto.TypeMsg); f.Seq != 1 {
		t.Fatalf("replayed %+v, want msg 1", f)
	}
	// The session keeps working on the new connection, and the old one's
	// end did not detach it.
	c2.send(msg(2, `2`))
	if f := c2.expect(wsproto.TypeMsg); f.Seq != 2 {
		t.Fatalf("got %+v, want msg 2", f)
	}
	if got := e.metric("filehub_ws_sessions_connected"); got != 1 {
		t.Errorf("sessions_connected = %v, want 1", got)
	}
}

func TestManyMessagesAckedInOrder(t *testing.T) { bothModes(t, testManyMessagesAckedInOrder) }

func testManyMessagesAckedInOrder(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{})
	c, _ := e.connect(t, "rw")
	const n = 2000
	go func() {
		for i := int64(1); i <= n; i += 10 {
			var frames []*wsproto.Frame
			for j := i; j < i+10; j++ {
				frames = append(frames, msg(j, fmt.Sprint(j)))
			}
			c.send(frames...)
		}
	}()
	var next int64 = 1
	var acked int64
	for next <= n || acked < n {
		f := c.next()
		acked = max(acked, f.Ack)
		if f.Type != wsproto.TypeMsg {
			continue
		}
		if f.Seq != next || string(f.Data) != fmt.Sprint(next) {
			t.Fatalf("got msg seq %d data %s, want %d", f.Seq, f.Data, next)
		}
		next++
		if next%50 == 0 {
			c.send(&wsproto.Frame{Type: wsproto.TypeAck, Ack: f.Seq})
		}
	}
}

// A resume that takes a session over while the old connection is still
// processing a frame it had read waits for that frame: the welcome counts
// it, the old connection processes nothing after it, and the client's replay
// of the rest is processed once, on the new connection.
func TestTakeoverWaitsForFrameInProgress(t *testing.T) {
	bothModes(t, testTakeoverWaitsForFrameInProgress)
}

func testTakeoverWaitsForFrameInProgress(t *testing.T, m mode) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var mu sync.Mutex
	calls := map[string]int{}
	handler := func(_ context.Context, _ wsserver.Peer, data json.RawMessage) (json.RawMessage, error) {
		mu.Lock()
		calls[string(data)]++
		first := string(data) == "1" && calls["1"] == 1
		mu.Unlock()
		if first {
			close(entered)
			<-release
		}
		return data, nil
	}
	e := newEnvIn(t, m, wsserver.Config{MessageHandler: handler})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the server is closed (cleanups run last first)

	old, w := e.connect(t, "rw")
	old.send(msg(1, `1`), msg(2, `2`)) // one message: read together
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler was not called")
	}
	c, _, err := e.dial(t, e.keys["rw"])
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.send(&wsproto.Frame{Type: wsproto.TypeHello, SessionID: w.SessionID, ResumeToken: w.ResumeToken})
	if code := old.closeCode(); code != wsproto.CloseTakenOver {
		t.Fatalf("old connection closed with %d, want %d", code, wsproto.CloseTakenOver)
	}
	unblock()
	w2 := c.expect(wsproto.TypeWelcome)
	if !w2.Resumed || w2.LastSeq != 1 {
		t.Fatalf("welcome = %+v, want resumed with last_seq 1 (the frame in progress)", w2)
	}
	if f := c.expect(wsproto.TypeMsg); f.Seq != 1 || string(f.Data) != "1" {
		t.Fatalf("got %+v, want the echo of 1 as seq 1", f)
	}
	c.send(msg(2, `2`)) // what the welcome does not count, replayed
	got := c.waitAck(2)
	for len(got) < 1 {
		got = append(got, c.expect(wsproto.TypeMsg))
	}
	if len(got) != 1 || got[0].Seq != 2 || string(got[0].Data) != "2" {
		t.Fatalf("got %v, want exactly the echo of 2 as seq 2", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["1"] != 1 || calls["2"] != 1 {
		t.Fatalf("handler calls %v, want each message once", calls)
	}
}

// The connection may be cut after the server wrote welcome but before the
// client read it: the token the resume presented stays valid until the
// client sends a frame on the new connection (protocol §5.2).
func TestResumeWithPreviousTokenUntilFirstFrame(t *testing.T) {
	bothModes(t, testResumeWithPreviousTokenUntilFirstFrame)
}

func testResumeWithPreviousTokenUntilFirstFrame(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{})
	c, w := e.connect(t, "rw")
	c.send(msg(1, `"a"`))
	c.waitAck(1)
	c.ws.Close()

	// This welcome is "lost": the client never sends anything on c2.
	c2, w2 := e.resume(t, "rw", w, 0)
	if !w2.Resumed || w2.ResumeToken == w.ResumeToken {
		t.Fatalf("welcome = %+v, want resumed with a new token", w2)
	}
	c2.ws.Close()

	c3, w3 := e.resume(t, "rw", w, 0)
	if !w3.Resumed || w3.SessionID != w.SessionID || w3.LastSeq != 1 {
		t.Fatalf("welcome = %+v, want the session resumed with the previous token", w3)
	}
	if f := c3.expect(wsproto.TypeMsg); f.Seq != 1 {
		t.Fatalf("replayed %+v, want msg 1", f)
	}
	c3.send(msg(2, `"b"`)) // the first frame: the previous token is spent
	c3.waitAck(2)
	c3.ws.Close()

	c4, w4 := e.resume(t, "rw", w, 0)
	if w4.Resumed {
		t.Fatalf("welcome = %+v: resumed with a token spent by a frame on a later connection", w4)
	}
	c4.ws.Close()
	c5, w5 := e.resume(t, "rw", w3, 1)
	if !w5.Resumed || w5.SessionID != w.SessionID || w5.LastSeq != 2 {
		t.Fatalf("welcome = %+v, want resumed with the current token", w5)
	}
	if f := c5.expect(wsproto.TypeMsg); f.Seq != 2 || string(f.Data) != `"b"` {
		t.Fatalf("replayed %+v, want msg 2", f)
	}
}

// A resume's last_seq below an ack the client sent asks for frames the
// server has dropped: a protocol error that leaves the session as it was.
func TestResumeBelowOwnAckIsProtocolError(t *testing.T) {
	bothModes(t, testResumeBelowOwnAckIsProtocolError)
}

func testResumeBelowOwnAckIsProtocolError(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{})
	c, w := e.connect(t, "rw")
	c.send(msg(1, `1`))
	c.expect(wsproto.TypeMsg)
	c.send(&wsproto.Frame{Type: wsproto.TypeAck, Ack: 1}, msg(2, `2`))
	c.waitAck(2)
	c.ws.Close()

	bad, _, err := e.dial(t, e.keys["rw"])
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	bad.send(&wsproto.Frame{Type: wsproto.TypeHello, SessionID: w.SessionID, ResumeToken: w.ResumeToken, LastSeq: 0})
	if f := bad.expect(wsproto.TypeError); f.Code != filehub.EINVALID {
		t.Errorf("error code %q, want invalid", f.Code)
	}
	if code := bad.closeCode(); code != wsproto.CloseProtocolError {
		t.Fatalf("close code %d, want %d", code, wsproto.CloseProtocolError)
	}

	c2, w2 := e.resume(t, "rw", w, 1)
	if !w2.Resumed || w2.LastSeq != 2 {
		t.Fatalf("welcome = %+v, want resumed with last_seq 2", w2)
	}
	if f := c2.expect(wsproto.TypeMsg); f.Seq != 2 || string(f.Data) != "2" {
		t.Fatalf("replayed %+v, want msg 2", f)
	}
}
