package wsserver_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/filehub/filehub/wsproto"
	"github.com/filehub/filehub/wsserver"
)

func TestHalfOpenClientIsClosedAndSessionKept(t *testing.T) {
	bothModes(t, testHalfOpenClientIsClosedAndSessionKept)
}

func testHalfOpenClientIsClosedAndSessionKept(t *testing.T, m mode) {
	// A short ping interval makes many pings; a pong timeout well above it
	// keeps a live but briefly descheduled client (a loaded machine, the
	// race detector) from looking silent.
	e := newEnvIn(t, m, wsserver.Config{PingInterval: 20 * time.Millisecond, PongTimeout: 300 * time.Millisecond})
	c, w := e.connect(t, "rw")
	if w.HeartbeatMS != 20 {
		t.Errorf("heartbeat_ms = %d, want 20", w.HeartbeatMS)
	}
	// The client stops reading, so it answers no pings (gorilla answers
	// them from its reader), and sends nothing.
	waitFor(t, "the server to drop the silent connection", func() bool {
		return e.metric("filehub_ws_sessions_connected") == 0
	})
	if got := e.metric("filehub_ws_sessions_active"); got != 1 {
		t.Fatalf("sessions_active = %v, want the session kept", got)
	}
	c.ws.Close()
	c2, w2 := e.resume(t, "rw", w, 0)
	if !w2.Resumed {
		t.Fatalf("welcome = %+v, want resumed", w2)
	}
	// A client that answers pings stays connected across many intervals.
	go func() {
		for {
			if _, _, err := c2.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	waitFor(t, "pongs", func() bool { return e.metric("filehub_ws_ping_rtt_seconds") >= 10 })
	if got := e.metric("filehub_ws_sessions_connected"); got != 1 {
		t.Fatalf("sessions_connected = %v with a live client", got)
	}
}

func TestSlowConsumerThenLosslessResume(t *testing.T) {
	bothModes(t, testSlowConsumerThenLosslessResume)
}

func testSlowConsumerThenLosslessResume(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{OutboxMaxFrames: 4, SlowConsumerTimeout: 50 * time.Millisecond})
	c, w := e.connect(t, "rw")
	const n = 7
	for i := int64(1); i <= n; i++ {
		c.send(msg(i, fmt.Sprint(i)))
	}
	// The client reads but never acknowledges: 4 echoes fill the outbox,
	// the rest of its messages wait unprocessed.
	received := map[int64]string{}
	var serverHas int64
	for {
		f, err := c.read(5 * time.Second)
		if err != nil {
			break
		}
		serverHas = max(serverHas, f.Ack)
		if f.Type == wsproto.TypeMsg {
			received[f.Seq] = string(f.Data)
		}
	}
	if len(received) != 4 {
		t.Fatalf("received %d echoes before the close, want 4 (the outbox limit)", len(received))
	}
	if got := e.metric("filehub_ws_slow_consumer_disconnects_total"); got != 1 {
		t.Fatalf("slow_consumer_disconnects_total = %v, want 1", got)
	}
	c2, w2 := e.resume(t, "rw", w, 4)
	if !w2.Resumed || w2.LastSeq < serverHas {
		t.Fatalf("welcome = %+v, want resumed", w2)
	}
	// Replay the client frames the server has not processed, acknowledging
	// everything from now on.
	for i := w2.LastSeq + 1; i <= n; i++ {
		c2.send(msg(i, fmt.Sprint(i)))
	}
	for len(received) < n {
		f := c2.expect(wsproto.TypeMsg)
		if _, dup := received[f.Seq]; dup {
			t.Fatalf("msg %d delivered twice", f.Seq)
		}
		received[f.Seq] = string(f.Data)
		c2.send(&wsproto.Frame{Type: wsproto.TypeAck, Ack: f.Seq})
	}
	for i := int64(1); i <= n; i++ {
		if received[i] != fmt.Sprint(i) {
			t.Errorf("echo %d = %q", i, received[i])
		}
	}
}

func TestRevokedKeyIsCutOff(t *testing.T) { bothModes(t, testRevokedKeyIsCutOff) }

func testRevokedKeyIsCutOff(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{KeyRecheckInterval: 10 * time.Millisecond})
	c, _ := e.connect(t, "rw")
	if _, err := e.db.RevokeAPIKey(t.Context(), "rw", time.Now()); err != nil {
		t.Fatal(err)
	}
	if f := c.expect(wsproto.TypeError); f.Code != "unauthorized" {
		t.Fatalf("error %+v, want unauthorized", f)
	}
	if code := c.closeCode(); code != wsproto.CloseAuthFailed {
		t.Fatalf("close code %d, want %d", code, wsproto.CloseAuthFailed)
	}
	waitFor(t, "the session to be dropped", func() bool { return e.metric("filehub_ws_sessions_active") == 0 })
}

func TestShutdown(t *testing.T) { bothModes(t, testShutdown) }

func testShutdown(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{})
	var clients []*client
	for range 3 {
		c, _ := e.connect(t, "rw")
		c.send(msg(1, `1`))
		c.expect(wsproto.TypeMsg)
		clients = append(clients, c)
	}
	idle, _, err := e.dial(t, e.keys["ro"]) // upgraded, no hello yet
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.srv.Shutdown(ctx) }()
	for _, c := range append(clients, idle) {
		if code := c.closeCode(); code != wsproto.CloseServerShutdown {
			t.Errorf("close code %d, want %d", code, wsproto.CloseServerShutdown)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, resp, err := e.dial(t, e.keys["rw"]); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after Shutdown: %v, %v; want 503", resp, err)
	}
}
