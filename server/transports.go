package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/providers"
	"github.com/filehub/filehub/wsserver"
)

// buildTransports builds the HTTP API and the WebSocket session server on
// the services, and the http.Servers of the API listener and (with
// Config.MetricsListen) the metrics listener, which it returns nil
// without. Every httpapi.Config and wsserver.Config is built here and
// nowhere else.
func (s *Server) buildTransports() (api, metrics *http.Server) {
	cfg := s.cfg
	log := cfg.Logger
	handler := httpapi.New(s.files, s.meta, httpapi.Config{
		Logger:               log.With("component", "http"),
		Registerer:           cfg.Registerer,
		Gatherer:             cfg.Gatherer,
		RateLimit:            max(cfg.RateLimit, 0), // httpapi: 0 is no limit
		RateBurst:            cfg.RateBurst,
		MaxConcurrentUploads: cfg.MaxConcurrentUploads,
		UploadStallTimeout:   cfg.UploadStallTimeout,
		// With a separate metrics listener, /metrics is not offered on
		// the public one at all.
		DisableMetricsRoute: cfg.MetricsListen != "",
		Cleanup:             s.cleaner,
		Providers:           s.pusher,
	})
	s.ws = wsserver.New(s.files, s.meta, wsserver.Config{
		Logger:            log.With("component", "ws"),
		Registerer:        cfg.Registerer,
		SessionTTL:        cfg.WSSessionTTL,
		PingInterval:      cfg.WSPingInterval,
		PongTimeout:       cfg.WSPongTimeout,
		MaxConnsPerKey:    cfg.WSMaxConnsPerKey,
		MaxMessageBytes:   cfg.WSMaxMessageSize,
		EventPollInterval: cfg.WSEventPollInterval,
		EventRetention:    cfg.EventRetention,
		EventMaxCount:     cfg.EventMaxCount,
		Cleanup:           wsCleanup{s.cleaner},
		Providers:         wsPusher{s.pusher},
	})

	// The WebSocket endpoint authenticates by itself (a browser can only
	// send its key in the hello frame), so it sits beside the API handler
	// rather than behind its auth.
	root := http.NewServeMux()
	root.Handle("GET /v1/ws", s.ws)
	root.Handle("/", handler)
	api = handler.NewServer(cfg.Listen)
	api.Handler = root
	if cfg.MetricsListen != "" {
		metrics = &http.Server{
			Addr:              cfg.MetricsListen,
			Handler:           handler.MetricsHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
	}
	return api, metrics
}

// wsCleanup adapts the cleanup service to the WebSocket server's
// cleanup.run method.
type wsCleanup struct{ svc *cleanup.Service }

func (c wsCleanup) RunCleanup(ctx context.Context, req wsserver.CleanupRequest) (any, error) {
	opts := cleanup.RunOptions{DryRun: req.DryRun, Force: req.Force, Trigger: "websocket"}
	for _, s := range req.Only {
		k, err := cleanup.ParseKind(s)
		if err != nil {
			return nil, err
		}
		opts.Only = append(opts.Only, k)
	}
	r, err := c.svc.Run(ctx, opts)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// wsPusher adapts the push service to the WebSocket server's
// providers.push method.
type wsPusher struct{ svc *providers.Service }

func (p wsPusher) PushToProvider(ctx context.Context, fileID, provider string) (*wsserver.PushResult, error) {
	r, err := p.svc.Push(ctx, fileID, provider)
	if err != nil {
		return nil, err
	}
	return &wsserver.PushResult{Provider: r.Provider, ProviderFileID: r.ProviderFileID, Reused: r.Reused}, nil
}
