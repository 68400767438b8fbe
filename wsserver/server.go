// Package wsserver is the server side of filehub's WebSocket protocol
// (docs/protocol.md): reliable sessions that survive reconnects, RPC over
// the session, and the live file event stream.
//
// A Server is an http.Handler for GET /v1/ws that authenticates by itself
// (Bearer header at the upgrade, or a token in the hello frame), so it can be
// mounted beside the HTTP API without its auth middleware. Run runs the
// background parts (event hub, session expiry, key re-checks, event log
// trimming); Shutdown tells every client to reconnect later (close 4005).
//
// # Design
//
// Each connection has exactly one long-lived goroutine, its reader. The
// upgrade, hello and welcome happen on ServeHTTP's goroutine, which then
// starts the reader and returns: net/http's per-connection state (the
// request and its headers, the connection's 4 KiB write buffer) and that
// goroutine's stack, grown deep by the handshake and the key lookup, are
// released instead of being held for the connection's lifetime, and the
// reader starts on a small stack that an idle read keeps small. Frames to
// send are queued in the session's outbox and written by a writer goroutine
// that is started when there is something to write and exits when the outbox
// is drained, so an idle connection costs one small goroutine, the HTTP
// server's read buffer (reused by gorilla/websocket), a timer and a few small
// structs. Several frames are batched into one WebSocket message.
//
// Events are read from the store once by the hub, which keeps the most recent
// ones pre-encoded in a ring shared by all sessions. A session's writer copies
// events from the ring (or, when it has fallen behind the ring, from the
// store) into its outbox only while its event window has room, so a slow
// subscriber costs no memory beyond the window: the durable log is its buffer.
package wsserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/auth"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/wsproto"
)

// Store is what the server needs from the metadata store;
// filehub.MetaStore implements it.
type Store interface {
	// FindAPIKeyByHash returns the key with the given hash, revoked or
	// not, or ENOTFOUND.
	FindAPIKeyByHash(ctx context.Context, hash []byte) (*filehub.APIKey, error)
	// ListEvents returns up to limit events with ID > afterID, in ID order.
	ListEvents(ctx context.Context, afterID int64, limit int) ([]*filehub.Event, error)
	// EventBounds returns the lowest retained and highest assigned event IDs.
	EventBounds(ctx context.Context) (oldest, latest int64, err error)
	// TrimEvents deletes events older than before and all but the newest keep.
	TrimEvents(ctx context.Context, before time.Time, keep int) (int64, error)
}

// Peer identifies the session a message came from, for a MessageHandler.
type Peer struct {
	SessionID string
	KeyID     string
}

// MessageHandler handles a client msg frame. A non-nil reply is sent back to
// the client as a reliable server msg. The client's frame counts as
// processed (and is acknowledged) when the handler returns, whatever it
// returns; an error is logged. Handlers run on the connection's reader, one
// at a time per session, in order.
type MessageHandler func(ctx context.Context, p Peer, data json.RawMessage) (reply json.RawMessage, err error)

// Echo is the default MessageHandler: it replies with the data it got.
func Echo(_ context.Context, _ Peer, data json.RawMessage) (json.RawMessage, error) {
	return data, nil
}

