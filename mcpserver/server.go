// Package mcpserver is filehub's Model Context Protocol server: filehub's
// files, provider pushes and cleanup as MCP tools, each live file as a
// resource filehub://files/{id}, and two prompts that embed files.
//
// Tools, resources and prompts are defined once, in this package, over the
// small Backend interface, and served over two transports: Streamable HTTP
// at /v1/mcp on the daemon's listener (HTTPHandler, with the Local backend
// on the daemon's services and the same API keys as the HTTP API), and
// stdio (`filehub mcp`, with the Remote backend talking to a running filehub
// over its HTTP API).
//
// Key scopes are enforced per tool: a key that lacks a tool's scope gets a
// tool error naming the scope, and tools/list leaves out the tools it can
// never use. User mistakes (unknown file, bad base64, too large) are tool
// results with isError set, never protocol errors. Resource notifications
// (resources/updated to subscribers of a deleted or restored file,
// resources/list_changed to everyone when files come and go) are driven by
// the durable event log, so they also report changes made by other
// instances and other transports.
package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/auth"
)

// Defaults for Config's zero values.
const (
	DefaultMaxUpload          = 16 << 20
	DefaultReadBytes          = 256 << 10
	DefaultMaxReadBytes       = 4 << 20
	DefaultMaxBlobBytes       = 1 << 20
	DefaultMaxSessions        = 100
	DefaultSessionIdleTimeout = 30 * time.Minute
	DefaultRateLimit          = 20
	DefaultMaxLimiters        = 10000
	DefaultMaxLargeRequests   = 8
)

// Config configures a Server. The zero value is usable: every field says
// its default.
type Config struct {
	// MaxUpload bounds the content of one upload_file call, in bytes
	// (after base64 decoding). Default 16 MiB.
	MaxUpload int64
	// MaxReadBytes is the largest max_bytes read_file accepts (its default
	// is 256 KiB). Default 4 MiB.
	MaxReadBytes int64
	// MaxBlobBytes bounds binary content embedded in read_file results and
	// any content returned by resources/read and the prompts; larger
	// files are offered as resource links. Default 1 MiB.
	MaxBlobBytes int64
	// MaxSessions bounds the Streamable HTTP sessions open at once; more
	// are refused with 503. Default 100.
	MaxSessions int
	// SessionIdleTimeout closes a Streamable HTTP session that sends no
	// request for this long. Default 30 minutes.
	SessionIdleTimeout time.Duration
	// MaxLargeRequests bounds the Streamable HTTP requests with a body
	// over 64 KiB (or of unknown length) being read and handled at once:
	// each is buffered whole by the SDK, up to MaxUpload encoded, so this
	// bounds the memory uploads take. More are refused with 503. Default 8.
	MaxLargeRequests int
	// RateLimit is the sustained number of tool calls per second each API
	// key may make; calls over it are tool errors (rate_limited). Default
	// 20; negative: unlimited.
	RateLimit float64
	// RateBurst is how many tool calls a key may make at once above
	// RateLimit. Default 2 × RateLimit (at least 1).
	RateBurst int
	// Key is the identity of sessions that are not authenticated by HTTP
	// (stdio): its ID is the audit actor and its scopes select the tools.
	// Nil: such sessions may call no tool.
	Key *filehub.APIKey
	// Version is reported to clients as the server's version. Default
	// "dev".
	Version string
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the filehub_mcp_* metrics. Nil: not registered.
	Registerer prometheus.Registerer
}

// Server is the MCP server. It is safe for concurrent use.
type Server struct {
	backend  Backend
	cfg      Config
	log      *slog.Logger
	mcp      *mcp.Server
	scopes   map[string]filehub.Scope // tool name → scope it needs
	limits   *auth.Limiters           // per key; nil when unlimited
	metrics  *metrics
	template *mcp.ResourceTemplate
	sessions atomic.Int64  // initialized sessions open now
	large    chan struct{} // slots of large requests (HTTPHandler)
}

// fileURIPrefix starts every file resource's URI.
const fileURIPrefix = "filehub://files/"

// FileURI returns the resource URI of the file id.
func FileURI(id string) string { return fileURIPrefix + id }

