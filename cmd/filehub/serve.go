package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/openai"
	"github.com/filehub/filehub/providers"
	"github.com/filehub/filehub/tus"
	"github.com/filehub/filehub/wsserver"
)

// ServeConfig holds the settings of "filehub serve". The zero value is not
// meant to be used: DefaultServeConfig returns the defaults the flags show.
type ServeConfig struct {
	DataDir string
	// DB is the metadata database: "" for SQLite under DataDir, or a
	// postgres:// URL. Blobs is the blob store: "" for the local disk
	// under DataDir, or an s3:// URL. See stores.go.
	DB            string
	Blobs         string
	Listen        string
	MetricsListen string // "" serves /metrics on Listen, behind auth

	MaxUploadSize int64
	MinFreeSpace  int64 // 0 disables the free-space floor
	TrashGrace    time.Duration
	AllowTypes    []string
	DenyTypes     []string

	RateLimit            float64 // requests/s per key; 0 disables
	RateBurst            int
	MaxConcurrentUploads int
	UploadStallTimeout   time.Duration
	ShutdownTimeout      time.Duration

	WSSessionTTL     time.Duration
	WSPingInterval   time.Duration
	WSPongTimeout    time.Duration
	WSMaxConnsPerKey int
	WSMaxMessageSize int64
	EventRetention   time.Duration
	EventMaxCount    int

	// The cleanup service's defaults; settings stored at run time
	// ("filehub cleanup config set") win over them.
	BlobGrace         time.Duration
	UploadExpiry      time.Duration
	MaxDeleteFraction float64
	CleanupInterval   time.Duration // 0 disables the scheduler

	// Providers are the config file's provider settings (see
	// readProviderFile); FILEHUB_PROVIDER_* variables override them.
	Providers map[string]map[string]string

	// Resumable uploads (tus, at /v1/uploads/).
	TusExpiry      time.Duration
	MaxOpenUploads int
	CORSOrigins    []string

	LogLevel  string
	LogFormat string
}

// DefaultServeConfig returns the embedded defaults: what "filehub serve"
// does with no flags, environment or config file.
func DefaultServeConfig() ServeConfig {
	return ServeConfig{
		DataDir:              "./filehub-data",
		Listen:               "127.0.0.1:8080",
		MaxUploadSize:        files.DefaultMaxUploadSize,
		MinFreeSpace:         files.DefaultMinFreeSpace,
		TrashGrace:           files.DefaultTrashGrace,
		DenyTypes:            append([]string(nil), files.DefaultDenyTypes...),
		RateLimit:            100,
		RateBurst:            200,
		MaxConcurrentUploads: 256,
		UploadStallTimeout:   60 * time.Second,
		ShutdownTimeout:      30 * time.Second,
		WSSessionTTL:         wsserver.DefaultSessionTTL,
		WSPingInterval:       wsserver.DefaultPingInterval,
		WSPongTimeout:        wsserver.DefaultPongTimeout,
		WSMaxConnsPerKey:     wsserver.DefaultMaxConnsPerKey,
		WSMaxMessageSize:     wsserver.DefaultMaxMessageBytes,
		EventRetention:       wsserver.DefaultEventRetention,
		EventMaxCount:        wsserver.DefaultEventMaxCount,
		BlobGrace:            cleanup.DefaultBlobGrace,
		UploadExpiry:         cleanup.DefaultUploadExpiry,
		MaxDeleteFraction:    cleanup.DefaultMaxDeleteFraction,
		CleanupInterval:      cleanup.DefaultInterval,
		TusExpiry:            tus.DefaultExpiry,
		MaxOpenUploads:       tus.DefaultMaxOpenUploads,
		LogLevel:             "info",
		LogFormat:            "text",
	}
}