// Config configures a Server. The zero value is ready to use; every field
// says its default.
type Config struct {
	// Logger receives the server's logs. Default: slog.Default().
	Logger *slog.Logger
	// Registerer receives the filehub_ws_* collectors. Default: none.
	Registerer prometheus.Registerer

	// PingInterval is how often the server pings each connection, announced
	// to clients as heartbeat_ms. Default 25s.
	PingInterval time.Duration
	// PongTimeout is how long after a due ping the server waits for a pong
	// or any data before it closes the connection (keeping the session).
	// Default 10s.
	PongTimeout time.Duration
	// HelloTimeout is how long a new connection may take to send hello
	// (close 4006). Default 10s.
	HelloTimeout time.Duration
	// SessionTTL is how long a session survives without a connection.
	// Default 2m.
	SessionTTL time.Duration
	// MaxMessageBytes is the largest WebSocket message accepted (close
	// 1009). Default 1 MiB.
	MaxMessageBytes int64
	// MaxConnsPerKey bounds the concurrent connections of one API key
	// (HTTP 429). Default 64.
	MaxConnsPerKey int
	// OutboxMaxFrames and OutboxMaxBytes bound a session's unacknowledged
	// msg and res frames; OutboxMaxFrames is also the window of
	// unacknowledged event frames. Defaults 1024 and 8 MiB.
	OutboxMaxFrames int
	OutboxMaxBytes  int
	// SlowConsumerTimeout is how long an outbox or event window may stay
	// full before the connection is closed with 4008. Default 30s.
	SlowConsumerTimeout time.Duration
	// ResultCacheSize is how many request ids a session remembers, so that
	// a re-sent request runs at most once. Default 4096.
	ResultCacheSize int
	// ResultCacheBytes bounds the bytes of the results a session keeps
	// for re-sent requests; ResultCacheTotalBytes bounds them over all
	// sessions. The least recently used result is dropped first; its id
	// is kept, and a re-sent request with it is answered with a conflict
	// error rather than run again (docs/protocol.md). Defaults 4 MiB and
	// 256 MiB.
	ResultCacheBytes      int
	ResultCacheTotalBytes int
	// MaxSessionsPerKey bounds the sessions of one API key, connected or
	// waiting SessionTTL for a resume. A new session beyond it is refused
	// (HTTP 429 at an upgrade with a header key; a rate_limited error and
	// close 4009 in hello). Default 256.
	MaxSessionsPerKey int
	// MaxPendingHellos bounds the connections upgraded without a key that
	// have not sent hello yet; beyond it upgrades without a key are
	// refused with 503. AnonHelloTimeout is their hello timeout, shorter
	// than HelloTimeout because they have proved nothing yet. Defaults
	// 256 and 3s.
	MaxPendingHellos int
	AnonHelloTimeout time.Duration
	// EventPollInterval is how often the hub looks for events written by
	// other processes; Notify wakes it at once for local writes. Default
	// 250ms.
	EventPollInterval time.Duration
	// EventBufferSize is how many recent events the hub keeps pre-encoded
	// in memory for subscribers; those further behind read the store.
	// Default 8192.
	EventBufferSize int
	// EventRetention and EventMaxCount bound the event log: Run trims
	// events older than EventRetention and all but the newest
	// EventMaxCount every TrimInterval. Defaults 7 days, 1,000,000, 1h.
	// A negative EventRetention or EventMaxCount disables that bound; a
	// negative TrimInterval disables trimming.
	EventRetention time.Duration
	EventMaxCount  int
	TrimInterval   time.Duration
	// KeyRecheckInterval is how often the keys of connected sessions are
	// looked up again, so revoked keys are cut off (4001). Default 1m.
	KeyRecheckInterval time.Duration
	// MessageHandler handles client msg frames. Default: Echo.
	MessageHandler MessageHandler
	// Cleanup runs the cleanup.run method. Nil: that method answers
	// unknown_method.
	Cleanup CleanupRunner
	// Providers runs the providers.push method. Nil: that method answers
	// not_found (no provider is known).
	Providers ProviderPusher
	// Sessions makes sessions durable: their state is saved in this store
	// (group-committed), acknowledgements and server frames wait for the
	// save, and a session can be resumed by any server on the same store,
	// also after this process died (docs/protocol.md §5.4). Nil: sessions
	// live in this process's memory only.
	Sessions filehub.WSSessionStore
	// InstanceID names this process as the owner of the sessions it
	// claims. Default: a fresh filehub.NewID("i_").
	InstanceID string
	// EpochCheckInterval is how often, with Sessions, an attached session
	// that saved nothing meanwhile is saved without changes, so that a
	// takeover by another instance closes its connection (4007) even
	// when it is idle. The save also shows the session alive: one still
	// marked attached but not saved for SessionTTL counts as expired (its
	// owner died; WSSessionStore.ExpireWSSessions). Default 5s, and at
	// most a quarter of SessionTTL; negative: no check (a taken-over
	// connection is then closed at its next save, and an idle attached
	// session expires after SessionTTL).
	EpochCheckInterval time.Duration
	// Auth authenticates connections (at the upgrade or in hello). Give
	// the server the HTTP API's, so that both share one limiter of failed
	// authentications. Default: one on the store without that limiter.
	Auth *auth.Authenticator
}

