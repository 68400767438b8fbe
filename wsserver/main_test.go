package wsserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/internal/testlog"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/sqlite"
	"github.com/filehub/filehub/wsproto"
	"github.com/filehub/filehub/wsserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a running server on real stores in a temp dir.
type env struct {
	t      testing.TB
	dir    string
	db     *sqlite.DB
	files  *files.Service
	srv    *wsserver.Server
	http   *httptest.Server
	url    string
	reg    *prometheus.Registry
	keys   map[string]string // name → secret
	cancel context.CancelFunc
	runErr chan error
	// store is the session store of a durable env (nil in memory mode);
	// sessions the same when it is the in-memory test store.
	store    filehub.WSSessionStore
	sessions *memSessions
	stopped  bool
}

// mode is how an env keeps its sessions.
type mode struct {
	name    string
	durable bool
}

// modes: in memory; durable in the in-memory test store (which can fail
// on demand); durable in the env's SQLite database.
var modes = []mode{{"memory", false}, {"durable", true}, {"sqlite", true}}

// bothModes runs f as a subtest per mode: the in-memory sessions, and
// durable ones in a store.
func bothModes(t *testing.T, f func(t *testing.T, m mode)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { f(t, m) })
	}
}

// newEnvIn is newEnv with sessions kept as m says.
func newEnvIn(t testing.TB, m mode, cfg wsserver.Config) *env {
	t.Helper()
	if m.name == "postgres" {
		// Opened first, so that it is closed after the env's server.
		st := postgresSessions(t)
		cfg.Sessions = st
		e := newEnv(t, cfg)
		e.store = st
		return e
	}
	if m.name == "sqlite" {
		e := newEnv(t, cfg)
		st, ok := any(e.db).(filehub.WSSessionStore)
		if !ok {
			t.Skip("the SQLite store cannot keep WebSocket sessions (yet)")
		}
		cfg.Sessions = st
		e.restart(cfg)
		e.store = st
		return e
	}
	var store *memSessions
	if m.durable && cfg.Sessions == nil {
		store = newMemSessions()
		cfg.Sessions = store
	}
	e := newEnv(t, cfg)
	e.sessions = store
	if store != nil {
		e.store = store
	}
	return e
}

// restart replaces e's server by one with cfg, on the same stores.
func (e *env) restart(cfg wsserver.Config) {
	e.stop()
	e.stopped = false
	e.reg = prometheus.NewRegistry()
	e.start(cfg)
}

// newEnv starts a server with cfg (Registerer and Logger are filled in).
// Keys: "rw" (read, write), "ro" (read), "wo" (write), "metrics" (metrics),
// "admin".
func newEnv(t testing.TB, cfg wsserver.Config) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "meta.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := localfs.Open(filepath.Join(dir, "blobs"), localfs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := files.New(db, blobs, files.Config{MinFreeSpace: -1})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, db: db, files: svc, reg: prometheus.NewRegistry(), keys: map[string]string{}}
	for i, k := range []struct {
		name   string
		scopes []filehub.Scope
	}{
		{"rw", []filehub.Scope{filehub.ScopeRead, filehub.ScopeWrite}},
		{"ro", []filehub.Scope{filehub.ScopeRead}},
		{"wo", []filehub.Scope{filehub.ScopeWrite}},
		{"metrics", []filehub.Scope{filehub.ScopeMetrics}},
		{"admin", []filehub.Scope{filehub.ScopeAdmin}},
	} {
		secret := filehub.NewAPIKeySecret()
		err := db.CreateAPIKey(context.Background(), &filehub.APIKey{
			ID: filehub.NewID("k_"), Name: k.name, Scopes: k.scopes,
			CreatedAt: time.Now().Add(time.Duration(i) * time.Millisecond), Hash: filehub.HashAPIKey(secret),
		})
		if err != nil {
			t.Fatal(err)
		}
		e.keys[k.name] = secret
	}
	e.start(cfg)
	t.Cleanup(e.close)
	return e
}

// start starts e's server with cfg.
func (e *env) start(cfg wsserver.Config) {
	cfg.Registerer = e.reg
	if cfg.Logger == nil {
		cfg.Logger = testlog.New(e.t)
	}
	e.srv = wsserver.New(e.files, e.db, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.runErr = make(chan error, 1)
	go func() { e.runErr <- e.srv.Run(ctx) }()
	mux := http.NewServeMux()
	mux.Handle("GET /v1/ws", e.srv)
	e.http = httptest.NewServer(mux)
	e.url = "ws" + strings.TrimPrefix(e.http.URL, "http") + "/v1/ws"
}

// twin starts a second server ("another instance", or the restarted
// process) on e's stores: the same database, files, keys and session
// store. It is stopped before e.
func (e *env) twin(t testing.TB, cfg wsserver.Config) *env {
	t.Helper()
	if cfg.Sessions == nil && e.store != nil {
		cfg.Sessions = e.store
	}
	tw := &env{t: t, dir: e.dir, db: e.db, files: e.files, reg: prometheus.NewRegistry(), keys: e.keys,
		store: e.store, sessions: e.sessions}
	tw.start(cfg)
	t.Cleanup(tw.stop)
	return tw
}

// stop shuts e's server down (Shutdown, then Run's end); safe to call
// twice.
func (e *env) stop() {
	if e.stopped {
		return
	}
	e.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		e.t.Errorf("Shutdown: %v", err)
	}
	e.http.CloseClientConnections()
	e.http.Close()
	e.cancel()
	if err := <-e.runErr; err != nil {
		e.t.Errorf("Run: %v", err)
	}
}

