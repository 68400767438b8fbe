package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/auth"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/mcpserver"
	"github.com/filehub/filehub/s3"
	"github.com/filehub/filehub/server"
	"github.com/filehub/filehub/tus"
	"github.com/filehub/filehub/wsserver"
)

// ServeConfig holds the settings of "filehub serve". The zero value is not
// meant to be used: DefaultServeConfig returns the defaults the flags show.
type ServeConfig struct {
	DataDir string
	// DB is the metadata database: "" for SQLite under DataDir, or a
	// postgres:// URL. Blobs is the blob store: "" for the local disk
	// under DataDir, or an s3:// URL. See internal/stores.
	DB            string
	Blobs         string
	Listen        string
	MetricsListen string // "" serves /metrics on Listen, behind auth
	TLSCert       string // PEM files; both set: HTTPS on Listen
	TLSKey        string
	PprofListen   string // "" serves no profiles

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

	// Issue 15's bounds: sessions and unauthenticated upgrades per
	// WebSocket server, cached results in bytes, the S3 part buffer
	// budget, and the proxies whose forwarding headers are believed.
	WSMaxSessionsPerKey     int
	WSMaxPendingHellos      int
	WSAnonHelloTimeout      time.Duration
	WSResultCacheBytes      int64
	WSResultCacheTotalBytes int64
	S3BufferMemory          int64
	TrustedProxies          []string

	// WSSessions is "durable" (WebSocket sessions saved in the metadata
	// store, issue 16) or "memory".
	WSSessions string

	// The cleanup service's defaults; settings stored at run time
	// ("filehub cleanup config set") win over them.
	BlobGrace         time.Duration
	UploadExpiry      time.Duration
	MaxDeleteFraction float64
	CleanupInterval   time.Duration // 0 disables the scheduler

	// HeartbeatInterval is how often the instance tells the metadata
	// store it is alive, so that instances share the per-key rate limits
	// (issue 16); 0 disables the heartbeats.
	HeartbeatInterval time.Duration

	// The MCP endpoint /v1/mcp (see mcp.go).
	MCPMaxUpload   int64
	MCPMaxSessions int
	MCPIdleTimeout time.Duration
	MCPRateLimit   float64 // tool calls/s per key; 0 disables

	// Providers are the config file's provider settings (see
	// readProviderFile); FILEHUB_PROVIDER_* variables override them.
	Providers map[string]map[string]string

	// Resumable uploads (tus, at /v1/uploads/).
	TusExpiry      time.Duration
	MaxOpenUploads int // 0 disables the cap
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
		HeartbeatInterval:    server.DefaultHeartbeatInterval,
		MCPMaxUpload:         mcpserver.DefaultMaxUpload,
		MCPMaxSessions:       mcpserver.DefaultMaxSessions,
		MCPIdleTimeout:       mcpserver.DefaultSessionIdleTimeout,
		MCPRateLimit:         mcpserver.DefaultRateLimit,
		TusExpiry:            tus.DefaultExpiry,
		MaxOpenUploads:       tus.DefaultMaxOpenUploads,
		LogLevel:             "info",
		LogFormat:            "text",

		// Issue 15's bounds.
		WSMaxSessionsPerKey:     wsserver.DefaultMaxSessionsPerKey,
		WSMaxPendingHellos:      wsserver.DefaultMaxPendingHellos,
		WSAnonHelloTimeout:      wsserver.DefaultAnonHelloTimeout,
		WSResultCacheBytes:      wsserver.DefaultResultCacheBytes,
		WSResultCacheTotalBytes: wsserver.DefaultResultCacheTotal,
		S3BufferMemory:          s3.DefaultBufferMemory,
		WSSessions:              server.WSSessionsDurable,
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
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate chain: serve --listen over HTTPS (HTTP/2, wss://) with it and --tls-key; re-read when the files change")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key of --tls-cert")
	fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, "address serving /metrics and /readyz without auth; empty: off, /metrics is served on --listen to admin or metrics keys")
	fs.StringVar(&c.PprofListen, "pprof-listen", c.PprofListen, "address serving Go's profiles (/debug/pprof/) to metrics or admin keys; empty: off")
	fs.DurationVar(&c.TrashGrace, "trash-grace", c.TrashGrace, "how long a deleted file can be restored before it may be purged")
	fs.DurationVar(&c.BlobGrace, "blob-grace", c.BlobGrace, "cleanup: how long an unreferenced blob or an object without a record is kept before it is deleted")
	fs.DurationVar(&c.UploadExpiry, "upload-expiry", c.UploadExpiry, "cleanup: how long an abandoned upload's temp file may stay inactive before it is removed")
	fs.Float64Var(&c.MaxDeleteFraction, "max-delete-fraction", c.MaxDeleteFraction, "cleanup safety cap: a run that would delete more than this fraction of all blobs stops and asks for force")
	fs.DurationVar(&c.CleanupInterval, "cleanup-interval", c.CleanupInterval, "time between scheduled cleanup runs (with jitter); 0: no scheduled runs")
	fs.StringSliceVar(&c.AllowTypes, "allow-types", c.AllowTypes, "if set, only these MIME patterns may be stored (e.g. image/*,application/pdf)")
	fs.StringSliceVar(&c.DenyTypes, "deny-types", c.DenyTypes, "MIME patterns refused whatever the file name; wins over --allow-types; \"\" denies nothing")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "requests per second allowed per API key; 0: no limit")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "requests per API key allowed in a burst above --rate-limit")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", c.HeartbeatInterval, "how often this server records in the metadata store that it is alive; servers sharing a store each enforce 1/n of the per-key rate limits, n the servers heard from within 3 intervals; 0: no heartbeats, each server enforces the whole limit")
	fs.IntVar(&c.MaxConcurrentUploads, "max-concurrent-uploads", c.MaxConcurrentUploads, "uploads processed at once; more are refused with 503 and Retry-After")
	fs.DurationVar(&c.UploadStallTimeout, "upload-stall-timeout", c.UploadStallTimeout, "abort an upload whose body sends nothing for this long")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "on SIGTERM/SIGINT, how long in-flight requests may take to finish")
	fs.DurationVar(&c.WSSessionTTL, "ws-session-ttl", c.WSSessionTTL, "how long a WebSocket session survives a disconnect and can be resumed")
	fs.DurationVar(&c.WSPingInterval, "ws-ping-interval", c.WSPingInterval, "interval of WebSocket pings (announced to clients as the heartbeat)")
	fs.DurationVar(&c.WSPongTimeout, "ws-pong-timeout", c.WSPongTimeout, "a WebSocket connection silent for ping interval + this is closed as dead (its session is kept)")
	fs.IntVar(&c.WSMaxConnsPerKey, "ws-max-connections-per-key", c.WSMaxConnsPerKey, "WebSocket connections one API key may hold at once; more get 429")
	fs.IntVar(&c.WSMaxSessionsPerKey, "ws-max-sessions-per-key", c.WSMaxSessionsPerKey, "WebSocket sessions one API key may hold, connected or awaiting a resume (they live --ws-session-ttl after a disconnect); a new one beyond gets 429")
	fs.IntVar(&c.WSMaxPendingHellos, "ws-max-pending-hellos", c.WSMaxPendingHellos, "WebSocket connections without an Authorization header that may wait for their hello at once; more get 503")
	fs.DurationVar(&c.WSAnonHelloTimeout, "ws-anon-hello-timeout", c.WSAnonHelloTimeout, "how long a WebSocket connection without an Authorization header may take to send hello (those with one get 10s)")
	fs.StringVar(&c.WSSessions, "ws-sessions", c.WSSessions, "where WebSocket sessions live: durable (in the metadata store: they survive a crash or restart and resume on any instance) or memory (this process only)")
	fs.StringSliceVar(&c.TrustedProxies, "trusted-proxies", c.TrustedProxies, "CIDRs or addresses of reverse proxies whose X-Forwarded-For/Forwarded header names the client; failed authentications are limited per client address seen through them (default none: the peer address)")
	fs.DurationVar(&c.EventRetention, "event-retention", c.EventRetention, "events younger than this are kept in the event log (subscribers can replay them)")
	fs.IntVar(&c.EventMaxCount, "event-max-count", c.EventMaxCount, "the event log keeps at most this many events (the newest)")
	fs.IntVar(&c.MCPMaxSessions, "mcp-max-sessions", c.MCPMaxSessions, "MCP sessions open at once on /v1/mcp; more are refused with 503")
	fs.DurationVar(&c.MCPIdleTimeout, "mcp-session-idle-timeout", c.MCPIdleTimeout, "close an MCP session that sends nothing for this long")
	fs.Float64Var(&c.MCPRateLimit, "mcp-rate-limit", c.MCPRateLimit, "MCP tool calls per second allowed per API key; 0: no limit")
	fs.DurationVar(&c.TusExpiry, "tus-expiry", c.TusExpiry, "a resumable (tus) upload that receives nothing for this long expires (410, then removed)")
	fs.IntVar(&c.MaxOpenUploads, "max-open-uploads", c.MaxOpenUploads, "unfinished resumable uploads one API key may have; more get 429; 0: no cap")
	fs.StringSliceVar(&c.CORSOrigins, "cors-origins", c.CORSOrigins, "origins browsers may upload from with tus (e.g. https://app.example.com, or *); empty: none")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
}