// Defaults of Config.
const (
	DefaultPingInterval        = 25 * time.Second
	DefaultPongTimeout         = 10 * time.Second
	DefaultHelloTimeout        = 10 * time.Second
	DefaultSessionTTL          = 2 * time.Minute
	DefaultMaxMessageBytes     = wsproto.DefaultMaxMessageBytes
	DefaultMaxConnsPerKey      = 64
	DefaultOutboxMaxFrames     = 1024
	DefaultOutboxMaxBytes      = 8 << 20
	DefaultSlowConsumerTimeout = 30 * time.Second
	DefaultResultCacheSize     = 4096
	DefaultResultCacheBytes    = 4 << 20
	DefaultResultCacheTotal    = 256 << 20
	DefaultMaxSessionsPerKey   = 256
	DefaultMaxPendingHellos    = 256
	DefaultAnonHelloTimeout    = 3 * time.Second
	DefaultEventPollInterval   = 250 * time.Millisecond
	DefaultEventBufferSize     = 8192
	DefaultEventRetention      = 7 * 24 * time.Hour
	DefaultEventMaxCount       = 1_000_000
	DefaultTrimInterval        = time.Hour
	DefaultKeyRecheckInterval  = time.Minute
	DefaultEpochCheckInterval  = 5 * time.Second
)

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	def(&c.PingInterval, DefaultPingInterval)
	def(&c.PongTimeout, DefaultPongTimeout)
	def(&c.HelloTimeout, DefaultHelloTimeout)
	def(&c.SessionTTL, DefaultSessionTTL)
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	defInt(&c.MaxConnsPerKey, DefaultMaxConnsPerKey)
	defInt(&c.OutboxMaxFrames, DefaultOutboxMaxFrames)
	defInt(&c.OutboxMaxBytes, DefaultOutboxMaxBytes)
	def(&c.SlowConsumerTimeout, DefaultSlowConsumerTimeout)
	defInt(&c.ResultCacheSize, DefaultResultCacheSize)
	defInt(&c.ResultCacheBytes, DefaultResultCacheBytes)
	defInt(&c.ResultCacheTotalBytes, DefaultResultCacheTotal)
	defInt(&c.MaxSessionsPerKey, DefaultMaxSessionsPerKey)
	defInt(&c.MaxPendingHellos, DefaultMaxPendingHellos)
	def(&c.AnonHelloTimeout, DefaultAnonHelloTimeout)
	def(&c.EventPollInterval, DefaultEventPollInterval)
	defInt(&c.EventBufferSize, DefaultEventBufferSize)
	def(&c.EventRetention, DefaultEventRetention)
	if c.EventMaxCount == 0 {
		c.EventMaxCount = DefaultEventMaxCount
	}
	def(&c.TrimInterval, DefaultTrimInterval)
	def(&c.KeyRecheckInterval, DefaultKeyRecheckInterval)
	def(&c.EpochCheckInterval, DefaultEpochCheckInterval)
	if c.EpochCheckInterval > c.SessionTTL/4 {
		c.EpochCheckInterval = max(c.SessionTTL/4, time.Millisecond)
	}
	if c.InstanceID == "" {
		c.InstanceID = filehub.NewID("i_")
	}
	if c.MessageHandler == nil {
		c.MessageHandler = Echo
	}
}

// closeGrace is how long a closing connection waits for the client's close
// frame before its TCP connection is cut.
const closeGrace = time.Second

// maxBatchBytes caps the frames batched into one WebSocket message, well
// below any sane MaxMessageBytes of the client.
const maxBatchBytes = 64 << 10

// writeBufferPool lends write buffers to connections only while they write
// a message, so idle connections hold none.
var writeBufferPool sync.Pool

// Server serves WebSocket sessions. Create it with New; it is safe for
// concurrent use.
type Server struct {
	files   *files.Service
	store   Store
	auth    *auth.Authenticator
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	hub     *hub
	up      websocket.Upgrader

	mu       sync.Mutex
	sessions map[string]*session
	perKey   map[string]int // open connections by key id
	sessKey  map[string]int // sessions by key id
	pending  int            // connections without a key before hello
	results  *resultStore
	commit   *committer         // nil: sessions in memory only
	conns    map[*conn]struct{} // open connections
	closing  bool

	wg sync.WaitGroup // connection readers
}