func (e *env) close() {
	e.stop()
	e.db.Close()
}

// client is a raw protocol client: a gorilla connection speaking frames.
type client struct {
	t       *testing.T
	ws      *websocket.Conn
	wmu     sync.Mutex       // writes may come from a second goroutine
	pending []*wsproto.Frame // read but not yet returned
}

// dial connects with the bearer key (if not "") and the subprotocol.
func (e *env) dial(t *testing.T, key string) (*client, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	d := websocket.Dialer{Subprotocols: []string{wsproto.Subprotocol}, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(e.url, h)
	if err != nil {
		return nil, resp, err
	}
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	return c, resp, nil
}

// mustDial connects with key and completes hello.
func (e *env) connect(t *testing.T, keyName string) (*client, *wsproto.Frame) {
	t.Helper()
	c, _, err := e.dial(t, e.keys[keyName])
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.send(&wsproto.Frame{Type: wsproto.TypeHello})
	w := c.expect(wsproto.TypeWelcome)
	return c, w
}

func (c *client) send(frames ...*wsproto.Frame) {
	c.t.Helper()
	b, err := wsproto.Encode(nil, frames...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Errorf("write: %v", err)
	}
}

// next returns the next frame, failing the test on errors or after 5s.
func (c *client) next() *wsproto.Frame {
	c.t.Helper()
	f, err := c.read(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

func (c *client) read(timeout time.Duration) (*wsproto.Frame, error) {
	if len(c.pending) == 0 {
		_ = c.ws.SetReadDeadline(time.Now().Add(timeout))
		typ, msg, err := c.ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		if typ != websocket.TextMessage {
			return nil, errors.New("binary message from server")
		}
		frames, err := wsproto.Decode(msg)
		if err != nil {
			return nil, fmt.Errorf("%w in %q", err, msg)
		}
		c.pending = frames
	}
	f := c.pending[0]
	c.pending = c.pending[1:]
	return f, nil
}

// expect returns the next frame that is not a bare ack, which must be of
// type typ.
func (c *client) expect(typ string) *wsproto.Frame {
	c.t.Helper()
	for {
		f := c.next()
		if f.Type == wsproto.TypeAck && typ != wsproto.TypeAck {
			continue
		}
		if f.Type != typ {
			c.t.Fatalf("got %s frame %+v, want %s", f.Type, f, typ)
		}
		return f
	}
}

// waitAck reads until an ack of at least n arrives (on any frame) and
// returns the frames read meanwhile.
func (c *client) waitAck(n int64) []*wsproto.Frame {
	c.t.Helper()
	var got []*wsproto.Frame
	for {
		f := c.next()
		if f.Ack >= n {
			if f.Type != wsproto.TypeAck {
				got = append(got, f)
			}
			return got
		}
		if f.Type != wsproto.TypeAck {
			got = append(got, f)
		}
	}
}

// closeCode reads until the connection ends and returns the close code
// (-1 for an abnormal end without a close frame).
func (c *client) closeCode() int {
	c.t.Helper()
	for {
		_, err := c.read(10 * time.Second)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("no close within 10s")
		}
		return -1
	}
}

func msg(seq int64, data string) *wsproto.Frame {
	return &wsproto.Frame{Type: wsproto.TypeMsg, Seq: seq, Data: json.RawMessage(data)}
}

func req(seq int64, id, method, params string) *wsproto.Frame {
	f := &wsproto.Frame{Type: wsproto.TypeReq, Seq: seq, ID: id, Method: method}
	if params != "" {
		f.Params = json.RawMessage(params)
	}
	return f
}

// metric returns the value of the unlabeled gauge or counter name, or the
// sum over its label values.
func (e *env) metric(name string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

// waitFor polls cond until it holds, failing after 10s. It checks state,
// not timing: the deadline only keeps a broken test from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// resume reconnects to session w with lastSeq.
func (e *env) resume(t *testing.T, keyName string, w *wsproto.Frame, lastSeq int64) (*client, *wsproto.Frame) {
	t.Helper()
	c, _, err := e.dial(t, e.keys[keyName])
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.send(&wsproto.Frame{Type: wsproto.TypeHello, SessionID: w.SessionID, ResumeToken: w.ResumeToken, LastSeq: lastSeq})
	return c, c.expect(wsproto.TypeWelcome)
}

// upload stores a file through the file service.
func (e *env) upload(t *testing.T, name, content string) *filehub.File {
	t.Helper()
	up, err := e.files.Upload(t.Context(), strings.NewReader(content), name, "k_test")
	if err != nil {
		t.Fatalf("Upload(%s): %v", name, err)
	}
	return up.File
}
