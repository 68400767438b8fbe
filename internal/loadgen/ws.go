package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/server"
	"github.com/filehub/filehub/wsproto"
	"github.com/filehub/filehub/wsserver"
)

// WSServerConfig configures StartWSServer.
type WSServerConfig struct {
	// Dir is the data dir of the daemon's stores. Required.
	Dir string
	// Addr is the address to listen on. Default 127.0.0.1:0.
	Addr string
	// Key is the secret of the read-write API key to create (kept if it
	// exists already). Default: a new secret.
	Key string
	// MaxConnsPerKey bounds the WebSocket connections (and sessions) of
	// one key.
	// Default: the daemon's (wsserver.DefaultMaxConnsPerKey).
	MaxConnsPerKey int
	// Logger receives the daemon's logs. Default: discard.
	Logger *slog.Logger
	// Sessions is where WebSocket sessions live, server.WSSessionsDurable
	// or server.WSSessionsMemory. Default: the daemon's (durable).
	Sessions string
}

// WSServer is the filehub daemon (package server) on SQLite and the local
// disk in a directory, with a read-write key for the load: the same
// daemon as `filehub serve`, with no free-space floor, no rate limit and
// no scheduled cleanup, so that only the load is measured. Benchmarks and
// the filehub-load ws-server command use it.
type WSServer struct {
	URL   string // ws://ADDR/v1/ws
	Key   string // the read-write key's secret
	DB    filehub.MetaStore
	Files *files.Service
	WS    *wsserver.Server

	srv *server.Server
}

// StartWSServer starts the daemon on the stores in cfg.Dir, listening on
// cfg.Addr, until Close.
func StartWSServer(ctx context.Context, cfg WSServerConfig) (*WSServer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("loadgen: WSServerConfig.Dir is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Key == "" {
		cfg.Key = filehub.NewAPIKeySecret()
	}
	srv, err := server.New(ctx, server.Config{
		DataDir:          cfg.Dir,
		Listen:           cfg.Addr,
		WSMaxConnsPerKey: cfg.MaxConnsPerKey,
		// The load tools open every connection with one key: each needs
		// a session too.
		WSMaxSessionsPerKey: cfg.MaxConnsPerKey,
		MinFreeSpace:        -1,
		RateLimit:           -1,
		CleanupInterval:     -1,
		Logger:              cfg.Logger,
		WSSessions:          cfg.Sessions,
	})
	if err != nil {
		return nil, err
	}
	err = srv.Meta().CreateAPIKey(ctx, &filehub.APIKey{
		ID: filehub.NewID("k_"), Name: "load-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		Scopes:    []filehub.Scope{filehub.ScopeRead, filehub.ScopeWrite},
		CreatedAt: time.Now().UTC(), Hash: filehub.HashAPIKey(cfg.Key),
	})
	if err != nil && !errors.Is(err, filehub.ErrConflict) {
		return nil, errors.Join(err, srv.Close())
	}
	s := &WSServer{
		URL: "ws://" + srv.Addr() + "/v1/ws", Key: cfg.Key,
		DB: srv.Meta(), Files: srv.Files(), WS: srv.WS(),
		srv: srv,
	}
	// Close stops Run and returns its result.
	go srv.Run(context.Background()) //nolint:errcheck
	return s, nil
}

// Close tells the clients to reconnect later, stops the daemon and closes
// the stores (server.Server.Close).
func (s *WSServer) Close() error {
	return s.srv.Close()
}

// BareEcho is the baseline WebSocket server that filehub's session layer is
// compared with: gorilla/websocket with its default buffers, one goroutine
// per connection that echoes every message and does nothing else. It
// accepts the filehub subprotocol so the same clients can dial it.
func BareEcho() http.Handler {
	up := websocket.Upgrader{Subprotocols: []string{wsproto.Subprotocol}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			typ, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := ws.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	})
}

// IdleConfig describes an idle-connections run.
type IdleConfig struct {
	URL   string // ws://…/v1/ws, or a BareEcho server
	Key   string // bearer key; empty for a BareEcho server
	Conns int    // connections to open and hold
	// Concurrency is how many connections are being opened at once.
	// Default 64.
	Concurrency int
	// Settle is how long to wait after the last connection opened before
	// reading the server's memory. Default 3s.
	Settle time.Duration
	// Hold keeps the connections open this long after the measurement, so
	// the server can be inspected. Default 0.
	Hold time.Duration
	// ServerPID, if set, is the server process whose VmRSS is read before
	// the first connection and after Settle.
	ServerPID int
}

