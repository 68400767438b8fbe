// Package httpapi is filehub's HTTP API: the JSON and streaming endpoints
// for uploading, listing, downloading, deleting and restoring files, the
// admin endpoints of the cleanup service and the audit log, plus the
// health, readiness and metrics endpoints.
//
// It is a thin transport over files.Service: it authenticates requests with
// API keys, enforces scopes, per-key rate limits and the cap on concurrent
// uploads, guards against slow clients, and maps filehub error codes to HTTP
// statuses and RFC 9457 problem documents with the one table in package
// api (api.Errors); every body it sends or reads is a type of package api.
// It never touches the stores directly except to look up API keys.
//
// Every route is listed once in the routes table; Handler.Routes exposes
// it so tests can check that each one enforces authentication and scopes.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/auth"
	"github.com/filehub/filehub/files"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults for Config's zero values.
const (
	DefaultMaxConcurrentUploads = 256
	DefaultUploadStallTimeout   = 60 * time.Second
	DefaultDownloadStallTimeout = 60 * time.Second
	DefaultReadHeaderTimeout    = 10 * time.Second
	DefaultIdleTimeout          = 120 * time.Second
	DefaultMaxParts             = 100
	DefaultAuthFailureLimit     = 10
	DefaultAuthFailureBurst     = 20
	DefaultMaxLimiters          = 10000

	// MaxHeaderBytes bounds request headers; API requests carry a key and
	// a few short headers, so 64 KiB is generous.
	MaxHeaderBytes = 64 << 10
)

// Config configures a Handler. The zero value is usable: every field says
// its default.
type Config struct {
	// Logger receives request and error logs. Default slog.Default().
	Logger *slog.Logger

	// Registerer receives the HTTP metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// Gatherer is what GET /metrics serves. Nil: /metrics answers 404.
	// There is deliberately no fallback to prometheus.DefaultGatherer,
	// which would expose whatever else the process registered there.
	Gatherer prometheus.Gatherer
	// DisableMetricsRoute leaves /metrics off the API handler, for when
	// MetricsHandler is served on a separate listener.
	DisableMetricsRoute bool

	// RateLimit is the sustained number of requests per second each API
	// key may make. Default 0: unlimited.
	RateLimit float64
	// RateBurst is how many requests a key may make at once above the
	// sustained rate. Default 2 × RateLimit (at least 1).
	RateBurst int
	// Auth authenticates requests; give the HTTP API and the WebSocket
	// server the same one, so that they share its limiter of failed
	// authentications. Nil: one is built from the key store and the three
	// fields below, which are ignored otherwise.
	Auth *auth.Authenticator
	// AuthFailureLimit is the sustained number of failed authentications
	// per second accepted from one client IP address; beyond it (after
	// AuthFailureBurst) the address's further failures get 429 (a valid
	// key is always accepted; see package auth). Default 10; negative
	// disables the limit.
	AuthFailureLimit float64
	// AuthFailureBurst defaults to 2 × AuthFailureLimit.
	AuthFailureBurst int
	// MaxLimiters bounds the number of per-key and per-address limiters
	// kept in memory (each set separately). Default 10000.
	MaxLimiters int

	// MaxConcurrentUploads caps the uploads being received at once; more
	// get 503 with Retry-After. Default 256.
	MaxConcurrentUploads int
	// MaxParts is the most files one multipart request may carry.
	// Default 100.
	MaxParts int
	// UploadStallTimeout aborts an upload (408) whose body delivers no
	// bytes for this long. Default 60s. An idle body is cut after between
	// 1 and 1.25 times this duration (deadlines are renewed lazily).
	UploadStallTimeout time.Duration
	// DownloadStallTimeout cuts a download whose client accepts no bytes
	// for this long. Default 60s, with the same 1–1.25× precision.
	DownloadStallTimeout time.Duration

	// ReadHeaderTimeout is the time a client has to send request headers,
	// used by NewServer. Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout is how long NewServer's server keeps an idle keep-alive
	// connection. Default 120s.
	IdleTimeout time.Duration

	// Cleanup serves the /v1/cleanup routes and /v1/audit (admin scope).
	// Nil: those routes exist but answer 404 (not_found) with a problem
	// saying that the server has no cleanup service.
	Cleanup Cleanup

	// Check serves POST /v1/check (admin scope), the consistency check.
	// Nil: the route answers 404 (not_found).
	Check Checker

	// Providers serves POST /v1/files/{id}/providers/{name} (write
	// scope). Nil: the route answers 404 (not_found, unknown provider).
	Providers Pusher
}

