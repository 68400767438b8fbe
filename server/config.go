package server

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/mcpserver"
	"github.com/filehub/filehub/openai"
	"github.com/filehub/filehub/s3"
	"github.com/filehub/filehub/tus"
	"github.com/filehub/filehub/wsserver"
)

// Config holds the daemon's settings. The zero value is a working server
// with the defaults each field names; a negative value switches off what a
// field bounds where the field says so. Config never reads flags, the
// environment or files: cmd/filehub owns their precedence (flag > env >
// file) and fills a Config.
type Config struct {
	// DataDir holds the SQLite database (filehub.db), blobs/ and tmp/
	// unless DB and Blobs name shared stores. Default "./filehub-data".
	DataDir string
	// DB is the metadata database: "" for SQLite under DataDir, or a
	// postgres:// URL. Default "".
	DB string
	// Blobs is the blob store: "" for the local disk under DataDir, or an
	// s3:// URL (credentials from the AWS environment). Default "".
	Blobs string

	// Listen is the address of the HTTP API and the WebSocket endpoint.
	// Default "127.0.0.1:8080"; port 0 picks a free port (see Addr).
	Listen string
	// MetricsListen, if set, serves /metrics and /readyz without auth on
	// a second listener, and /metrics is then not offered on Listen.
	// Default "": /metrics is served on Listen to admin or metrics keys.
	MetricsListen string
	// TLSCertFile and TLSKeyFile, both set, serve Listen over TLS (HTTPS,
	// HTTP/2 and wss://) with this PEM certificate chain and key, re-read
	// whenever either file changes. Default "": plain HTTP (behind a
	// TLS-terminating proxy).
	TLSCertFile string
	TLSKeyFile  string
	// PprofListen, if set, serves Go's profiles (/debug/pprof/…) on a
	// listener of its own to API keys with the metrics or admin scope.
	// Default "": off.
	PprofListen string

	// MaxUploadSize is the largest file accepted, in bytes. Default
	// files.DefaultMaxUploadSize.
	MaxUploadSize int64
	// MinFreeSpace refuses uploads when the blob store's free space is
	// below it. Default files.DefaultMinFreeSpace; negative: no floor.
	MinFreeSpace int64
	// TrashGrace is how long a deleted file can be restored. Default
	// files.DefaultTrashGrace.
	TrashGrace time.Duration
	// AllowTypes, if set, are the only MIME patterns stored. Default: all.
	AllowTypes []string
	// DenyTypes are MIME patterns refused; they win over AllowTypes.
	// Default (nil) files.DefaultDenyTypes; an empty non-nil slice denies
	// nothing.
	DenyTypes []string

	// RateLimit is the requests per second allowed per API key. Default
	// 100; negative: no limit.
	RateLimit float64
	// RateBurst is the requests per key allowed in a burst above
	// RateLimit. Default 2 × RateLimit (at least 1), as in httpapi.
	RateBurst int
	// MaxConcurrentUploads caps the uploads processed at once. Default 256.
	MaxConcurrentUploads int
	// UploadStallTimeout aborts an upload whose body sends nothing for
	// this long. Default 60s.
	UploadStallTimeout time.Duration
	// ShutdownTimeout is how long in-flight requests may take to finish
	// once Run's context ends or Close is called. Default 30s.
	ShutdownTimeout time.Duration

	// The WebSocket session server's settings. Defaults: those of
	// wsserver.Config (DefaultSessionTTL, DefaultPingInterval, …).
	WSSessionTTL     time.Duration
	WSPingInterval   time.Duration
	WSPongTimeout    time.Duration
	WSMaxConnsPerKey int
	WSMaxMessageSize int64
	// WSEventPollInterval is how often the event hub looks for events
	// written by other processes; this process's own wake it at once, and
	// so do other processes' on PostgreSQL (filehub.EventWaker), where the
	// poll is only the safety net. Default: wsserver's (250ms).
	WSEventPollInterval time.Duration
	// EventRetention and EventMaxCount bound the event log. Defaults
	// wsserver.DefaultEventRetention and DefaultEventMaxCount.
	EventRetention time.Duration
	EventMaxCount  int
	// WSMaxSessionsPerKey bounds the WebSocket sessions of one key,
	// connected or awaiting a resume (429 beyond). Default
	// wsserver.DefaultMaxSessionsPerKey (256).
	WSMaxSessionsPerKey int
	// WSResultCacheBytes and WSResultCacheTotalBytes bound the request
	// results kept for re-sent WebSocket requests, per session and over
	// all sessions. Defaults wsserver.DefaultResultCacheBytes (4 MiB) and
	// DefaultResultCacheTotal (256 MiB).
	WSResultCacheBytes      int64
	WSResultCacheTotalBytes int64
	// WSMaxPendingHellos bounds the WebSocket connections upgraded
	// without a key that have not sent hello (503 beyond), and
	// WSAnonHelloTimeout is their hello timeout. Defaults
	// wsserver.DefaultMaxPendingHellos (256) and DefaultAnonHelloTimeout
	// (3s).
	WSMaxPendingHellos int
	WSAnonHelloTimeout time.Duration
	// WSSessions is where WebSocket sessions live: WSSessionsDurable saves
	// them in the metadata store when it is a filehub.WSSessionStore (so
	// they survive a crash, a restart, and resume on any instance; a store
	// without that capability falls back to memory, with a warning), and
	// WSSessionsMemory keeps them in this process. Default durable.
	WSSessions string

	// TrustedProxies are the reverse proxies whose Forwarded or
	// X-Forwarded-For header names the client that failed
	// authentications are charged to. Default none: the peer address.
	TrustedProxies []netip.Prefix
	// AuthFailureLimit is the sustained rate of failed authentications
	// per second accepted from one client, after a burst of twice as many
	// (auth.Config.FailureLimit). Default auth.DefaultFailureLimit (10);
	// negative: no limit.
	AuthFailureLimit float64

	// S3BufferMemory is the budget of part buffers of all uploads to an
	// S3 bucket (s3.Config.BufferMemory). Default s3.DefaultBufferMemory
	// (256 MiB); negative: no budget.
	S3BufferMemory int64

	// The cleanup service's defaults; settings stored at run time
	// ("filehub cleanup config set") win over them. Defaults: those of
	// package cleanup.
	BlobGrace         time.Duration
	UploadExpiry      time.Duration
	MaxDeleteFraction float64
	// CleanupInterval is the time between scheduled cleanup runs.
	// Default cleanup.DefaultInterval; negative: no scheduled runs (the
	// interval setting then keeps its default).
	CleanupInterval time.Duration
	// InstanceID names this process as the holder of the cleanup lease
	// and, with a random suffix, in the heartbeats. Default
	// "<hostname>:<pid>".
	InstanceID string
	// HeartbeatInterval is how often this instance records in the
	// metadata store that it is alive. Each instance counts those heard
	// from within 3 intervals, n, and enforces 1/n of the per-key rate
	// limits (RateLimit, RateBurst, MCPRateLimit), so that they hold for
	// the cluster (docs/decisions.md). Default DefaultHeartbeatInterval
	// (5s); negative: no heartbeats, each instance enforces the whole
	// limit by itself.
	HeartbeatInterval time.Duration

	// The MCP endpoint /v1/mcp: the most content one upload_file call
	// carries, the sessions open at once, how long an idle session lives
	// and the tool calls per second per API key. Defaults: mcpserver's
	// (16 MiB, 100, 30 minutes, 20); MCPRateLimit negative: no limit.
	MCPMaxUpload   int64
	MCPMaxSessions int
	MCPIdleTimeout time.Duration
	MCPRateLimit   float64
	// Version is the version MCP clients are told. Default "dev".
	Version string

	// Providers are the model providers pushes and the cleanup reach.
	// Default: none.
	Providers []openai.Config

	// Resumable uploads (tus, /v1/uploads/). TusExpiry is how long an
	// unfinished upload may receive nothing before it expires (default
	// tus.DefaultExpiry); MaxOpenUploads caps one key's unfinished uploads
	// (default tus.DefaultMaxOpenUploads; negative: no cap); CORSOrigins
	// are the origins browsers may upload from ("*": any; default none).
	TusExpiry      time.Duration
	MaxOpenUploads int
	CORSOrigins    []string

	// BootstrapKey is the secret of the admin key created when the
	// metadata store has no API key yet. Default "": a new secret, which
	// BootstrapKey returns once New has stored it.
	BootstrapKey string

	// Logger receives the daemon's logs. Default: discard.
	Logger *slog.Logger
	// Registerer receives every collector and Gatherer serves /metrics.
	// Default: a new registry with the Go and process collectors, used
	// as both. Set both or neither.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
}