// New returns a Server on backend. It returns the registerer's error if the
// metrics cannot be registered.
func New(backend Backend, cfg Config) (*Server, error) {
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	if cfg.MaxReadBytes <= 0 {
		cfg.MaxReadBytes = DefaultMaxReadBytes
	}
	if cfg.MaxBlobBytes <= 0 {
		cfg.MaxBlobBytes = DefaultMaxBlobBytes
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.SessionIdleTimeout <= 0 {
		cfg.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if cfg.MaxLargeRequests <= 0 {
		cfg.MaxLargeRequests = DefaultMaxLargeRequests
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = max(1, int(2*cfg.RateLimit))
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{backend: backend, cfg: cfg, log: cfg.Logger, scopes: map[string]filehub.Scope{}, large: make(chan struct{}, cfg.MaxLargeRequests)}
	if cfg.RateLimit > 0 {
		s.limits = auth.NewLimiters(cfg.RateLimit, cfg.RateBurst, DefaultMaxLimiters)
	}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: "filehub", Title: "filehub", Version: cfg.Version}, &mcp.ServerOptions{
		Instructions: instructions,
		// The SDK logs every notification at Info; only its warnings
		// are worth the daemon's log.
		Logger: slogWarn(s),
		Capabilities: &mcp.ServerCapabilities{
			Tools:     &mcp.ToolCapabilities{},
			Resources: &mcp.ResourceCapabilities{ListChanged: true, Subscribe: true},
			Prompts:   &mcp.PromptCapabilities{},
		},
		InitializedHandler: s.initialized,
		SubscribeHandler:   s.subscribe,
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	m, err := newMetrics(cfg.Registerer, s.sessionCount, func() int { return len(s.large) })
	if err != nil {
		return nil, fmt.Errorf("register MCP metrics: %w", err)
	}
	s.metrics = m
	s.addTools()
	s.addResources()
	s.addPrompts()
	s.mcp.AddReceivingMiddleware(s.middleware)
	return s, nil
}

const instructions = `filehub stores files deduplicated by content. Find files with list_files, ` +
	`read them with read_file (or the resource filehub://files/{id}), store new ones with upload_file, ` +
	`and hand one to a model provider with push_to_provider. Deleted files stay in the trash and can be restored.`

// MCP returns the underlying SDK server, for transports this package does
// not wrap.
func (s *Server) MCP() *mcp.Server { return s.mcp }

// ServeStdio serves one MCP session on t (usually &mcp.StdioTransport{})
// with Config.Key as its identity, until the client disconnects or ctx
// ends.
func (s *Server) ServeStdio(ctx context.Context, t mcp.Transport) error {
	return s.mcp.Run(ctx, t)
}

// KeyLimiters returns the per-key limiters of tool calls, or nil when
// Config.RateLimit is negative. A daemon in a cluster sets their share
// (auth.Limiters.SetShare) so that the limit holds across instances.
func (s *Server) KeyLimiters() *auth.Limiters { return s.limits }

// Close ends every open session, so that their streams end and an HTTP
// server's Shutdown is not held up by them.
func (s *Server) Close() {
	for ss := range s.mcp.Sessions() {
		ss.Close()
	}
}

// initialized counts a session that completed its handshake until it
// ends. Sessions are counted here rather than from mcp.Server.Sessions,
// which also holds the SDK's short-lived sessions of requests made before
// the handshake.
func (s *Server) initialized(_ context.Context, req *mcp.InitializedRequest) {
	s.sessions.Add(1)
	go func() {
		_ = req.Session.Wait()
		s.sessions.Add(-1)
	}()
}

func (s *Server) sessionCount() int { return int(s.sessions.Load()) }

// Sessions returns the number of MCP sessions open now (those that
// completed their handshake), for Local.Idle.
func (s *Server) Sessions() int { return s.sessionCount() }

// keyExtra is the TokenInfo.Extra entry holding the authenticated key.
const keyExtra = "filehub_key"

// keyOf returns the key a request is made with: the one HTTPHandler
// authenticated, or Config.Key.
func (s *Server) keyOf(req mcp.Request) *filehub.APIKey {
	if ex := req.GetExtra(); ex != nil && ex.TokenInfo != nil {
		if k, ok := ex.TokenInfo.Extra[keyExtra].(*filehub.APIKey); ok {
			return k
		}
	}
	return s.cfg.Key
}

// checkScope returns the EFORBIDDEN error of a key without scope, naming
// what needs it.
func checkScope(key *filehub.APIKey, scope filehub.Scope, what string) error {
	if key == nil {
		return filehub.Errorf(filehub.EUNAUTHORIZED, "this session has no API key")
	}
	if !key.Has(scope) {
		return filehub.Errorf(filehub.EFORBIDDEN, "this key lacks the %q scope, which %s needs", scope, what)
	}
	return nil
}

// middleware filters tools/list by the caller's scopes and serves
// resources/list from the backend's paginated listing (the SDK only lists
// static resources, and every file is one).
func (s *Server) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		switch method {
		case "tools/list":
			res, err := next(ctx, method, req)
			if lr, ok := res.(*mcp.ListToolsResult); ok && err == nil {
				key := s.keyOf(req)
				kept := make([]*mcp.Tool, 0, len(lr.Tools))
				for _, t := range lr.Tools {
					if key != nil && key.Has(s.scopes[t.Name]) {
						kept = append(kept, t)
					}
				}
				lr.Tools = kept
			}
			return res, err
		case "resources/list":
			p, _ := req.GetParams().(*mcp.ListResourcesParams)
			cursor := ""
			if p != nil {
				cursor = p.Cursor
			}
			return s.listResources(ctx, s.keyOf(req), cursor)
		}
		return next(ctx, method, req)
	}
}

// toolError turns a backend error into the error of a tool result: the code
// and the client-safe message, never internals.
func toolError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errors.New("canceled: " + err.Error())
	}
	return errors.New(filehub.ErrorCode(err) + ": " + filehub.ErrorMessage(err))
}