// KeyStore looks up API keys; filehub.MetaStore implements it.
type KeyStore interface {
	// FindAPIKeyByHash returns the key with the given hash, revoked or
	// not, ENOTFOUND if there is none, EUNAVAILABLE if the store is down.
	FindAPIKeyByHash(ctx context.Context, hash []byte) (*filehub.APIKey, error)
}

// Handler serves the API. It is an http.Handler, safe for concurrent use.
type Handler struct {
	svc     *files.Service
	keys    KeyStore
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []Route
	metrics *metrics
	promh   http.Handler // nil without a Gatherer

	uploadSlots chan struct{}
	keyLimits   *auth.Limiters // nil when RateLimit is 0
	auth        *auth.Authenticator
}

// New returns a Handler serving svc, authenticating requests against keys.
func New(svc *files.Service, keys KeyStore, cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = max(1, int(2*cfg.RateLimit))
	}
	if cfg.AuthFailureLimit == 0 {
		cfg.AuthFailureLimit = DefaultAuthFailureLimit
	}
	if cfg.AuthFailureBurst <= 0 {
		cfg.AuthFailureBurst = max(1, int(2*cfg.AuthFailureLimit))
	}
	if cfg.MaxLimiters <= 0 {
		cfg.MaxLimiters = DefaultMaxLimiters
	}
	if cfg.MaxConcurrentUploads <= 0 {
		cfg.MaxConcurrentUploads = DefaultMaxConcurrentUploads
	}
	if cfg.MaxParts <= 0 {
		cfg.MaxParts = DefaultMaxParts
	}
	if cfg.UploadStallTimeout <= 0 {
		cfg.UploadStallTimeout = DefaultUploadStallTimeout
	}
	if cfg.DownloadStallTimeout <= 0 {
		cfg.DownloadStallTimeout = DefaultDownloadStallTimeout
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	h := &Handler{
		svc:         svc,
		keys:        keys,
		cfg:         cfg,
		log:         cfg.Logger,
		mux:         http.NewServeMux(),
		metrics:     newMetrics(cfg.Registerer),
		uploadSlots: make(chan struct{}, cfg.MaxConcurrentUploads),
	}
	if cfg.Gatherer != nil {
		h.promh = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError),
		})
	}
	if cfg.RateLimit > 0 {
		h.keyLimits = auth.NewLimiters(cfg.RateLimit, cfg.RateBurst, cfg.MaxLimiters)
	}
	h.auth = cfg.Auth
	if h.auth == nil {
		h.auth = auth.New(keys, auth.Config{FailureLimit: cfg.AuthFailureLimit, FailureBurst: cfg.AuthFailureBurst, MaxLimiters: cfg.MaxLimiters})
	}
	for _, rt := range routes {
		if rt.Path == "/metrics" && (cfg.DisableMetricsRoute || cfg.Gatherer == nil) {
			continue
		}
		h.routes = append(h.routes, rt)
		h.mux.Handle(rt.Method+" "+rt.Path, h.wrap(rt))
	}
	return h
}

// Route describes one endpoint of the API.
type Route struct {
	Method string        // "GET", "POST", …
	Path   string        // a ServeMux path pattern, e.g. "/v1/files/{id}"
	Scope  filehub.Scope // the scope a key needs; "" for no authentication
	handle func(h *Handler, w http.ResponseWriter, r *http.Request) error
	// Params is the package api type the route's parameters (path,
	// query and JSON body together) are decoded into, nil for routes
	// whose input is not a parameter set (uploads, settings, streams).
	// The WebSocket method doing the same decodes the same type.
	Params reflect.Type
}

// Pattern returns the ServeMux pattern, "METHOD /path", which is also the
// route label of the HTTP metrics.
func (rt Route) Pattern() string { return rt.Method + " " + rt.Path }