// New returns a Server that runs RPCs on files and reads keys and events
// from store. It registers its metrics on cfg.Registerer and panics if they
// collide with registered ones.
func New(files *files.Service, store Store, cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{
		files:    files,
		store:    store,
		auth:     cfg.Auth,
		cfg:      cfg,
		log:      cfg.Logger,
		metrics:  newMetrics(cfg.Registerer),
		sessions: make(map[string]*session),
		perKey:   make(map[string]int),
		sessKey:  make(map[string]int),
		conns:    make(map[*conn]struct{}),
	}
	s.results = newResultStore(cfg.ResultCacheSize, cfg.ResultCacheBytes, cfg.ResultCacheTotalBytes, &s.metrics.resultBytes)
	if cfg.Sessions != nil {
		s.commit = newCommitter(s, cfg.Sessions)
		s.results.record = true
		s.results.dirty = s.commit.mark
	}
	if s.auth == nil {
		s.auth = auth.New(store, auth.Config{FailureLimit: -1})
	}
	s.hub = newHub(s)
	s.up = websocket.Upgrader{
		// 0: reuse the hijacked reader, which lazyHijacker makes a small
		// one over a connection that borrows its read buffer only while
		// there is something to read (lazyconn.go).
		ReadBufferSize:  0,
		WriteBufferSize: 16 << 10,
		WriteBufferPool: &writeBufferPool,
		Subprotocols:    []string{wsproto.Subprotocol},
		// Clients authenticate with a key; cookies play no part, so
		// cross-origin requests cannot ride on a browser's credentials.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeProblem(w, status, filehub.EINVALID, reason.Error())
		},
	}
	return s
}

// Notify wakes the event hub after a local change was committed, so the
// event reaches subscribers without waiting for the next poll. It never
// blocks.
func (s *Server) Notify() { s.hub.notify() }

// ServeHTTP upgrades GET requests to WebSocket sessions; see the package doc.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !offersSubprotocol(r) {
		s.metrics.connections.WithLabelValues(connBadProtocol).Inc()
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Sec-WebSocket-Version", "13")
		writeProblem(w, http.StatusUpgradeRequired, filehub.EINVALID,
			"the WebSocket subprotocol "+wsproto.Subprotocol+" must be offered")
		return
	}
	var key *filehub.APIKey
	var keyHash []byte
	addr := s.auth.ClientAddr(r)
	if h := r.Header.Get("Authorization"); h != "" {
		var err error
		key, keyHash, err = s.auth.Authenticate(r.Context(), addr, auth.Bearer(h), missingCredentials)
		if err == nil && !canOpen(key) {
			err = filehub.Errorf(filehub.EFORBIDDEN, "this key cannot open WebSocket sessions (it needs the read or write scope)")
		}
		if err != nil {
			s.refuse(w, err)
			return
		}
	}
	c, err := s.admit(key)
	if err != nil {
		s.refuse(w, err)
		return
	}
	ws, err := s.up.Upgrade(lazyHijacker{w}, r, nil)
	if err != nil {
		s.release(c)
		s.log.Debug("websocket upgrade failed", "err", err)
		return
	}
	c.init(s, ws, key, keyHash, addr)
	// Shutdown sees the connection only from here on, once it is usable.
	s.mu.Lock()
	s.conns[c] = struct{}{}
	closing := s.closing
	s.mu.Unlock()
	if closing {
		c.closeNow(wsproto.CloseServerShutdown, "server shutting down")
	}
	// The handshake may outlive a canceled request context (a client that
	// hangs up mid-hello is noticed by the read); the read loop gets a
	// context of its own (see serve).
	c.serve(context.WithoutCancel(r.Context()))
}