// resultLabel is the metrics label of a tool call's outcome.
func resultLabel(err error) string {
	if err == nil {
		return "ok"
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "canceled"
	}
	return filehub.ErrorCode(err)
}

// addTool registers a tool that needs scope. The handler runs with the
// key's ID as the audit actor and "mcp" as the reason, after the scope
// check and the key's rate limit; its errors become tool errors and are
// counted by code.
func addTool[In, Out any](s *Server, t *mcp.Tool, scope filehub.Scope, h mcp.ToolHandlerFor[In, Out]) {
	s.scopes[t.Name] = scope
	mcp.AddTool(s.mcp, t, func(ctx context.Context, req *mcp.CallToolRequest, in In) (*mcp.CallToolResult, Out, error) {
		var zero Out
		key := s.keyOf(req)
		err := checkScope(key, scope, t.Name)
		if err == nil && s.limits != nil && !s.limits.Get(key.ID).Allow() {
			err = filehub.Errorf(filehub.ERATELIMIT, "rate limit of %g tool calls/s exceeded; retry later", s.cfg.RateLimit)
		}
		if err != nil {
			s.metrics.calls.WithLabelValues(t.Name, resultLabel(err)).Inc()
			return nil, zero, toolError(err)
		}
		ctx = filehub.WithReason(filehub.WithActor(ctx, key.ID), "mcp")
		start := time.Now()
		res, out, err := h(ctx, req, in)
		s.metrics.calls.WithLabelValues(t.Name, resultLabel(err)).Inc()
		s.metrics.duration.WithLabelValues(t.Name).Observe(time.Since(start).Seconds())
		if err != nil {
			s.log.DebugContext(ctx, "MCP tool error", "tool", t.Name, "key_id", key.ID, "err", err)
			return nil, zero, toolError(err)
		}
		return res, out, nil
	})
}

// checkID refuses IDs that cannot name a file, before any store sees them.
func checkID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/\\?#% \t\r\n") {
		return filehub.Errorf(filehub.EINVALID, "invalid file id %q", truncate(id, 64))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// levelHandler drops records below a minimum level.
type levelHandler struct {
	slog.Handler
	min slog.Level
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return levelHandler{h.Handler.WithAttrs(as), h.min}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{h.Handler.WithGroup(name), h.min}
}

// slogWarn is the logger given to the SDK: it logs every notification at
// Info, and only its warnings are worth the daemon's log.
func slogWarn(s *Server) *slog.Logger {
	return slog.New(levelHandler{s.log.Handler(), slog.LevelWarn})
}
