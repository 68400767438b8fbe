package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/client"
	"github.com/filehub/filehub/server"
	"github.com/filehub/filehub/wsclient"
	"github.com/filehub/filehub/wsproto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testKey = "fhk_server-test-key-0123456789"

// syncBuffer collects the daemon's logs from its goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testConfig is a daemon on 127.0.0.1:0 with its data in dir, whose logs
// are shown if the test fails.
func testConfig(tb testing.TB, dir string) server.Config {
	tb.Helper()
	logs := &syncBuffer{}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("server logs:\n%s", logs.String())
		}
	})
	reg := prometheus.NewRegistry()
	return server.Config{
		DataDir:      dir,
		Listen:       "127.0.0.1:0",
		MinFreeSpace: -1, // the test machine's free space is not under test
		BootstrapKey: testKey,
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:   reg,
		Gatherer:     reg,
	}
}

// MustNew builds a daemon with cfg and fails the test if it cannot.
func MustNew(tb testing.TB, cfg server.Config) *server.Server {
	tb.Helper()
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("server.New: %v", err)
	}
	return srv
}

// dialRaw opens a WebSocket session by hand (hello, welcome), to see the
// close frame the server sends when it stops.
func dialRaw(tb testing.TB, addr string) *websocket.Conn {
	tb.Helper()
	d := websocket.Dialer{Subprotocols: []string{wsproto.Subprotocol}, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial("ws://"+addr+"/v1/ws", http.Header{"Authorization": {"Bearer " + testKey}})
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello"}`)); err != nil {
		tb.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil || !bytes.Contains(msg, []byte(`"welcome"`)) {
		tb.Fatalf("welcome: %q, %v", msg, err)
	}
	return ws
}

// TestUploadReachesSubscriber runs the whole daemon: a file uploaded over
// the HTTP API appears as file.created on a WebSocket subscription, which
// needs the file service, the event log and the WebSocket hub wired
// together. The hub's poll is switched off (an hour), so the second
// upload's event, sent to a subscription that is already live, can only
// arrive through the notifier the file service signals. Stopping it tells WebSocket clients to reconnect (4005),
// returns from Run without error and releases the data dir.
func TestUploadReachesSubscriber(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.WSEventPollInterval = time.Hour
	srv := MustNew(t, cfg)
	if k := srv.BootstrapKey(); k != "" {
		t.Errorf("BootstrapKey = %q with Config.BootstrapKey set, want none generated", k)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(ctx) }()

	ws, err := wsclient.Dial(ctx, "ws://"+srv.Addr()+"/v1/ws", wsclient.Options{Key: testKey, IgnoreMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan filehub.Event, 16)
	subCtx, endSub := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() {
		subDone <- ws.Subscribe(subCtx, 0, func(ev filehub.Event) error {
			events <- ev
			return nil
		})
	}()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := client.New("http://"+srv.Addr(), testKey, client.WithHTTPClient(&http.Client{Transport: tr}))
	// The first event may be read at subscribe time; the second one is
	// written while the subscription is live.
	var up *api.Upload
	for _, name := range []string{"first.txt", "second.txt"} {
		up, err = c.Upload(ctx, name, strings.NewReader("assembled in order: "+name), -1)
		if err != nil {
			t.Fatal(err)
		}
		waitEvent(t, events, up.ID)
	}
	endSub()
	if err := <-subDone; !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe = %v, want context.Canceled", err)
	}
	if err := ws.Close(); err != nil {
		t.Errorf("wsclient Close: %v", err)
	}

	raw := dialRaw(t, srv.Addr())
	defer raw.Close()
	stop()
	_ = raw.SetReadDeadline(time.Now().Add(20 * time.Second))
	var ce *websocket.CloseError
	for {
		if _, _, err := raw.ReadMessage(); err != nil {
			if !errors.As(err, &ce) || ce.Code != wsproto.CloseServerShutdown {
				t.Errorf("connection ended with %v, want close code %d", err, wsproto.CloseServerShutdown)
			}
			break
		}
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close after Run: %v", err)
	}

	// The stores and the lock are released: a new daemon opens the data
	// dir and finds the file.
	again := MustNew(t, testConfig(t, dir))
	defer again.Close()
	if _, err := again.Meta().FindFile(context.Background(), up.ID); err != nil {
		t.Errorf("after restart: %v", err)
	}
}

// waitEvent waits for the file.created event of file id.
func waitEvent(tb testing.TB, events <-chan filehub.Event, id string) {
	tb.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Type == filehub.EventFileCreated && ev.File != nil && ev.File.ID == id {
				return
			}
		case <-deadline:
			tb.Fatalf("no %s event for %s over the WebSocket", filehub.EventFileCreated, id)
		}
	}
}

// TestNewFailsCleanly: a start that fails (here on a taken port) leaves
// nothing behind: no key was created and the data dir is not locked.
func TestNewFailsCleanly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Listen = ln.Addr().String()
	cfg.BootstrapKey = ""
	if _, err := server.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("New on a taken port = %v, want a listen error", err)
	}

	cfg = testConfig(t, dir)
	cfg.BootstrapKey = ""
	srv := MustNew(t, cfg)
	if !strings.HasPrefix(srv.BootstrapKey(), filehub.APIKeyPrefix) {
		t.Errorf("BootstrapKey = %q after a failed start, want a generated key", srv.BootstrapKey())
	}
	if _, err := server.New(context.Background(), testConfig(t, dir)); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second daemon on the data dir = %v, want an in-use error", err)
	}
	// Close without Run releases the listener and the stores.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := srv.Run(context.Background()); err == nil {
		t.Error("Run after Close succeeded")
	}
	MustNew(t, testConfig(t, dir)).Close()
}