// admit registers a new connection for key (nil when the key comes with
// hello). Returns EUNAVAILABLE when shutting down and ERATELIMIT at the
// per-key limit.
func (s *Server) admit(key *filehub.APIKey) (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, filehub.Errorf(filehub.EUNAVAILABLE, "server is shutting down")
	}
	c := &conn{}
	if key != nil {
		if s.perKey[key.ID] >= s.cfg.MaxConnsPerKey {
			return nil, filehub.Errorf(filehub.ERATELIMIT, "too many WebSocket connections for this key (limit %d)", s.cfg.MaxConnsPerKey)
		}
		// Advisory here (a resume adds no session), enforced when hello
		// opens a new session; refusing at the upgrade spares the
		// handshake and gives the client a problem document.
		if s.sessKey[key.ID] >= s.cfg.MaxSessionsPerKey {
			return nil, filehub.Errorf(filehub.ERATELIMIT, "too many WebSocket sessions for this key (limit %d)", s.cfg.MaxSessionsPerKey)
		}
		s.perKey[key.ID]++
		c.keyID = key.ID
	} else {
		// Nothing is proved yet: bound how many may wait for hello.
		if s.pending >= s.cfg.MaxPendingHellos {
			return nil, filehub.Errorf(filehub.EUNAVAILABLE, "too many connections waiting for hello (limit %d)", s.cfg.MaxPendingHellos)
		}
		s.pending++
		c.pending = true
	}
	s.wg.Add(1)
	return c, nil
}

// countKey charges a connection authenticated by hello to its key. It
// returns false at the per-key limit.
func (s *Server) countKey(c *conn, keyID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perKey[keyID] >= s.cfg.MaxConnsPerKey {
		return false
	}
	s.perKey[keyID]++
	c.keyID = keyID
	return true
}

// endPending stops counting c among the connections waiting for hello.
func (s *Server) endPending(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.pending {
		c.pending = false
		s.pending--
	}
}

