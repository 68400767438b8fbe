package wsserver_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
	"github.com/filehub/filehub/wsserver"
)

// An abusive client asks for many large results: the bytes the server
// keeps for re-sent requests stay within the per-session and the total
// bound (measured by the result_cache_bytes gauge, which counts exactly
// the bodies held), another client's requests keep working and its recent
// results are still served again, and a re-sent request whose result was
// dropped is answered with an error instead of running twice.
func TestResultCacheBoundedInBytes(t *testing.T) { bothModes(t, testResultCacheBoundedInBytes) }

func testResultCacheBoundedInBytes(t *testing.T, m mode) {
	const perSession, total = 16 << 10, 24 << 10
	e := newEnvIn(t, m, wsserver.Config{ResultCacheBytes: perSession, ResultCacheTotalBytes: total})
	long := strings.Repeat("n", 200)
	for i := range 30 {
		e.upload(t, fmt.Sprintf("%s-%02d.txt", long, i), fmt.Sprintf("content %d", i))
	}
	abuser, _ := e.connect(t, "rw")
	victim, _ := e.connect(t, "ro")

	var first *wsproto.Frame
	for i := int64(1); i <= 40; i++ {
		f := abuser.call(i, fmt.Sprintf("list-%d", i), wsproto.MethodFilesList, `{"limit":30}`)
		if f.Error != nil {
			t.Fatalf("list %d: %+v", i, f.Error)
		}
		if i == 1 {
			first = f
			if len(f.Result) < 4<<10 {
				t.Fatalf("a result of %d bytes is too small for the test", len(f.Result))
			}
		}
		if got := e.metric("filehub_ws_result_cache_bytes"); got > perSession {
			t.Fatalf("after %d results of one session: %v bytes held, over the per-session bound %d", i, got, perSession)
		}
	}
	for i := int64(1); i <= 40; i++ {
		f := victim.call(i, fmt.Sprintf("v-%d", i), wsproto.MethodFilesList, `{"limit":30}`)
		if f.Error != nil {
			t.Fatalf("victim's list %d: %+v", i, f.Error)
		}
		if got := e.metric("filehub_ws_result_cache_bytes"); got > total {
			t.Fatalf("%v bytes held over all sessions, over the total bound %d", got, total)
		}
	}
	// The victim's latest result is still served again, unchanged.
	again := victim.call(41, "v-40", wsproto.MethodFilesList, `{"limit":30}`)
	if again.Error != nil || len(again.Result) != len(first.Result) {
		t.Errorf("victim's re-sent request: %+v", again)
	}
	// The abuser's first result was dropped: a re-send is refused, not run.
	gone := abuser.call(41, "list-1", wsproto.MethodFilesList, `{"limit":30}`)
	if gone.Error == nil || gone.Error.Code != filehub.ECONFLICT {
		t.Errorf("re-sent request whose result was dropped: %+v, want a conflict error", gone)
	}
}

// A result larger than the per-session bound is not kept at all, and its id
// still guards against a second run.
func TestOversizedResultNotKept(t *testing.T) { bothModes(t, testOversizedResultNotKept) }

func testOversizedResultNotKept(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{ResultCacheBytes: 512})
	for i := range 10 {
		e.upload(t, fmt.Sprintf("file-%02d.txt", i), fmt.Sprint(i))
	}
	c, _ := e.connect(t, "rw")
	if f := c.call(1, "big", wsproto.MethodFilesList, `{}`); f.Error != nil {
		t.Fatal(f.Error)
	}
	if got := e.metric("filehub_ws_result_cache_bytes"); got != 0 {
		t.Errorf("%v bytes held for a result over the bound", got)
	}
	if f := c.call(2, "big", wsproto.MethodFilesList, `{}`); f.Error == nil || f.Error.Code != filehub.ECONFLICT {
		t.Errorf("re-sent oversized request: %+v, want conflict", f)
	}
}

