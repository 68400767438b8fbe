package server

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/auth"
	"github.com/filehub/filehub/check"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/mcpserver"
	"github.com/filehub/filehub/providers"
	"github.com/filehub/filehub/ui"
	"github.com/filehub/filehub/wsserver"
)

// buildTransports builds the HTTP API and the WebSocket session server on
// the services, and the http.Servers of the API listener, (with
// Config.MetricsListen) the metrics listener and (with Config.PprofListen)
// the profiling listener; it returns nil for each listener not asked for.
// Every httpapi.Config and wsserver.Config is built here and nowhere else.
func (s *Server) buildTransports() (public, metrics, profiles *http.Server) {
	cfg := s.cfg
	log := cfg.Logger
	// One authenticator: HTTP and WebSocket share its failure limiter.
	authn := auth.New(s.meta, auth.Config{TrustedProxies: cfg.TrustedProxies, FailureLimit: cfg.AuthFailureLimit})
	handler := httpapi.New(s.files, s.meta, httpapi.Config{
		Logger:               log.With("component", "http"),
		Registerer:           cfg.Registerer,
		Auth:                 authn,
		Gatherer:             cfg.Gatherer,
		RateLimit:            max(cfg.RateLimit, 0), // httpapi: 0 is no limit
		RateBurst:            cfg.RateBurst,
		MaxConcurrentUploads: cfg.MaxConcurrentUploads,
		UploadStallTimeout:   cfg.UploadStallTimeout,
		// With a separate metrics listener, /metrics is not offered on
		// the public one at all.
		DisableMetricsRoute: cfg.MetricsListen != "",
		Cleanup:             s.cleaner,
		Check:               check.New(s.meta, s.blobs, check.Config{Logger: log.With("component", "check")}),
		Providers:           s.pusher,
	})
	s.keyLimiters = append(s.keyLimiters, handler.KeyLimiters())
	s.mountTus(handler)
	// Durable sessions when asked for and the metadata store can keep
	// them; each process is a new instance (its sessions are claimed from
	// the store, whatever instance saved them).
	var sessions filehub.WSSessionStore
	if cfg.WSSessions == WSSessionsDurable {
		if st, ok := s.meta.(filehub.WSSessionStore); ok {
			sessions = st
		} else {
			log.Warn("the metadata store cannot keep WebSocket sessions; they live in memory (--ws-sessions memory)")
		}
	}
	s.ws = wsserver.New(s.files, s.meta, wsserver.Config{
		Logger:            log.With("component", "ws"),
		Registerer:        cfg.Registerer,
		Auth:              authn,
		SessionTTL:        cfg.WSSessionTTL,
		PingInterval:      cfg.WSPingInterval,
		PongTimeout:       cfg.WSPongTimeout,
		MaxConnsPerKey:    cfg.WSMaxConnsPerKey,
		MaxMessageBytes:   cfg.WSMaxMessageSize,
		EventPollInterval: cfg.WSEventPollInterval,
		EventRetention:    cfg.EventRetention,
		EventMaxCount:     cfg.EventMaxCount,
		Cleanup:           cleanup.WireRunner{Service: s.cleaner, Trigger: "websocket"},
		Providers:         wsPusher{s.pusher},

		// Issue 15's bounds. wsserver counts in int; over 2 GiB of
		// cached results is no sensible setting, and the clamp keeps
		// 32-bit builds right.
		MaxSessionsPerKey:     cfg.WSMaxSessionsPerKey,
		MaxPendingHellos:      cfg.WSMaxPendingHellos,
		AnonHelloTimeout:      cfg.WSAnonHelloTimeout,
		ResultCacheBytes:      int(min(cfg.WSResultCacheBytes, math.MaxInt32)),
		ResultCacheTotalBytes: int(min(cfg.WSResultCacheTotalBytes, math.MaxInt32)),

		// Issue 16: durable sessions.
		Sessions:   sessions,
		InstanceID: filehub.NewID("i_"),
	})

	// The WebSocket endpoint authenticates by itself (a browser can only
	// send its key in the hello frame), so it sits beside the API handler
	// rather than behind its auth.
	root := newRouteMux()
	root.Handle("GET /v1/ws", s.ws)
	root.Handle("GET "+ui.Prefix, ui.Handler()) // public static assets; the page sends its key on every call
	// MCP authenticates by itself too, with the same authenticator: its
	// scope refusals are per tool, as tool errors.
	root.Handle("/v1/mcp", s.mcp.HTTPHandler(mcpserver.FromAuthenticator(authn)))
	root.Handle("/", handler)
	s.routes = routesOf(root, handler)
	public = handler.NewServer(cfg.Listen)
	public.Handler = root
	if cfg.MetricsListen != "" {
		metrics = &http.Server{
			Addr:              cfg.MetricsListen,
			Handler:           handler.MetricsHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
	}
	if cfg.PprofListen != "" {
		profiles = pprofServer(cfg.PprofListen, authn, log.With("component", "pprof"))
	}
	return public, metrics, profiles
}

// wsPusher adapts the push service to the WebSocket server's
// providers.push method.
type wsPusher struct{ svc *providers.Service }

func (p wsPusher) PushToProvider(ctx context.Context, fileID, provider string) (*api.PushResult, error) {
	r, err := p.svc.Push(ctx, fileID, provider)
	if err != nil {
		return nil, err
	}
	res := api.PushResult(*r)
	return &res, nil
}
