package wsserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub/wsproto"
	"github.com/filehub/filehub/wsserver"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t, wsserver.Config{})
	for _, tc := range []struct {
		name       string
		header     string // bearer key sent at the upgrade
		token      string // token sent in hello
		wantStatus int    // refused upgrade; 0: upgraded
		wantClose  int    // close after hello; 0: welcome
		wantCode   string // code of the error frame or problem
	}{
		{name: "header", header: e.keys["rw"]},
		{name: "hello token", token: e.keys["ro"]},
		{name: "admin header", header: e.keys["admin"]},
		{name: "header wins over token", header: e.keys["rw"], token: "fhk_bogus"},
		{name: "bad header key", header: "fhk_bogus", wantStatus: http.StatusUnauthorized, wantCode: "unauthorized"},
		{name: "bad hello token", token: "fhk_bogus", wantClose: wsproto.CloseAuthFailed, wantCode: "unauthorized"},
		{name: "no credentials", wantClose: wsproto.CloseAuthFailed, wantCode: "unauthorized"},
		{name: "metrics-only header", header: e.keys["metrics"], wantStatus: http.StatusForbidden, wantCode: "forbidden"},
		{name: "metrics-only token", token: e.keys["metrics"], wantClose: wsproto.CloseAuthFailed, wantCode: "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := e.dial(t, tc.header)
			if tc.wantStatus != 0 {
				if err == nil || resp == nil || resp.StatusCode != tc.wantStatus {
					t.Fatalf("dial = %v, %v; want HTTP %d", resp, err, tc.wantStatus)
				}
				checkProblem(t, resp, tc.wantCode)
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			c.send(&wsproto.Frame{Type: wsproto.TypeHello, Token: tc.token})
			f := c.next()
			if tc.wantClose == 0 {
				if f.Type != wsproto.TypeWelcome {
					t.Fatalf("got %+v, want welcome", f)
				}
				return
			}
			if f.Type != wsproto.TypeError || f.Code != tc.wantCode {
				t.Fatalf("got %+v, want error %s", f, tc.wantCode)
			}
			if code := c.closeCode(); code != tc.wantClose {
				t.Fatalf("close code %d, want %d", code, tc.wantClose)
			}
		})
	}
}

func checkProblem(t *testing.T, resp *http.Response, code string) {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	b, _ := io.ReadAll(resp.Body)
	var p struct {
		Code   string `json:"code"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(b, &p); err != nil || p.Code != code || p.Status != resp.StatusCode {
		t.Errorf("problem = %s (%v), want code %s, status %d", b, err, code, resp.StatusCode)
	}
}

func TestWrongSubprotocol(t *testing.T) {
	e := newEnv(t, wsserver.Config{})
	for name, protos := range map[string][]string{
		"none":  nil,
		"other": {"filehub.v2", "chat"},
	} {
		t.Run(name, func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: protos}
			h := http.Header{"Authorization": {"Bearer " + e.keys["rw"]}}
			ws, resp, err := d.Dial(e.url, h)
			if err == nil {
				ws.Close()
				t.Fatal("upgrade succeeded")
			}
			if resp == nil || resp.StatusCode != http.StatusUpgradeRequired {
				t.Fatalf("dial = %v, %v; want 426", resp, err)
			}
			checkProblem(t, resp, "invalid")
		})
	}
}

func TestHelloTimeout(t *testing.T) {
	e := newEnv(t, wsserver.Config{HelloTimeout: 30 * time.Millisecond})
	c, _, err := e.dial(t, e.keys["rw"])
	if err != nil {
		t.Fatal(err)
	}
	if code := c.closeCode(); code != wsproto.CloseHelloTimeout {
		t.Fatalf("close code %d, want %d", code, wsproto.CloseHelloTimeout)
	}
}

func TestFirstFrameMustBeHello(t *testing.T) {
	e := newEnv(t, wsserver.Config{})
	c, _, err := e.dial(t, e.keys["rw"])
	if err != nil {
		t.Fatal(err)
	}
	c.send(msg(1, `1`))
	if f := c.next(); f.Type != wsproto.TypeError || f.Code != "invalid" {
		t.Fatalf("got %+v, want an invalid error", f)
	}
	if code := c.closeCode(); code != wsproto.CloseProtocolError {
		t.Fatalf("close code %d, want %d", code, wsproto.CloseProtocolError)
	}
}

func TestOversizeMessage(t *testing.T) {
	e := newEnv(t, wsserver.Config{MaxMessageBytes: 1024})
	c, w := e.connect(t, "rw")
	if w.MaxMessageBytes != 1024 {
		t.Errorf("welcome max_message_bytes = %d, want 1024", w.MaxMessageBytes)
	}
	c.send(msg(1, `"`+strings.Repeat("x", 2000)+`"`))
	if code := c.closeCode(); code != websocket.CloseMessageTooBig {
		t.Fatalf("close code %d, want %d", code, websocket.CloseMessageTooBig)
	}
}

func TestBinaryMessageIsProtocolError(t *testing.T) {
	e := newEnv(t, wsserver.Config{})
	c, _ := e.connect(t, "rw")
	if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"ack","ack":0}`)); err != nil {
		t.Fatal(err)
	}
	if f := c.next(); f.Type != wsproto.TypeError {
		t.Fatalf("got %+v, want error", f)
	}
	if code := c.closeCode(); code != wsproto.CloseProtocolError {
		t.Fatalf("close code %d, want %d", code, wsproto.CloseProtocolError)
	}
}

func TestPerKeyConnectionLimit(t *testing.T) {
	e := newEnv(t, wsserver.Config{MaxConnsPerKey: 2})
	first, _ := e.connect(t, "rw")
	e.connect(t, "rw")
	_, resp, err := e.dial(t, e.keys["rw"])
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection: %v, %v; want 429", resp, err)
	}
	checkProblem(t, resp, "rate_limited")
	// With the key in hello the limit can only be told after the upgrade.
	c, _, err := e.dial(t, "")
	if err != nil {
		t.Fatal(err)
	}
	c.send(&wsproto.Frame{Type: wsproto.TypeHello, Token: e.keys["rw"]})
	if f := c.next(); f.Type != wsproto.TypeError || f.Code != "rate_limited" {
		t.Fatalf("got %+v, want a rate_limited error", f)
	}
	if code := c.closeCode(); code != wsproto.CloseTooManyConns {
		t.Fatalf("close code %d, want %d", code, wsproto.CloseTooManyConns)
	}
	// Other keys are not affected, and a closed connection frees its slot.
	e.connect(t, "ro")
	first.ws.Close()
	waitFor(t, "a free slot", func() bool {
		c, _, err := e.dial(t, e.keys["rw"])
		if err == nil {
			c.ws.Close()
		}
		return err == nil
	})
}