// Defaults of the settings whose default is not another package's.
const (
	DefaultDataDir              = "./filehub-data"
	DefaultListen               = "127.0.0.1:8080"
	DefaultRateLimit            = 100
	DefaultMaxConcurrentUploads = 256
	DefaultUploadStallTimeout   = 60 * time.Second
	DefaultShutdownTimeout      = 30 * time.Second
	DefaultHeartbeatInterval    = 5 * time.Second
)

// withDefaults returns c with every zero field set to its default. The
// packages it configures read their own zero values as defaults too; the
// defaults are spelled out here so that a Config says what runs, and
// where this package's meaning of zero differs from theirs (RateLimit,
// MinFreeSpace, CleanupInterval) it is translated here, once.
func (c Config) withDefaults() Config {
	setDefault(&c.DataDir, DefaultDataDir)
	setDefault(&c.Listen, DefaultListen)
	setDefault(&c.MaxUploadSize, files.DefaultMaxUploadSize)
	setDefault(&c.MinFreeSpace, files.DefaultMinFreeSpace)
	setDefault(&c.TrashGrace, files.DefaultTrashGrace)
	setDefault(&c.RateLimit, DefaultRateLimit)
	setDefault(&c.MaxConcurrentUploads, DefaultMaxConcurrentUploads)
	setDefault(&c.UploadStallTimeout, DefaultUploadStallTimeout)
	setDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&c.WSSessionTTL, wsserver.DefaultSessionTTL)
	setDefault(&c.WSPingInterval, wsserver.DefaultPingInterval)
	setDefault(&c.WSPongTimeout, wsserver.DefaultPongTimeout)
	setDefault(&c.WSMaxConnsPerKey, wsserver.DefaultMaxConnsPerKey)
	setDefault(&c.WSMaxMessageSize, wsserver.DefaultMaxMessageBytes)
	setDefault(&c.EventRetention, wsserver.DefaultEventRetention)
	setDefault(&c.EventMaxCount, wsserver.DefaultEventMaxCount)
	setDefault(&c.WSMaxSessionsPerKey, wsserver.DefaultMaxSessionsPerKey)
	setDefault(&c.WSResultCacheBytes, wsserver.DefaultResultCacheBytes)
	setDefault(&c.WSResultCacheTotalBytes, wsserver.DefaultResultCacheTotal)
	setDefault(&c.WSMaxPendingHellos, wsserver.DefaultMaxPendingHellos)
	setDefault(&c.WSAnonHelloTimeout, wsserver.DefaultAnonHelloTimeout)
	setDefault(&c.WSSessions, WSSessionsDurable)
	setDefault(&c.S3BufferMemory, s3.DefaultBufferMemory)
	setDefault(&c.BlobGrace, cleanup.DefaultBlobGrace)
	setDefault(&c.TusExpiry, tus.DefaultExpiry)
	setDefault(&c.MaxOpenUploads, tus.DefaultMaxOpenUploads)
	setDefault(&c.UploadExpiry, cleanup.DefaultUploadExpiry)
	setDefault(&c.MaxDeleteFraction, cleanup.DefaultMaxDeleteFraction)
	setDefault(&c.CleanupInterval, cleanup.DefaultInterval)
	setDefault(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	setDefault(&c.MCPMaxUpload, mcpserver.DefaultMaxUpload)
	setDefault(&c.MCPMaxSessions, mcpserver.DefaultMaxSessions)
	setDefault(&c.MCPIdleTimeout, mcpserver.DefaultSessionIdleTimeout)
	setDefault(&c.MCPRateLimit, mcpserver.DefaultRateLimit)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Values of Config.WSSessions.
const (
	WSSessionsDurable = "durable"
	WSSessionsMemory  = "memory"
)