// IdleResult is the outcome of RunIdle.
type IdleResult struct {
	Conns       int     `json:"conns"`
	Failures    int     `json:"failures"`
	FirstError  string  `json:"first_error,omitempty"`
	OpenSeconds float64 `json:"open_seconds"`
	// The server's resident set before and after, and its peak.
	ServerRSSBefore int64 `json:"server_rss_before_bytes,omitempty"`
	ServerRSSAfter  int64 `json:"server_rss_after_bytes,omitempty"`
	ServerPeakRSS   int64 `json:"server_peak_rss_bytes,omitempty"`
	// BytesPerConn is (after − before) / Conns.
	BytesPerConn float64 `json:"server_bytes_per_conn,omitempty"`
}

// RunIdle opens cfg.Conns WebSocket connections, completes a hello/welcome
// exchange on each (against a BareEcho server: the echo of the hello) and
// keeps them open and idle — a goroutine per connection reads, so the
// server's pings are answered — while the server's memory is measured.
// Connections that fail are counted, not retried.
func RunIdle(ctx context.Context, cfg IdleConfig) (*IdleResult, error) {
	if cfg.URL == "" || cfg.Conns <= 0 {
		return nil, errors.New("need a URL and a positive number of connections")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 3 * time.Second
	}
	res := &IdleResult{}
	if cfg.ServerPID > 0 {
		rss, err := RSS(cfg.ServerPID)
		if err != nil {
			return nil, err
		}
		res.ServerRSSBefore = rss
	}
	header := http.Header{}
	hello := []byte(`{"type":"hello"}`)
	if cfg.Key != "" {
		header.Set("Authorization", "Bearer "+cfg.Key)
	}
	d := websocket.Dialer{
		Subprotocols:     []string{wsproto.Subprotocol},
		HandshakeTimeout: 30 * time.Second,
		// Small buffers: the load tool's memory is not what is measured,
		// but it shares the machine.
		ReadBufferSize: 512, WriteBufferSize: 512,
	}

	var (
		mu       sync.Mutex
		conns    = make([]*websocket.Conn, 0, cfg.Conns)
		failures atomic.Int64
		errOnce  sync.Once
		next     atomic.Int64
		readers  sync.WaitGroup
		openers  sync.WaitGroup
	)
	fail := func(err error) {
		failures.Add(1)
		errOnce.Do(func() { res.FirstError = err.Error() })
	}
	start := time.Now()
	for range cfg.Concurrency {
		openers.Go(func() {
			for next.Add(1) <= int64(cfg.Conns) && ctx.Err() == nil {
				ws, err := openIdle(ctx, &d, cfg.URL, header, hello)
				if err != nil {
					fail(err)
					continue
				}
				mu.Lock()
				conns = append(conns, ws)
				mu.Unlock()
				// Reading answers pings and notices the server closing.
				readers.Go(func() {
					for {
						if _, _, err := ws.ReadMessage(); err != nil {
							return
						}
					}
				})
			}
		})
	}
	openers.Wait()
	res.OpenSeconds = time.Since(start).Seconds()
	res.Conns = len(conns)
	res.Failures = int(failures.Load())

	wait(ctx, cfg.Settle)
	if cfg.ServerPID > 0 {
		res.ServerRSSAfter, _ = RSS(cfg.ServerPID)
		res.ServerPeakRSS, _ = PeakRSS(cfg.ServerPID)
		if res.Conns > 0 {
			res.BytesPerConn = float64(res.ServerRSSAfter-res.ServerRSSBefore) / float64(res.Conns)
		}
	}
	wait(ctx, cfg.Hold)
	for _, ws := range conns {
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		ws.Close()
	}
	readers.Wait()
	return res, nil
}

func openIdle(ctx context.Context, d *websocket.Dialer, url string, header http.Header, hello []byte) (*websocket.Conn, error) {
	ws, resp, err := d.DialContext(ctx, url, header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		ws.Close()
		return nil, fmt.Errorf("hello: %w", err)
	}
	_, msg, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("welcome: %w", err)
	}
	if !bytes.Contains(msg, []byte(`"welcome"`)) && !bytes.Equal(msg, hello) {
		ws.Close()
		return nil, fmt.Errorf("no welcome: %.200s", msg)
	}
	_ = ws.SetReadDeadline(time.Time{})
	return ws, nil
}

func wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// RSS returns a process's current resident set size (VmRSS) in bytes.
// Linux only.
func RSS(pid int) (int64, error) { return statusBytes(pid, "VmRSS:") }

func statusBytes(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s for pid %d", strings.TrimSuffix(field, ":"), pid)
}