// bindServeFlags defines the serve flags on fs, writing into c, whose
// current values are the defaults shown by --help.
func bindServeFlags(fs interface {
	StringVar(p *string, name, value, usage string)
	StringSliceVar(p *[]string, name string, value []string, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
	Float64Var(p *float64, name string, value float64, usage string)
	IntVar(p *int, name string, value int, usage string)
}, c *ServeConfig) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory holding the database (filehub.db), blobs/ and tmp/ unless --db and --blobs name shared stores")
	fs.StringVar(&c.DB, "db", c.DB, "metadata database: empty for SQLite under --data-dir, or a postgres:// URL (keep its password in the environment)")
	fs.StringVar(&c.Blobs, "blobs", c.Blobs, "blob storage: empty for the local disk under --data-dir, or 's3://BUCKET?endpoint=URL&region=REGION&path_style=true' (credentials from AWS_* variables)")
	fs.StringVar(&c.Listen, "listen", c.Listen, "address of the HTTP API")
	fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, "address serving /metrics and /readyz without auth; empty: off, /metrics is served on --listen to admin or metrics keys")
	fs.DurationVar(&c.TrashGrace, "trash-grace", c.TrashGrace, "how long a deleted file can be restored before it may be purged")
	fs.DurationVar(&c.BlobGrace, "blob-grace", c.BlobGrace, "cleanup: how long an unreferenced blob or an object without a record is kept before it is deleted")
	fs.DurationVar(&c.UploadExpiry, "upload-expiry", c.UploadExpiry, "cleanup: how long an abandoned upload's temp file may stay inactive before it is removed")
	fs.Float64Var(&c.MaxDeleteFraction, "max-delete-fraction", c.MaxDeleteFraction, "cleanup safety cap: a run that would delete more than this fraction of all blobs stops and asks for force")
	fs.DurationVar(&c.CleanupInterval, "cleanup-interval", c.CleanupInterval, "time between scheduled cleanup runs (with jitter); 0: no scheduled runs")
	fs.StringSliceVar(&c.AllowTypes, "allow-types", c.AllowTypes, "if set, only these MIME patterns may be stored (e.g. image/*,application/pdf)")
	fs.StringSliceVar(&c.DenyTypes, "deny-types", c.DenyTypes, "MIME patterns refused whatever the file name; wins over --allow-types; \"\" denies nothing")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "requests per second allowed per API key; 0: no limit")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "requests per API key allowed in a burst above --rate-limit")
	fs.IntVar(&c.MaxConcurrentUploads, "max-concurrent-uploads", c.MaxConcurrentUploads, "uploads processed at once; more are refused with 503 and Retry-After")
	fs.DurationVar(&c.UploadStallTimeout, "upload-stall-timeout", c.UploadStallTimeout, "abort an upload whose body sends nothing for this long")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "on SIGTERM/SIGINT, how long in-flight requests may take to finish")
	fs.DurationVar(&c.WSSessionTTL, "ws-session-ttl", c.WSSessionTTL, "how long a WebSocket session survives a disconnect and can be resumed")
	fs.DurationVar(&c.WSPingInterval, "ws-ping-interval", c.WSPingInterval, "interval of WebSocket pings (announced to clients as the heartbeat)")
	fs.DurationVar(&c.WSPongTimeout, "ws-pong-timeout", c.WSPongTimeout, "a WebSocket connection silent for ping interval + this is closed as dead (its session is kept)")
	fs.IntVar(&c.WSMaxConnsPerKey, "ws-max-connections-per-key", c.WSMaxConnsPerKey, "WebSocket connections one API key may hold at once; more get 429")
	fs.DurationVar(&c.EventRetention, "event-retention", c.EventRetention, "events younger than this are kept in the event log (subscribers can replay them)")
	fs.IntVar(&c.EventMaxCount, "event-max-count", c.EventMaxCount, "the event log keeps at most this many events (the newest)")
	fs.DurationVar(&c.TusExpiry, "tus-expiry", c.TusExpiry, "a resumable (tus) upload that receives nothing for this long expires (410, then removed)")
	fs.IntVar(&c.MaxOpenUploads, "max-open-uploads", c.MaxOpenUploads, "unfinished resumable uploads one API key may have; more get 429")
	fs.StringSliceVar(&c.CORSOrigins, "cors-origins", c.CORSOrigins, "origins browsers may upload from with tus (e.g. https://app.example.com, or *); empty: none")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
}