// One key cannot hold more sessions than MaxSessionsPerKey, connected or
// waiting for a resume: beyond it the upgrade is refused with 429 and a
// problem document (header key) or hello with rate_limited and 4009 (key in
// hello). Its sessions can still be resumed, and other keys are unaffected.
func TestSessionsPerKeyCapped(t *testing.T) { bothModes(t, testSessionsPerKeyCapped) }

func testSessionsPerKeyCapped(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{MaxSessionsPerKey: 3})
	var welcomes []*wsproto.Frame
	for range 3 {
		c, w := e.connect(t, "rw")
		c.ws.Close() // the session stays for SessionTTL
		welcomes = append(welcomes, w)
	}
	waitFor(t, "the sessions to be disconnected", func() bool { return e.metric("filehub_ws_sessions_connected") == 0 })

	_, resp, err := e.dial(t, e.keys["rw"])
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth session by header: %v, %v; want 429", resp, err)
	}
	checkProblem(t, resp, filehub.ERATELIMIT)

	c, _, err := e.dial(t, "")
	if err != nil {
		t.Fatal(err)
	}
	c.send(&wsproto.Frame{Type: wsproto.TypeHello, Token: e.keys["rw"]})
	if f := c.next(); f.Type != wsproto.TypeError || f.Code != filehub.ERATELIMIT {
		t.Fatalf("fourth session by hello: %+v, want rate_limited", f)
	}
	if code := c.closeCode(); code != wsproto.CloseTooManyConns {
		t.Errorf("close code %d, want %d", code, wsproto.CloseTooManyConns)
	}
	// A resume by hello token adds no session and is accepted.
	c, _, err = e.dial(t, "")
	if err != nil {
		t.Fatal(err)
	}
	w := welcomes[0]
	c.send(&wsproto.Frame{Type: wsproto.TypeHello, Token: e.keys["rw"], SessionID: w.SessionID, ResumeToken: w.ResumeToken})
	if f := c.expect(wsproto.TypeWelcome); !f.Resumed {
		t.Errorf("resume at the cap: %+v", f)
	}
	// Another key is not affected.
	e.connect(t, "ro")
	if got := e.metric("filehub_ws_sessions_active"); got != 4 {
		t.Errorf("sessions_active = %v, want 4", got)
	}
}

// Connections upgraded without a key are capped while they have not sent
// hello (503 beyond), and time out sooner than those with a key.
func TestPendingHellosCapped(t *testing.T) { bothModes(t, testPendingHellosCapped) }

func testPendingHellosCapped(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{MaxPendingHellos: 2, AnonHelloTimeout: time.Hour})
	var anon []*client
	for range 2 {
		c, _, err := e.dial(t, "")
		if err != nil {
			t.Fatal(err)
		}
		anon = append(anon, c)
	}
	_, resp, err := e.dial(t, "")
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third pending connection: %v, %v; want 503", resp, err)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	checkProblem(t, resp, filehub.EUNAVAILABLE)
	// A client with a header key is not held up by them.
	e.connect(t, "rw")
	// Once one of them has said hello, there is room again.
	anon[0].send(&wsproto.Frame{Type: wsproto.TypeHello, Token: e.keys["ro"]})
	anon[0].expect(wsproto.TypeWelcome)
	if _, _, err := e.dial(t, ""); err != nil {
		t.Errorf("pending connection after a hello: %v", err)
	}
}

func TestAnonymousHelloTimeout(t *testing.T) { bothModes(t, testAnonymousHelloTimeout) }

func testAnonymousHelloTimeout(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{AnonHelloTimeout: 50 * time.Millisecond, HelloTimeout: time.Hour})
	keyed, _, err := e.dial(t, e.keys["rw"])
	if err != nil {
		t.Fatal(err)
	}
	anon, _, err := e.dial(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if code := anon.closeCode(); code != wsproto.CloseHelloTimeout {
		t.Errorf("silent connection without a key: close %d, want %d", code, wsproto.CloseHelloTimeout)
	}
	// The keyed connection, silent just as long, is still open.
	keyed.send(&wsproto.Frame{Type: wsproto.TypeHello})
	keyed.expect(wsproto.TypeWelcome)
}