func newServeCommand(env Env) *cobra.Command {
	cfg := DefaultServeConfig()
	maxUpload := byteSize(cfg.MaxUploadSize)
	minFree := byteSize(cfg.MinFreeSpace)
	wsMaxMsg := byteSize(cfg.WSMaxMessageSize)
	mcpMaxUpload := byteSize(cfg.MCPMaxUpload)
	resultBytes := byteSize(cfg.WSResultCacheBytes)
	resultTotal := byteSize(cfg.WSResultCacheTotalBytes)
	s3Mem := byteSize(cfg.S3BufferMemory)
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
			cfg.MCPMaxUpload = int64(mcpMaxUpload)
			cfg.WSResultCacheBytes = int64(resultBytes)
			cfg.WSResultCacheTotalBytes = int64(resultTotal)
			cfg.S3BufferMemory = int64(s3Mem)
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
	fs.Var(&mcpMaxUpload, "mcp-max-upload", "largest content one MCP upload_file call may carry (e.g. 16MiB)")
	fs.Var(&resultBytes, "ws-result-cache-size", "bytes of request results one WebSocket session keeps for re-sent requests (oldest dropped first; a re-sent request whose result was dropped gets a conflict error, it never runs twice)")
	fs.Var(&resultTotal, "ws-result-cache-total", "bytes of request results kept over all WebSocket sessions (oldest dropped first)")
	fs.Var(&s3Mem, "s3-buffer-memory", "memory for the part buffers of all uploads to an S3 bucket; uploads wait for it instead of allocating more (at least the 8MiB part size)")
	fs.SortFlags = true
	configurable(fs,
		"data-dir", "db", "blobs", "listen", "metrics-listen", "pprof-listen", "max-upload-size", "min-free-space", "trash-grace",
		"allow-types", "deny-types", "rate-limit", "rate-burst", "max-concurrent-uploads",
		"upload-stall-timeout", "shutdown-timeout", "log-level", "log-format",
		"ws-session-ttl", "ws-ping-interval", "ws-pong-timeout", "ws-max-connections-per-key",
		"ws-max-message-size", "event-retention", "event-max-count",
		"blob-grace", "upload-expiry", "max-delete-fraction", "cleanup-interval",
		"mcp-max-upload", "mcp-max-sessions", "mcp-session-idle-timeout", "mcp-rate-limit",
		"tus-expiry", "max-open-uploads", "cors-origins",
		"ws-max-sessions-per-key", "ws-max-pending-hellos", "ws-anon-hello-timeout",
		"ws-result-cache-size", "ws-result-cache-total", "s3-buffer-memory", "trusted-proxies", "ws-sessions",
		"tls-cert", "tls-key", "heartbeat-interval")
	return cmd
}