func newServeCommand(env Env) *cobra.Command {
	cfg := DefaultServeConfig()
	maxUpload := byteSize(cfg.MaxUploadSize)
	minFree := byteSize(cfg.MinFreeSpace)
	wsMaxMsg := byteSize(cfg.WSMaxMessageSize)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the filehub server",
		Long: `Run the filehub server: metadata in SQLite at <data-dir>/filehub.db, content
under <data-dir>/blobs, uploads in progress under <data-dir>/tmp. With
--db postgres://… the metadata is in PostgreSQL, with --blobs s3://… the
content in an S3-compatible bucket; with both, several servers can share
them behind a load balancer (see docs/operations.md).

If no API key exists yet, serve creates an admin key named "bootstrap": the
secret in FILEHUB_BOOTSTRAP_KEY if set, otherwise a new one printed once on
standard output.

SIGTERM or SIGINT stops accepting connections, lets in-flight requests finish
for up to --shutdown-timeout and closes the stores; a second signal exits at
once.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.MaxUploadSize = int64(maxUpload)
			cfg.MinFreeSpace = int64(minFree)
			cfg.WSMaxMessageSize = int64(wsMaxMsg)
			provs, err := readProviderFile(configPath(cmd, env.Getenv))
			if err != nil {
				return err
			}
			cfg.Providers = provs
			run := runServe
			if env.serve != nil {
				run = env.serve
			}
			return run(cmd.Context(), cfg, env)
		},
	}
	fs := cmd.Flags()
	bindServeFlags(fs, &cfg)
	fs.Var(&maxUpload, "max-upload-size", "largest file accepted (e.g. 512MiB, 1GiB, 10MB)")
	fs.Var(&minFree, "min-free-space", "refuse uploads (507) and report not ready when free disk space is below this; 0: no floor")
	fs.Var(&wsMaxMsg, "ws-max-message-size", "largest WebSocket message accepted; larger ones close the connection (1009)")
	fs.SortFlags = true
	configurable(fs,
		"data-dir", "db", "blobs", "listen", "metrics-listen", "max-upload-size", "min-free-space", "trash-grace",
		"allow-types", "deny-types", "rate-limit", "rate-burst", "max-concurrent-uploads",
		"upload-stall-timeout", "shutdown-timeout", "log-level", "log-format",
		"ws-session-ttl", "ws-ping-interval", "ws-pong-timeout", "ws-max-connections-per-key",
		"ws-max-message-size", "event-retention", "event-max-count",
		"blob-grace", "upload-expiry", "max-delete-fraction", "cleanup-interval",
		"tus-expiry", "max-open-uploads", "cors-origins")
	return cmd
}

// runServe runs the server until a signal or ctx ends it.
func runServe(ctx context.Context, cfg ServeConfig, env Env) error {
	logger, err := newLogger(env.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return usageErrorf("%v", err)
	}

	m := NewMain()
	m.Config = cfg
	m.Logger = logger
	m.Stdout = env.Stdout
	m.Getenv = env.Getenv

	// The first signal starts a graceful shutdown, a second one ends the
	// process at once: an operator pressing Ctrl-C twice means it.
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)

	if err := m.Run(ctx); err != nil {
		return errors.Join(err, m.Close())
	}
	select {
	case sig := <-sigc:
		logger.Info("shutting down", "signal", sig.String(), "timeout", cfg.ShutdownTimeout)
	case <-ctx.Done():
		logger.Info("shutting down", "reason", context.Cause(ctx))
	case <-m.Done():
		// A listener failed; Close reports why.
	}
	closed := make(chan struct{})
	defer close(closed)
	go func() {
		select {
		case sig := <-sigc:
			logger.Warn("second signal, exiting now", "signal", sig.String())
			os.Exit(ExitFailure)
		case <-closed:
		}
	}()
	return m.Close()
}

// newLogger returns the daemon's structured logger.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q (want debug, info, warn or error)", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid --log-format %q (want text or json)", format)
}

// Main is the running daemon: the stores, the file service and the HTTP
// listeners. Tests use it to run the real server in-process.
type Main struct {
	Config ServeConfig
	// Logger receives the daemon's logs. Default: discard.
	Logger *slog.Logger
	// Stdout receives the generated bootstrap key, once. Default: discard.
	Stdout io.Writer
	// Getenv reads FILEHUB_BOOTSTRAP_KEY. Default: os.Getenv.
	Getenv func(string) string
	// Environ lists the environment, for the FILEHUB_PROVIDER_* variables
	// (see parseProviders). Default: os.Environ.
	Environ func() []string
	// Registry receives all metrics. Default: a new registry with the Go
	// and process collectors.
	Registry *prometheus.Registry

	db      metaStore
	blobs   filehub.BlobStore
	ws      *wsserver.Server
	wsStop  context.CancelFunc // ends ws.Run
	cleanup *cleanup.Service
	// providers are the model providers' clients, closed with the stores.
	providers []*openai.Client
	// cleanupStop ends the scheduler (cleanup.Service.Loop), after the
	// servers and before the stores.
	cleanupStop context.CancelFunc
	servers     []*http.Server
	addrs       []string
	group       *errgroup.Group
	done        <-chan struct{}
	lock        *os.File // held while the server runs; see lockDataDir
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Config: DefaultServeConfig()}
}

// Run opens the stores, makes sure an API key exists, binds the listeners
// and starts serving. It returns once the server accepts connections; Close
// stops it. If Run fails, call Close to release what it opened.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	if m.Stdout == nil {
		m.Stdout = io.Discard
	}
	if m.Getenv == nil {
		m.Getenv = os.Getenv
	}
	if m.Environ == nil {
		m.Environ = os.Environ
	}
	if m.Registry == nil {
		m.Registry = prometheus.NewRegistry()
		m.Registry.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
	}
	log := m.Logger
	if err := checkCleanupFlags(cfg); err != nil {
		return err
	}

	stores := storeTarget{DataDir: cfg.DataDir, DB: cfg.DB, Blobs: cfg.Blobs}
	if err := stores.check(); err != nil {
		return err
	}
	// The lock protects stores on the local disk from a second server on
	// them. Shared stores are meant for several servers: with PostgreSQL
	// and S3 the data dir is not used at all.
	if stores.usesDataDir() {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		lock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return err
		}
		m.lock = lock
	}
	blobs, err := openBlobs(ctx, stores, blobOptions{
		// Leftovers in tmp/ are uploads cut short by a crash: the lock
		// guarantees that no other server is receiving them. A bucket
		// has no such guarantee; the cleanup's stale_temp kind takes
		// care of abandoned uploads there.
		RemoveStaleTemp: stores.localBlobs(),
		Logger:          log.With("component", stores.blobKind()),
	})
	if err != nil {
		return err
	}
	m.blobs = blobs

	db, err := openMeta(ctx, stores, metaOptions{
		Create:     true,
		Logger:     log.With("component", stores.metaKind()),
		Registerer: m.Registry,
	})
	if err != nil {
		return err
	}
	m.db = db
	log.Info("stores open", "stores", stores.describe())

	minFree := cfg.MinFreeSpace
	if minFree == 0 {
		minFree = -1 // files.Config: negative disables the floor
	}
	denyTypes := cfg.DenyTypes
	if denyTypes == nil {
		denyTypes = []string{} // nil would mean files' defaults; the user asked for none
	}
	// The event hub reads new events as soon as this process commits them;
	// it polls as well, for changes made by other processes.
	var ws *wsserver.Server
	notify := func() {
		if ws != nil {
			ws.Notify()
		}
	}
	interval := cfg.CleanupInterval
	if interval == 0 {
		interval = cleanup.DefaultInterval // the setting's default; no scheduler runs
	}
	// Filled below once the providers are built; the cleanup reads it at
	// each run.
	var cleanupProvs []cleanup.Provider
	var pusherForMetrics *providers.Service // set below; read by the cleanup's runs
	cleaner, err := cleanup.New(db, blobs, cleanup.Config{
		Providers: func() []cleanup.Provider { return cleanupProvs },
		// A run's listing of each account is the only count of its files:
		// export it next to the account's quota.
		ProviderFiles: func(name string, n int64) {
			if pusherForMetrics != nil {
				pusherForMetrics.SetProviderFiles(name, int(n))
			}
		},
		TrashGrace:        cfg.TrashGrace,
		BlobGrace:         cfg.BlobGrace,
		UploadExpiry:      cfg.UploadExpiry,
		MaxDeleteFraction: cfg.MaxDeleteFraction,
		Interval:          interval,
		InstanceID:        instanceID(),
		Logger:            log.With("component", "cleanup"),
		Registerer:        m.Registry,
		// cleanup.started, cleanup.finished and file.purged are in the
		// event log when these are called: subscribers get them at once
		// rather than at the hub's next poll.
		OnEvent: func(string, *cleanup.Report) { notify() },
		Changed: notify,
	})
	if err != nil {
		return fmt.Errorf("start cleanup service: %w", err)
	}
	m.cleanup = cleaner
	svc, err := files.New(db, blobs, files.Config{
		Changed:       notify,
		MaxUploadSize: cfg.MaxUploadSize,
		MinFreeSpace:  minFree,
		TrashGrace:    cfg.TrashGrace,
		// A trash_grace changed at run time applies to the next delete.
		TrashGraceFunc: cleaner.TrashGrace,
		AllowTypes:     cfg.AllowTypes,
		DenyTypes:      denyTypes,
		Registerer:     m.Registry,
		Logger:         log.With("component", "files"),
	})
	if err != nil {
		return err
	}

	provCfgs, err := parseProviders(m.Environ(), cfg.Providers)
	if err != nil {
		return err
	}
	var provs []filehub.Provider
	for _, pc := range provCfgs {
		pc.Registerer = m.Registry
		c, err := openai.New(pc)
		if err != nil {
			return err
		}
		m.providers = append(m.providers, c)
		cleanupProvs = append(cleanupProvs, cleanup.Provider{Provider: c, FileQuota: pc.FileQuota})
		provs = append(provs, c)
	}
	pusher, err := providers.New(db, blobs, provs, providers.Config{
		Logger:     log.With("component", "providers"),
		Registerer: m.Registry,
	})
	if err != nil {
		return err
	}
	pusherForMetrics = pusher
	if len(provs) > 0 {
		log.Info("model providers", "providers", describeProviders(provCfgs))
	}

	api := httpapi.New(svc, db, httpapi.Config{
		Logger:               log.With("component", "http"),
		Registerer:           m.Registry,
		Gatherer:             m.Registry,
		RateLimit:            cfg.RateLimit,
		RateBurst:            cfg.RateBurst,
		MaxConcurrentUploads: cfg.MaxConcurrentUploads,
		UploadStallTimeout:   cfg.UploadStallTimeout,
		// With a separate metrics listener, /metrics is not offered on
		// the public one at all.
		DisableMetricsRoute: cfg.MetricsListen != "",
		Cleanup:             cleaner,
		Providers:           pusher,
	})

	ws = wsserver.New(svc, db, wsserver.Config{
		Logger:          log.With("component", "ws"),
		Registerer:      m.Registry,
		SessionTTL:      cfg.WSSessionTTL,
		PingInterval:    cfg.WSPingInterval,
		PongTimeout:     cfg.WSPongTimeout,
		MaxConnsPerKey:  cfg.WSMaxConnsPerKey,
		MaxMessageBytes: cfg.WSMaxMessageSize,
		EventRetention:  cfg.EventRetention,
		EventMaxCount:   cfg.EventMaxCount,
		Cleanup:         wsCleanup{cleaner},
		Providers:       wsPusher{pusher},
	})
	m.ws = ws
	// The WebSocket endpoint authenticates by itself (a browser can only
	// send its key in the hello frame), so it sits beside the API handler
	// rather than behind its auth.
	if err := mountTus(api, svc, db, blobs, cfg, log, m.Registry); err != nil {
		return err
	}
	apiSrv := api.NewServer(cfg.Listen)
	root := http.NewServeMux()
	root.Handle("GET /v1/ws", ws)
	root.Handle("/", api)
	apiSrv.Handler = root

	// Bind every listener before serving any, so that a taken port fails
	// Run instead of leaving a half-started server.
	type listener struct {
		name string
		srv  *http.Server
		ln   net.Listener
	}
	var lns []listener
	bind := func(name, addr string, srv *http.Server) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.ln.Close()
			}
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		lns = append(lns, listener{name, srv, ln})
		return nil
	}
	if err := bind("api", cfg.Listen, apiSrv); err != nil {
		return err
	}
	if cfg.MetricsListen != "" {
		msrv := &http.Server{
			Addr:              cfg.MetricsListen,
			Handler:           api.MetricsHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		if err := bind("metrics", cfg.MetricsListen, msrv); err != nil {
			return err
		}
	}

	// Only now, with every setting checked and every port bound, may the
	// data dir get its first key: a start that fails must not have
	// printed a secret that a later start would not show again.
	if err := bootstrapKey(ctx, db, m.Getenv("FILEHUB_BOOTSTRAP_KEY"), m.Stdout, log); err != nil {
		for _, l := range lns {
			l.ln.Close()
		}
		return err
	}

	group, gctx := errgroup.WithContext(context.WithoutCancel(ctx))
	m.group, m.done = group, gctx.Done()
	wsCtx, wsStop := context.WithCancel(gctx)
	m.wsStop = wsStop
	group.Go(func() error { return ws.Run(wsCtx) })
	if cfg.CleanupInterval > 0 {
		cleanupCtx, cleanupStop := context.WithCancel(gctx)
		m.cleanupStop = cleanupStop
		group.Go(func() error { return cleaner.Loop(cleanupCtx) })
	}
	for _, l := range lns {
		m.servers = append(m.servers, l.srv)
		m.addrs = append(m.addrs, l.ln.Addr().String())
		log.Info("listening", "addr", l.ln.Addr().String(), "listener", l.name)
		group.Go(func() error {
			if err := l.srv.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve %s: %w", l.name, err)
			}
			return nil
		})
	}
	return nil
}

// Addr returns the address the HTTP API listens on, with the actual port
// when --listen asked for port 0. It is "" before Run.
func (m *Main) Addr() string {
	if len(m.addrs) == 0 {
		return ""
	}
	return m.addrs[0]
}

// MetricsAddr returns the address of the metrics listener, or "" if there is
// none.
func (m *Main) MetricsAddr() string {
	if len(m.addrs) < 2 {
		return ""
	}
	return m.addrs[1]
}

// Done is closed when a listener fails (Close then returns the error).
func (m *Main) Done() <-chan struct{} {
	if m.done == nil {
		return nil
	}
	return m.done
}

// Close shuts the server down gracefully: the listeners stop accepting,
// in-flight requests get up to Config.ShutdownTimeout to finish (then their
// connections are cut), and the stores are closed last, once no request can
// use them.
func (m *Main) Close() error {
	var errs []error
	if len(m.servers) > 0 {
		timeout := m.Config.ShutdownTimeout
		if timeout <= 0 {
			timeout = DefaultServeConfig().ShutdownTimeout
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		var wg sync.WaitGroup
		// http.Server.Shutdown does not track hijacked connections: the
		// WebSocket server tells its clients to reconnect (close code
		// 4005) and waits for its connections itself, in parallel.
		if m.ws != nil {
			wg.Go(func() {
				if err := m.ws.Shutdown(ctx); err != nil {
					m.Logger.Warn("WebSocket shutdown", "err", err)
				}
			})
		}
		for _, srv := range m.servers {
			wg.Go(func() {
				if err := srv.Shutdown(ctx); err != nil {
					// Out of time: cut the remaining connections.
					m.Logger.Warn("shutdown timeout, closing connections", "addr", srv.Addr, "err", err)
					srv.Close()
				}
			})
		}
		wg.Wait()
		cancel()
		m.servers = nil
	}
	if m.wsStop != nil {
		m.wsStop()
		m.wsStop = nil
	}
	// A scheduled run in progress stops at its next phase; whatever it
	// had left is found again by the next run.
	if m.cleanupStop != nil {
		m.cleanupStop()
		m.cleanupStop = nil
	}
	if m.group != nil {
		if err := m.group.Wait(); err != nil {
			errs = append(errs, err)
		}
		m.group = nil
	}
	if m.db != nil {
		if err := m.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close database: %w", err))
		}
		m.db = nil
	}
	if m.blobs != nil {
		if err := closeBlobs(m.blobs); err != nil {
			errs = append(errs, fmt.Errorf("close blob store: %w", err))
		}
		m.blobs = nil
	}
	m.cleanup = nil
	for _, c := range m.providers {
		c.Close()
	}
	m.providers = nil
	if m.lock != nil {
		m.lock.Close() // releases the lock
		m.lock = nil
	}
	if m.Logger != nil {
		m.Logger.Info("stopped")
	}
	return errors.Join(errs...)
}

// bootstrapName is the name of the admin key serve creates on a new data dir.
const bootstrapName = "bootstrap"

// minBootstrapKeyLen is the shortest FILEHUB_BOOTSTRAP_KEY accepted: an
// admin key must not be guessable.
const minBootstrapKeyLen = 16

// bootstrapKey makes sure the server can be used: if no API key exists, it
// stores secret (when not empty) or a new random secret as an admin key,
// and prints a generated secret once to w. Later starts find the key and do
// nothing.
func bootstrapKey(ctx context.Context, meta filehub.MetaStore, secret string, w io.Writer, log *slog.Logger) error {
	keys, err := meta.ListAPIKeys(ctx)
	if err != nil {
		return fmt.Errorf("list API keys: %w", err)
	}
	if len(keys) > 0 {
		if secret != "" {
			log.Debug("FILEHUB_BOOTSTRAP_KEY ignored: API keys exist")
		}
		return nil
	}
	generated := secret == ""
	if generated {
		secret = filehub.NewAPIKeySecret()
	} else if len(strings.TrimSpace(secret)) < minBootstrapKeyLen {
		return fmt.Errorf("FILEHUB_BOOTSTRAP_KEY is too short: use at least %d random characters", minBootstrapKeyLen)
	}
	k := &filehub.APIKey{
		ID:        filehub.NewID("k_"),
		Name:      bootstrapName,
		Scopes:    []filehub.Scope{filehub.ScopeAdmin},
		CreatedAt: time.Now().UTC(),
		Hash:      filehub.HashAPIKey(secret),
	}
	if err := meta.CreateAPIKey(ctx, k); err != nil {
		// Several servers starting at once on a shared database with the
		// same FILEHUB_BOOTSTRAP_KEY race to create it: the loser finds
		// the winner's key, which is the one it wanted.
		if !generated && filehub.ErrorCode(err) == filehub.ECONFLICT {
			if _, ferr := meta.FindAPIKeyByHash(ctx, k.Hash); ferr == nil {
				log.Info("admin API key from FILEHUB_BOOTSTRAP_KEY created by another server")
				return nil
			}
		}
		return fmt.Errorf("create bootstrap key: %w", err)
	}
	log.Info("created admin API key", "id", k.ID, "name", k.Name, "from_env", !generated)
	if generated {
		fmt.Fprintf(w, "Created admin API key %q. It is shown only this once; store it now:\n\n    %s\n\n", bootstrapName, secret)
	}
	return nil
}

// checkCleanupFlags refuses cleanup settings that make no sense, rather than
// silently replacing them with defaults.
func checkCleanupFlags(cfg ServeConfig) error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--blob-grace", cfg.BlobGrace}, {"--upload-expiry", cfg.UploadExpiry}} {
		if d.v <= 0 {
			return usageErrorf("%s must be a positive duration, not %s", d.name, d.v)
		}
	}
	if cfg.CleanupInterval < 0 {
		return usageErrorf("--cleanup-interval must not be negative (0 disables scheduled runs)")
	}
	if !(cfg.MaxDeleteFraction > 0) {
		return usageErrorf("--max-delete-fraction must be a positive number such as 0.1, not %g", cfg.MaxDeleteFraction)
	}
	return nil
}

// instanceID names this process as the holder of the cleanup lease, so an
// operator can tell which server a "cleanup is already running" refers to.
func instanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s:%d", host, os.Getpid())
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
