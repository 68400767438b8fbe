package wsclient_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/sqlite"
	"github.com/filehub/filehub/wsserver"
)

// realServer is the real session server (wsserver) on real stores (sqlite,
// localfs, files) in a directory, listening on a fixed address so that it
// can be restarted "in place", as after a crash.
type realServer struct {
	dir, addr, key string

	db     *sqlite.DB
	files  *files.Service
	ws     *wsserver.Server
	hs     *http.Server
	cancel context.CancelFunc
	done   chan error // Run's and Serve's outcome

	stopOnce sync.Once
	stopErr  error
	durable  bool
}

// startRealServer starts a server on dir and addr ("127.0.0.1:0" for any
// port). With key "" it creates a read-write API key, kept in s.key.
func startRealServer(dir, addr, key string) (*realServer, error) {
	return startRealServerWith(dir, addr, key, nil)
}

// startRealServerWith is startRealServer with tune applied to the session
// server's configuration (heartbeats, TTLs) before it starts.
func startRealServerWith(dir, addr, key string, tune func(*wsserver.Config)) (*realServer, error) {
	return startRealServerFull(dir, addr, key, tune, false)
}

// errNoDurable: the SQLite store cannot keep WebSocket sessions.
var errNoDurable = errors.New("the SQLite store cannot keep WebSocket sessions (yet)")

// startRealServerFull is startRealServerWith, with durable sessions in the
// server's SQLite database if durable is set (errNoDurable if it cannot).
func startRealServerFull(dir, addr, key string, tune func(*wsserver.Config), durable bool) (*realServer, error) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"), sqlite.Config{})
	if err != nil {
		return nil, err
	}
	blobs, err := localfs.Open(filepath.Join(dir, "blobs"), localfs.Config{})
	if err != nil {
		db.Close()
		return nil, err
	}
	svc, err := files.New(db, blobs, files.Config{MinFreeSpace: -1})
	if err != nil {
		db.Close()
		return nil, err
	}
	if key == "" {
		key = filehub.NewAPIKeySecret()
		err := db.CreateAPIKey(ctx, &filehub.APIKey{ID: filehub.NewID("k_"), Name: "test",
			Scopes:    []filehub.Scope{filehub.ScopeRead, filehub.ScopeWrite},
			CreatedAt: time.Now(), Hash: filehub.HashAPIKey(key)})
		if err != nil {
			db.Close()
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &realServer{dir: dir, addr: ln.Addr().String(), key: key, db: db, files: svc, done: make(chan error, 2)}
	cfg := wsserver.Config{
		Logger:            slog.New(slog.DiscardHandler),
		EventPollInterval: 5 * time.Millisecond,
	}
	if tune != nil {
		tune(&cfg)
	}
	if durable {
		st, ok := any(db).(filehub.WSSessionStore)
		if !ok {
			ln.Close()
			db.Close()
			return nil, errNoDurable
		}
		cfg.Sessions = st
	}
	s.durable = durable
	s.ws = wsserver.New(svc, db, cfg)
	mux := http.NewServeMux()
	mux.Handle("GET /v1/ws", s.ws)
	s.hs = &http.Server{Handler: mux}
	var runCtx context.Context
	runCtx, s.cancel = context.WithCancel(ctx)
	go func() { s.done <- s.ws.Run(runCtx) }()
	go func() {
		err := s.hs.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

func (s *realServer) URL() string { return "ws://" + s.addr + "/v1/ws" }

// Upload stores a small file, which appends a file.created event.
func (s *realServer) Upload(name string) (*filehub.File, error) {
	up, err := s.files.Upload(context.Background(), strings.NewReader("content of "+name), name, "k_test")
	if err != nil {
		return nil, err
	}
	s.ws.Notify()
	return up.File, nil
}

// Stop shuts the server down: sessions are gone afterwards. Calling it
// again returns the first call's result.
func (s *realServer) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *realServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.ws.Shutdown(ctx)
	err = errors.Join(err, s.hs.Close())
	s.cancel()
	err = errors.Join(err, <-s.done, <-s.done, s.db.Close())
	return err
}

func mustStartRealServer(tb testing.TB) *realServer {
	tb.Helper()
	s, err := startRealServer(tb.TempDir(), "127.0.0.1:0", "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("stop server: %v", err)
		}
	})
	return s
}

// restart stops s and starts a new server on the same directory and port.
// The sessions are lost; the event log is not.
func (s *realServer) restart(tb testing.TB) *realServer {
	tb.Helper()
	if err := s.Stop(); err != nil {
		tb.Fatalf("stop server: %v", err)
	}
	s2, err := startRealServerFull(s.dir, s.addr, s.key, nil, s.durable)
	if err != nil {
		tb.Fatalf("restart server: %v", err)
	}
	return s2
}

// proxy is a TCP proxy that can cut every connection through it at once,
// the way a flaky network does (no close handshake, no FIN in order).
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
	cuts  int
}

func newProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: make(map[net.Conn]bool)}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

func (p *proxy) URL() string { return "ws://" + p.ln.Addr().String() + "/v1/ws" }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(c, up)
		go pipe(up, c)
	}
}

// Cut closes every connection through the proxy.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.conns) > 0 {
		p.cuts++
	}
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

func (p *proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