// runServe runs the server until a signal or ctx ends it.
func runServe(ctx context.Context, cfg ServeConfig, env Env) error {
	logger, err := newLogger(env.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return usageErrorf("%v", err)
	}
	scfg, err := cfg.ServerConfig(os.Environ())
	if err != nil {
		return err
	}
	scfg.Logger = logger
	scfg.BootstrapKey = env.Getenv("FILEHUB_BOOTSTRAP_KEY")

	// The first signal starts a graceful shutdown, a second one ends the
	// process at once: an operator pressing Ctrl-C twice means it.
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)

	srv, err := server.New(ctx, scfg)
	if err != nil {
		return err
	}
	if secret := srv.BootstrapKey(); secret != "" {
		fmt.Fprintf(env.Stdout, "Created admin API key %q. It is shown only this once; store it now:\n\n    %s\n\n", server.BootstrapName, secret)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case sig := <-sigc:
			logger.Info("shutting down", "signal", sig.String(), "timeout", scfg.ShutdownTimeout)
		case <-ctx.Done():
			logger.Info("shutting down", "reason", context.Cause(ctx))
		case <-stopped:
			return // a listener failed; Run reports why
		}
		stop()
		select {
		case sig := <-sigc:
			logger.Warn("second signal, exiting now", "signal", sig.String())
			os.Exit(ExitFailure)
		case <-stopped:
		}
	}()
	return srv.Run(runCtx)
}

