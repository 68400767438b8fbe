package wsserver_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/auth"
	"github.com/filehub/filehub/wsproto"
	"github.com/filehub/filehub/wsserver"
)

// lateKeys is a KeyStore whose store is set after the env exists.
type lateKeys struct{ ks auth.KeyStore }

func (l *lateKeys) FindAPIKeyByHash(ctx context.Context, hash []byte) (*filehub.APIKey, error) {
	return l.ks.FindAPIKeyByHash(ctx, hash)
}

// Failed authentications over WebSocket are charged to the client's address
// by the Authenticator the server is given, the one the HTTP API shares:
// after the burst, further failures are refused at the upgrade (429) and in
// hello (rate_limited, 1013: worth retrying later), and failures charged
// elsewhere (as by the HTTP API) count the same. A good key from the same
// address is still accepted, on both paths (issue 15).
func TestFailedAuthenticationsAreLimited(t *testing.T) {
	ks := &lateKeys{}
	// Slow enough that no token comes back during the test.
	a := auth.New(ks, auth.Config{FailureLimit: 0.001, FailureBurst: 3})
	e := newEnv(t, wsserver.Config{Auth: a})
	ks.ks = e.db

	// One failure charged by another surface, two over WebSocket.
	if _, _, err := a.Authenticate(t.Context(), "127.0.0.1", "fhk_bogus", ""); filehub.ErrorCode(err) != filehub.EUNAUTHORIZED {
		t.Fatalf("direct: %v", err)
	}
	if _, resp, err := e.dial(t, "fhk_bogus"); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad header: %v, %v; want 401", resp, err)
	}
	c, _, err := e.dial(t, "")
	if err != nil {
		t.Fatal(err)
	}
	c.send(&wsproto.Frame{Type: wsproto.TypeHello, Token: "fhk_bogus"})
	if f := c.next(); f.Code != filehub.EUNAUTHORIZED {
		t.Fatalf("bad token: %+v", f)
	}

	// The burst is spent: further failures are refused.
	_, resp, err := e.dial(t, "fhk_bogus")
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("bad header after the burst: %v, %v; want 429", resp, err)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	checkProblem(t, resp, filehub.ERATELIMIT)
	c, _, err = e.dial(t, "")
	if err != nil {
		t.Fatal(err)
	}
	c.send(&wsproto.Frame{Type: wsproto.TypeHello, Token: "fhk_other_bogus"})
	if f := c.next(); f.Type != wsproto.TypeError || f.Code != filehub.ERATELIMIT {
		t.Fatalf("bad token after the burst: %+v, want rate_limited", f)
	}
	if code := c.closeCode(); code != 1013 {
		t.Errorf("close code %d, want 1013 (try again later)", code)
	}

	// A valid key is never refused for the failures.
	good, _, err := e.dial(t, e.keys["rw"])
	if err != nil {
		t.Fatalf("good header after the burst: %v", err)
	}
	good.ws.Close()
	c, _, err = e.dial(t, "")
	if err != nil {
		t.Fatal(err)
	}
	c.send(&wsproto.Frame{Type: wsproto.TypeHello, Token: e.keys["rw"]})
	if f := c.next(); f.Type != wsproto.TypeWelcome {
		t.Fatalf("good token after the burst: %+v, want welcome", f)
	}
}