// release forgets a connection admitted by admit.
func (s *Server) release(c *conn) {
	s.endPending(c)
	s.mu.Lock()
	if c.keyID != "" {
		if s.perKey[c.keyID]--; s.perKey[c.keyID] <= 0 {
			delete(s.perKey, c.keyID)
		}
	}
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// refuse answers a refused upgrade with err's status and a problem document.
func (s *Server) refuse(w http.ResponseWriter, err error) {
	code := filehub.ErrorCode(err)
	status := api.StatusCode(code)
	var result string
	switch code {
	case filehub.EUNAUTHORIZED:
		result = connUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="filehub"`)
	case filehub.EFORBIDDEN:
		result = connForbidden
	case filehub.ERATELIMIT:
		result = connTooMany
		retry := max(1, auth.RetryAfter(err))
		w.Header().Set("Retry-After", strconv.Itoa(retry))
	default:
		// Anything else is the server's trouble (unavailable, or an
		// internal error): worth retrying.
		result = connUnavailable
		if s.isClosing() {
			result = connShutdown
		}
		w.Header().Set("Retry-After", "1")
		if code == filehub.EINTERNAL {
			s.log.Error("websocket upgrade refused", "err", err)
		}
	}
	s.metrics.connections.WithLabelValues(result).Inc()
	writeProblem(w, status, code, filehub.ErrorMessage(err))
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// missingCredentials is the message of a connection without a usable key.
const missingCredentials = "missing or malformed credentials (want: Authorization: Bearer <key>, or a token in hello)"

// canOpen reports whether key may open sessions: metrics-only keys cannot.
func canOpen(key *filehub.APIKey) bool {
	return key.Has(filehub.ScopeRead) || key.Has(filehub.ScopeWrite)
}

func offersSubprotocol(r *http.Request) bool {
	for _, p := range websocket.Subprotocols(r) {
		if p == wsproto.Subprotocol {
			return true
		}
	}
	return false
}

// writeProblem answers a refused upgrade with the problem document the HTTP
// API would send.
func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	api.WriteProblem(w, api.NewProblemStatus(status, code, detail))
}

// Shutdown refuses new connections, closes every connection with 4005
// (reconnect later) and waits for the connection goroutines to end, or for
// ctx. With Config.Sessions it then waits until every session's last
// changes are saved, so clients resume them on another instance or the
// next process; without, sessions are not resumable after the process
// stops. It returns ctx's error if ctx ended first. Run should be stopped
// after Shutdown returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeNow(wsproto.CloseServerShutdown, "server shutting down")
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.durable() {
		return s.flushAll(ctx)
	}
	return nil
}

// Run runs the event hub, session expiry, key re-checks and event log
// trimming until ctx ends, then returns nil.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.hub.run(ctx) })
	defer wg.Wait()
	var epochC <-chan time.Time
	if s.durable() {
		wg.Go(func() { s.commit.run(ctx) })
	}
	if s.durable() && s.cfg.EpochCheckInterval > 0 {
		epochs := time.NewTicker(s.cfg.EpochCheckInterval)
		defer epochs.Stop()
		epochC = epochs.C
	}

	sweep := time.NewTicker(min(max(s.cfg.SessionTTL/4, 10*time.Millisecond), 30*time.Second))
	defer sweep.Stop()
	recheck := time.NewTicker(s.cfg.KeyRecheckInterval)
	defer recheck.Stop()
	var trimC <-chan time.Time
	if s.cfg.TrimInterval > 0 {
		trim := time.NewTicker(s.cfg.TrimInterval)
		defer trim.Stop()
		trimC = trim.C
		s.trim(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweep.C:
			s.expireSessions(time.Now())
		case <-recheck.C:
			s.recheckKeys(ctx)
		case <-trimC:
			s.trim(ctx)
		case <-epochC:
			s.checkEpochs(s.cfg.EpochCheckInterval)
		}
	}
}

// trim applies the event retention.
func (s *Server) trim(ctx context.Context) {
	var before time.Time
	if s.cfg.EventRetention > 0 {
		before = time.Now().Add(-s.cfg.EventRetention)
	}
	keep := s.cfg.EventMaxCount
	if keep < 0 {
		keep = -1
	}
	if before.IsZero() && keep < 0 {
		return
	}
	n, err := s.store.TrimEvents(ctx, before, keep)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("trimming the event log failed", "err", err, "deleted", n)
		return
	}
	if n > 0 {
		s.log.Info("trimmed the event log", "deleted", n)
	}
}

// expireSessions drops the sessions that have been without a connection
// for longer than SessionTTL.
func (s *Server) expireSessions(now time.Time) {
	var expired []*session
	s.mu.Lock()
	for _, ss := range s.sessions {
		if ss.expired(now) {
			expired = append(expired, ss)
		}
	}
	s.mu.Unlock()
	for _, ss := range expired {
		if ss.expired(now) {
			// Also from the store, unless another instance has claimed
			// it since (the epoch says). Sessions whose instance died
			// are expired there by the cleanup service.
			s.dropSession(ss)
		}
	}
}

// recheckKeys looks up the key of every connected session again and closes
// the sessions of keys that were revoked or deleted.
func (s *Server) recheckKeys(ctx context.Context) {
	byHash := make(map[string][]*session)
	s.mu.Lock()
	for _, ss := range s.sessions {
		byHash[string(ss.keyHash)] = append(byHash[string(ss.keyHash)], ss)
	}
	s.mu.Unlock()
	for hash, list := range byHash {
		key, err := s.store.FindAPIKeyByHash(ctx, []byte(hash))
		if err != nil && !errors.Is(err, filehub.ErrNotFound) {
			continue // cannot tell now; try again next time
		}
		if err == nil && key.RevokedAt == nil && canOpen(key) {
			for _, ss := range list {
				ss.setKey(key)
			}
			continue
		}
		for _, ss := range list {
			s.log.Info("closing session of a revoked key", "session_id", ss.id, "key_id", ss.keyID)
			ss.fail(filehub.EUNAUTHORIZED, "API key has been revoked", wsproto.CloseAuthFailed)
			s.dropSession(ss)
		}
	}
}

// dropSession removes ss from the registry for good (and from the store).
func (s *Server) dropSession(ss *session) {
	if s.durable() {
		ss.mu.Lock()
		epoch, fenced := ss.epoch, ss.fenced
		ss.mu.Unlock()
		if !fenced {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.cfg.Sessions.DeleteWSSession(ctx, ss.id, epoch); err != nil {
				s.log.Warn("cannot delete a dropped WebSocket session; the cleanup service will", "session_id", ss.id, "err", err)
			}
			cancel()
		}
	}
	s.mu.Lock()
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
		if s.sessKey[ss.keyID]--; s.sessKey[ss.keyID] <= 0 {
			delete(s.sessKey, ss.keyID)
		}
		s.metrics.sessions.Add(-1)
	}
	s.mu.Unlock()
	ss.drop()
}