// routes is the one table of the API's endpoints and the scope each needs.
var routes = []Route{
	{"GET", "/healthz", "", (*Handler).healthz, nil},
	{"GET", "/readyz", filehub.ScopeMetrics, (*Handler).readyz, nil},
	{"GET", "/metrics", filehub.ScopeMetrics, (*Handler).serveMetrics, nil},
	{"POST", "/v1/files", filehub.ScopeWrite, (*Handler).upload, nil},
	{"GET", "/v1/files", filehub.ScopeRead, (*Handler).list, reflect.TypeFor[api.FilesListRequest]()},
	{"GET", "/v1/files/{id}", filehub.ScopeRead, (*Handler).stat, reflect.TypeFor[api.FileRequest]()},
	{"GET", "/v1/files/{id}/content", filehub.ScopeRead, (*Handler).content, nil},
	{"DELETE", "/v1/files/{id}", filehub.ScopeWrite, (*Handler).delete, reflect.TypeFor[api.FileRequest]()},
	{"POST", "/v1/files/{id}/restore", filehub.ScopeWrite, (*Handler).restore, reflect.TypeFor[api.FileRequest]()},
	{"POST", "/v1/files/{id}/providers/{name}", filehub.ScopeWrite, (*Handler).push, reflect.TypeFor[api.PushRequest]()},
	{"GET", "/v1/stats", filehub.ScopeRead, (*Handler).stats, nil},
	{"POST", "/v1/cleanup/runs", filehub.ScopeAdmin, (*Handler).cleanupRun, reflect.TypeFor[api.CleanupRunRequest]()},
	{"GET", "/v1/cleanup/runs", filehub.ScopeAdmin, (*Handler).cleanupRuns, nil},
	{"GET", "/v1/cleanup/runs/{id}", filehub.ScopeAdmin, (*Handler).cleanupRunByID, nil},
	{"GET", "/v1/cleanup/config", filehub.ScopeAdmin, (*Handler).cleanupConfig, nil},
	{"PATCH", "/v1/cleanup/config", filehub.ScopeAdmin, (*Handler).cleanupConfigPatch, nil},
	{"GET", "/v1/audit", filehub.ScopeAdmin, (*Handler).audit, nil},
	{"POST", "/v1/check", filehub.ScopeAdmin, (*Handler).check, nil},
	{"GET", "/v1/openapi.json", "", (*Handler).openapiJSON, nil},
	{"GET", "/v1/openapi.yaml", "", (*Handler).openapiYAML, nil},
}

// Routes returns the endpoints this Handler serves (without /metrics when it
// is disabled or has no Gatherer).
func (h *Handler) Routes() []Route { return append([]Route(nil), h.routes...) }

// NewServer returns an http.Server for h listening on addr, with the
// configured header and idle timeouts and MaxHeaderBytes. It sets no overall
// ReadTimeout or WriteTimeout, which would cut long uploads and downloads;
// stalled bodies are detected per read and per write instead (see
// Config.UploadStallTimeout and DownloadStallTimeout).
func (h *Handler) NewServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: h.cfg.ReadHeaderTimeout,
		IdleTimeout:       h.cfg.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
}

// MetricsHandler returns a handler for a separate, unauthenticated
// operations listener (--metrics-listen): GET /metrics, /readyz and
// /healthz. Bind it to a private address only.
func (h *Handler) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", h.plain((*Handler).healthz))
	mux.Handle("GET /readyz", h.plain((*Handler).readyz))
	if h.cfg.Gatherer != nil {
		mux.Handle("GET /metrics", h.plain((*Handler).serveMetrics))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = h.begin(w, r)
		if _, pattern := mux.Handler(r); pattern == "" {
			h.unmatched(w, r, mux)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// plain adapts a route handler without authentication or metrics.
func (h *Handler) plain(fn func(*Handler, http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(h, w, r); err != nil {
			h.writeError(w, r, err)
		}
	})
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, api.Status{Status: "ok"})
	return nil
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.Ready(r.Context()); err != nil {
		// Readiness failures are always "try elsewhere / later", whatever
		// the cause, so load balancers see 503.
		return filehub.WrapError(filehub.EUNAVAILABLE, filehub.ErrorMessage(err), err)
	}
	writeJSON(w, http.StatusOK, api.Status{Status: "ready"})
	return nil
}

func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	if h.promh == nil {
		return filehub.Errorf(filehub.ENOTFOUND, "metrics are not served here")
	}
	h.promh.ServeHTTP(w, r)
	return nil
}