// ServerConfig turns the command line's settings into the daemon's: it
// refuses settings that make no sense (usage errors), reads the model
// providers from environ (KEY=VALUE, as os.Environ) over the config file's
// [providers.*] tables, and translates the flags' "0 switches it off" into
// server.Config's negative values. Logger and BootstrapKey are left for
// the caller.
func (c ServeConfig) ServerConfig(environ []string) (server.Config, error) {
	if err := checkCleanupFlags(c); err != nil {
		return server.Config{}, err
	}
	if err := checkStores(storeTarget{DataDir: c.DataDir, DB: c.DB, Blobs: c.Blobs}); err != nil {
		return server.Config{}, err
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return server.Config{}, usageErrorf("--tls-cert and --tls-key go together")
	}
	provs, err := parseProviders(environ, c.Providers)
	if err != nil {
		return server.Config{}, err
	}
	proxies, err := auth.ParseTrustedProxies(c.TrustedProxies)
	if err != nil {
		return server.Config{}, usageErrorf("--trusted-proxies: %s", filehub.ErrorMessage(err))
	}
	if err := checkBoundFlags(c); err != nil {
		return server.Config{}, err
	}
	if c.WSSessions != server.WSSessionsDurable && c.WSSessions != server.WSSessionsMemory {
		return server.Config{}, usageErrorf("--ws-sessions must be %s or %s, not %q", server.WSSessionsDurable, server.WSSessionsMemory, c.WSSessions)
	}
	if c.HeartbeatInterval < 0 {
		return server.Config{}, usageErrorf("--heartbeat-interval must not be negative (0 disables the heartbeats)")
	}
	sc := server.Config{
		DataDir:              c.DataDir,
		DB:                   c.DB,
		Blobs:                c.Blobs,
		Listen:               c.Listen,
		MetricsListen:        c.MetricsListen,
		TLSCertFile:          c.TLSCert,
		TLSKeyFile:           c.TLSKey,
		PprofListen:          c.PprofListen,
		MaxUploadSize:        c.MaxUploadSize,
		MinFreeSpace:         c.MinFreeSpace,
		TrashGrace:           c.TrashGrace,
		AllowTypes:           c.AllowTypes,
		DenyTypes:            c.DenyTypes,
		RateLimit:            c.RateLimit,
		RateBurst:            c.RateBurst,
		MaxConcurrentUploads: c.MaxConcurrentUploads,
		UploadStallTimeout:   c.UploadStallTimeout,
		ShutdownTimeout:      max(c.ShutdownTimeout, 0),
		WSSessionTTL:         c.WSSessionTTL,
		WSPingInterval:       c.WSPingInterval,
		WSPongTimeout:        c.WSPongTimeout,
		WSMaxConnsPerKey:     c.WSMaxConnsPerKey,
		WSMaxMessageSize:     c.WSMaxMessageSize,
		EventRetention:       c.EventRetention,
		EventMaxCount:        c.EventMaxCount,
		BlobGrace:            c.BlobGrace,
		UploadExpiry:         c.UploadExpiry,
		MaxDeleteFraction:    c.MaxDeleteFraction,
		CleanupInterval:      c.CleanupInterval,
		HeartbeatInterval:    c.HeartbeatInterval,
		Providers:            provs,
		MCPMaxUpload:         c.MCPMaxUpload,
		MCPMaxSessions:       c.MCPMaxSessions,
		MCPIdleTimeout:       c.MCPIdleTimeout,
		MCPRateLimit:         c.MCPRateLimit,
		Version:              buildVersion(),
		TusExpiry:            c.TusExpiry,
		MaxOpenUploads:       c.MaxOpenUploads,
		CORSOrigins:          c.CORSOrigins,

		// Issue 15's bounds.
		WSMaxSessionsPerKey:     c.WSMaxSessionsPerKey,
		WSMaxPendingHellos:      c.WSMaxPendingHellos,
		WSAnonHelloTimeout:      c.WSAnonHelloTimeout,
		WSResultCacheBytes:      c.WSResultCacheBytes,
		WSResultCacheTotalBytes: c.WSResultCacheTotalBytes,
		S3BufferMemory:          c.S3BufferMemory,
		TrustedProxies:          proxies,
		WSSessions:              c.WSSessions,
	}
	// On the command line 0 switches these off; in server.Config it means
	// the default.
	if c.MinFreeSpace == 0 {
		sc.MinFreeSpace = -1
	}
	if c.RateLimit == 0 {
		sc.RateLimit = -1
	}
	if c.MCPRateLimit == 0 {
		sc.MCPRateLimit = -1
	}
	if c.CleanupInterval == 0 {
		sc.CleanupInterval = -1
	}
	if c.MaxOpenUploads == 0 {
		sc.MaxOpenUploads = -1
	}
	if c.HeartbeatInterval == 0 {
		sc.HeartbeatInterval = -1
	}
	if sc.DenyTypes == nil {
		sc.DenyTypes = []string{} // nil would mean files' defaults; the user asked for none
	}
	return sc, nil
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

// checkBoundFlags refuses bounds of issue 15 that would switch a bound off
// or make no sense: they must be positive.
func checkBoundFlags(c ServeConfig) error {
	for _, b := range []struct {
		name string
		v    int64
	}{
		{"--ws-max-sessions-per-key", int64(c.WSMaxSessionsPerKey)},
		{"--ws-max-pending-hellos", int64(c.WSMaxPendingHellos)},
		{"--ws-anon-hello-timeout", int64(c.WSAnonHelloTimeout)},
		{"--ws-result-cache-size", c.WSResultCacheBytes},
		{"--ws-result-cache-total", c.WSResultCacheTotalBytes},
		{"--s3-buffer-memory", c.S3BufferMemory},
	} {
		if b.v <= 0 {
			return usageErrorf("%s must be positive", b.name)
		}
	}
	if c.Blobs != "" && c.S3BufferMemory < s3.DefaultPartSize {
		return usageErrorf("--s3-buffer-memory must be at least the part size (%d bytes)", int64(s3.DefaultPartSize))
	}
	return nil
}

// instanceID names this process as the holder of the cleanup lease, so an
// operator can tell which process a "cleanup is already running" refers to.
func instanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}
