package server_test

import (
	"context"
	"net/http"
	"net/netip"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub/wsproto"
)

// TestBadKeyBehindProxyDoesNotLockOutOthers runs the whole daemon behind a
// (simulated) trusted reverse proxy: every request comes from 127.0.0.1 and
// names its client in X-Forwarded-For. One client keeps sending a bad key
// until it gets 429; a valid key, from another client and from the failing
// client itself, still gets through, over HTTP and at the /v1/ws upgrade.
func TestBadKeyBehindProxyDoesNotLockOutOthers(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	srv := MustNew(t, cfg)
	ctx, stop := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(ctx) }()
	defer func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	get := func(client, key string) int {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+srv.Addr()+"/v1/files", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", client)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	limited := false
	for range 100 { // the default burst is 20
		if get("203.0.113.7", "fhk_wrong") == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("the failing client was never limited")
	}
	if code := get("198.51.100.2", testKey); code != http.StatusOK {
		t.Errorf("valid key from another client behind the proxy: %d, want 200", code)
	}
	if code := get("203.0.113.7", testKey); code != http.StatusOK {
		t.Errorf("valid key from the failing client: %d, want 200", code)
	}
	if code := get("198.51.100.3", "fhk_other_wrong"); code != http.StatusUnauthorized {
		t.Errorf("another client's first bad key: %d, want 401 (its own budget)", code)
	}
	d := websocket.Dialer{Subprotocols: []string{wsproto.Subprotocol}}
	for _, client := range []string{"198.51.100.2", "203.0.113.7"} {
		ws, resp, err := d.Dial("ws://"+srv.Addr()+"/v1/ws", http.Header{
			"Authorization": {"Bearer " + testKey}, "X-Forwarded-For": {client}})
		if err != nil {
			t.Errorf("WebSocket upgrade with a valid key from %s: %v (%v)", client, err, resp)
			continue
		}
		resp.Body.Close()
		ws.Close()
	}
	ws, resp, err := d.Dial("ws://"+srv.Addr()+"/v1/ws", http.Header{
		"Authorization": {"Bearer fhk_wrong"}, "X-Forwarded-For": {"203.0.113.7"}})
	if err == nil {
		ws.Close()
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("WebSocket upgrade with the bad key from the failing client: %v, want 429 (shared limiter)", resp)
	} else {
		resp.Body.Close()
	}
}
