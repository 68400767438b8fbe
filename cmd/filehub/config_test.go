package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseServe runs "filehub serve args…" up to the point where the server
// would start and returns the configuration it would start with.
func parseServe(t *testing.T, env map[string]string, args ...string) (ServeConfig, int, string) {
	t.Helper()
	var got ServeConfig
	var stderr bytes.Buffer
	code := Execute(context.Background(), append([]string{"serve"}, args...), Env{
		Stdout: &bytes.Buffer{},
		Stderr: &stderr,
		Getenv: func(k string) string { return env[k] },
		serve: func(_ context.Context, cfg ServeConfig, _ Env) error {
			got = cfg
			return nil
		},
	})
	return got, code, stderr.String()
}

// writeFile writes a temporary file and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "filehub.toml", `
listen = "127.0.0.1:3000"
max-upload-size = "1GiB"
trash-grace = "1h"
allow-types = ["image/*", "application/pdf"]
rate-limit = 5
blob-grace = "72h"
`)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // --listen
	}{
		{"default", nil, nil, "127.0.0.1:8080"},
		{"file beats default", nil, []string{"--config", file}, "127.0.0.1:3000"},
		{"file from FILEHUB_CONFIG", map[string]string{"FILEHUB_CONFIG": file}, nil, "127.0.0.1:3000"},
		{"env beats file", map[string]string{"FILEHUB_LISTEN": "127.0.0.1:2000"}, []string{"--config", file}, "127.0.0.1:2000"},
		{"env beats default", map[string]string{"FILEHUB_LISTEN": "127.0.0.1:2000"}, nil, "127.0.0.1:2000"},
		{"flag beats env and file", map[string]string{"FILEHUB_LISTEN": "127.0.0.1:2000"}, []string{"--config", file, "--listen", "127.0.0.1:1000"}, "127.0.0.1:1000"},
		{"flag beats default", nil, []string{"--listen=127.0.0.1:1000"}, "127.0.0.1:1000"},
		{"empty env is unset", map[string]string{"FILEHUB_LISTEN": ""}, []string{"--config", file}, "127.0.0.1:3000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, code, stderr := parseServe(t, tt.env, tt.args...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if cfg.Listen != tt.want {
				t.Errorf("listen = %q, want %q", cfg.Listen, tt.want)
			}
		})
	}
}

func TestConfigFileTypes(t *testing.T) {
	file := writeFile(t, "filehub.toml", `
data-dir = "/srv/filehub"
max-upload-size = "1GiB"
min-free-space = 0
trash-grace = "1h"
allow-types = ["image/*", "application/pdf"]
deny-types = []
rate-limit = 2.5
rate-burst = 7
log-format = "json"
server = "http://ignored-by-serve"
`)
	cfg, code, stderr := parseServe(t, nil, "--config", file)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := DefaultServeConfig()
	want.DataDir = "/srv/filehub"
	want.MaxUploadSize = 1 << 30
	want.MinFreeSpace = 0
	want.TrashGrace = time.Hour
	want.AllowTypes = []string{"image/*", "application/pdf"}
	want.DenyTypes = []string{}
	want.RateLimit = 2.5
	want.RateBurst = 7
	want.LogFormat = "json"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config =\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestEnvEveryServeFlag(t *testing.T) {
	env := map[string]string{
		"FILEHUB_DATA_DIR":                   "/d",
		"FILEHUB_LISTEN":                     "127.0.0.1:1",
		"FILEHUB_METRICS_LISTEN":             "127.0.0.1:2",
		"FILEHUB_PPROF_LISTEN":               "127.0.0.1:3",
		"FILEHUB_MAX_UPLOAD_SIZE":            "10MB",
		"FILEHUB_MIN_FREE_SPACE":             "1GiB",
		"FILEHUB_TRASH_GRACE":                "2h",
		"FILEHUB_ALLOW_TYPES":                "text/*,image/png",
		"FILEHUB_DENY_TYPES":                 "application/zip",
		"FILEHUB_RATE_LIMIT":                 "0",
		"FILEHUB_RATE_BURST":                 "3",
		"FILEHUB_MAX_CONCURRENT_UPLOADS":     "4",
		"FILEHUB_UPLOAD_STALL_TIMEOUT":       "5s",
		"FILEHUB_SHUTDOWN_TIMEOUT":           "6s",
		"FILEHUB_LOG_LEVEL":                  "debug",
		"FILEHUB_LOG_FORMAT":                 "json",
		"FILEHUB_WS_SESSION_TTL":             "3m",
		"FILEHUB_WS_PING_INTERVAL":           "7s",
		"FILEHUB_WS_PONG_TIMEOUT":            "8s",
		"FILEHUB_WS_MAX_CONNECTIONS_PER_KEY": "9",
		"FILEHUB_WS_MAX_MESSAGE_SIZE":        "64KiB",
		"FILEHUB_EVENT_RETENTION":            "48h",
		"FILEHUB_EVENT_MAX_COUNT":            "1000",
		"FILEHUB_BLOB_GRACE":                 "10h",
		"FILEHUB_UPLOAD_EXPIRY":              "11h",
		"FILEHUB_MAX_DELETE_FRACTION":        "0.25",
		"FILEHUB_CLEANUP_INTERVAL":           "0",
		"FILEHUB_DB":                         "postgres://filehub@db:5432/filehub",
		"FILEHUB_BLOBS":                      "s3://bucket?region=eu-west-1",
		"FILEHUB_MCP_MAX_UPLOAD":             "1MiB",
		"FILEHUB_MCP_MAX_SESSIONS":           "12",
		"FILEHUB_MCP_SESSION_IDLE_TIMEOUT":   "13m",
		"FILEHUB_MCP_RATE_LIMIT":             "-1",
		"FILEHUB_TUS_EXPIRY":                 "12h",
		"FILEHUB_MAX_OPEN_UPLOADS":           "13",
		"FILEHUB_CORS_ORIGINS":               "https://a.example,https://b.example",
		"FILEHUB_WS_MAX_SESSIONS_PER_KEY":    "12",
		"FILEHUB_WS_MAX_PENDING_HELLOS":      "13",
		"FILEHUB_WS_ANON_HELLO_TIMEOUT":      "1s",
		"FILEHUB_WS_RESULT_CACHE_SIZE":       "1MiB",
		"FILEHUB_WS_RESULT_CACHE_TOTAL":      "16MiB",
		"FILEHUB_S3_BUFFER_MEMORY":           "128MiB",
		"FILEHUB_TRUSTED_PROXIES":            "10.0.0.0/8,::1",
		"FILEHUB_WS_SESSIONS":                "memory",
		"FILEHUB_HEARTBEAT_INTERVAL":         "2s",
	}
	cfg, code, stderr := parseServe(t, env)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := ServeConfig{
		DataDir: "/d", Listen: "127.0.0.1:1", MetricsListen: "127.0.0.1:2", PprofListen: "127.0.0.1:3",
		DB: "postgres://filehub@db:5432/filehub", Blobs: "s3://bucket?region=eu-west-1",
		MaxUploadSize: 10_000_000, MinFreeSpace: 1 << 30, TrashGrace: 2 * time.Hour,
		AllowTypes: []string{"text/*", "image/png"}, DenyTypes: []string{"application/zip"},
		RateLimit: 0, RateBurst: 3, MaxConcurrentUploads: 4,
		UploadStallTimeout: 5 * time.Second, ShutdownTimeout: 6 * time.Second,
		WSSessionTTL: 3 * time.Minute, WSPingInterval: 7 * time.Second, WSPongTimeout: 8 * time.Second,
		WSMaxConnsPerKey: 9, WSMaxMessageSize: 64 << 10, EventRetention: 48 * time.Hour, EventMaxCount: 1000,
		BlobGrace: 10 * time.Hour, UploadExpiry: 11 * time.Hour, MaxDeleteFraction: 0.25, CleanupInterval: 0, HeartbeatInterval: 2 * time.Second,
		MCPMaxUpload: 1 << 20, MCPMaxSessions: 12, MCPIdleTimeout: 13 * time.Minute, MCPRateLimit: -1,
		TusExpiry: 12 * time.Hour, MaxOpenUploads: 13, CORSOrigins: []string{"https://a.example", "https://b.example"},
		LogLevel: "debug", LogFormat: "json",
		WSMaxSessionsPerKey: 12, WSMaxPendingHellos: 13, WSAnonHelloTimeout: time.Second,
		WSResultCacheBytes: 1 << 20, WSResultCacheTotalBytes: 16 << 20, S3BufferMemory: 128 << 20,
		TrustedProxies: []string{"10.0.0.0/8", "::1"}, WSSessions: "memory",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config =\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		file    string // config file content; "" for none
		args    []string
		wantMsg string
	}{
		{"unknown key", nil, "listen = \"x\"\nlisen = \"y\"\n", nil, `unknown key "lisen"`},
		{"bad TOML", nil, "listen = \n", nil, "config file"},
		{"bad size in file", nil, "max-upload-size = \"lots\"\n", nil, `key "max-upload-size"`},
		{"bad duration in env", map[string]string{"FILEHUB_TRASH_GRACE": "forever"}, "", nil, "FILEHUB_TRASH_GRACE"},
		{"bad size flag", nil, "", []string{"--max-upload-size", "1XB"}, "invalid size"},
		{"missing file", map[string]string{"FILEHUB_CONFIG": "/nonexistent/filehub.toml"}, "", nil, "read config file"},
		{"unknown flag", nil, "", []string{"--nope"}, "unknown flag"},
		{"arguments", nil, "", []string{"extra"}, "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, "c.toml", tt.file))
			}
			_, code, stderr := parseServe(t, tt.env, args...)
			if code == ExitOK {
				t.Fatal("exit 0, want failure")
			}
			if !strings.Contains(stderr, tt.wantMsg) {
				t.Errorf("stderr %q does not mention %q", stderr, tt.wantMsg)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "filehub: ") {
				t.Errorf("stderr is not one \"filehub: …\" line: %q", stderr)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"512MiB", 512 << 20, true},
		{"1GiB", 1 << 30, true},
		{"10MB", 10_000_000, true},
		{"1 GiB", 1 << 30, true},
		{"4096", 4096, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"ten", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		var b byteSize
		err := b.Set(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("Set(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && int64(b) != tt.want {
			t.Errorf("Set(%q) = %d, want %d", tt.in, b, tt.want)
		}
	}
	// The default shown by --help must be accepted back.
	b := byteSize(512 << 20)
	var back byteSize
	if err := back.Set(b.String()); err != nil || back != b {
		t.Errorf("Set(%q) = %d, %v; want %d", b.String(), back, err, b)
	}
}

func TestServeHelpDocumentsDefaults(t *testing.T) {
	var stdout bytes.Buffer
	code := Execute(context.Background(), []string{"serve", "--help"}, Env{Stdout: &stdout, Stderr: &stdout})
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	help := stdout.String()
	for _, want := range []string{
		`--data-dir string`, `(default "./filehub-data")`, "FILEHUB_DATA_DIR",
		`(default "127.0.0.1:8080")`, "FILEHUB_LISTEN",
		"--metrics-listen", "FILEHUB_METRICS_LISTEN",
		"--pprof-listen", "FILEHUB_PPROF_LISTEN",
		"--max-upload-size size", "(default 512MiB)", "FILEHUB_MAX_UPLOAD_SIZE",
		"--min-free-space size", "FILEHUB_MIN_FREE_SPACE",
		"--trash-grace duration", "(default 168h0m0s)",
		"--allow-types", "--deny-types", "application/x-elf",
		"--rate-limit float", "(default 100)", "--rate-burst int", "(default 200)",
		"--max-concurrent-uploads int", "(default 256)",
		"--upload-stall-timeout duration", "(default 1m0s)",
		"--shutdown-timeout duration", "(default 30s)",
		"--blob-grace duration", "(default 24h0m0s)", "FILEHUB_BLOB_GRACE",
		"--upload-expiry duration", "FILEHUB_UPLOAD_EXPIRY",
		"--max-delete-fraction float", "(default 0.1)", "FILEHUB_MAX_DELETE_FRACTION",
		"--cleanup-interval duration", "(default 1h0m0s)", "FILEHUB_CLEANUP_INTERVAL",
		"--heartbeat-interval duration", "(default 5s)", "FILEHUB_HEARTBEAT_INTERVAL",
		`--log-level string`, `(default "info")`, `--log-format string`, `(default "text")`,
		"--config string",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		level, format string
		ok            bool
	}{
		{"info", "text", true},
		{"debug", "json", true},
		{"WARN", "JSON", true},
		{"error", "text", true},
		{"loud", "text", false},
		{"info", "xml", false},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		l, err := newLogger(&buf, tt.level, tt.format)
		if (err == nil) != tt.ok {
			t.Errorf("newLogger(%q, %q) error = %v, want ok=%v", tt.level, tt.format, err, tt.ok)
			continue
		}
		if !tt.ok {
			continue
		}
		l.Error("listening", "addr", "127.0.0.1:1")
		want := "msg=listening addr=127.0.0.1:1"
		if strings.EqualFold(tt.format, "json") {
			want = `"msg":"listening","addr":"127.0.0.1:1"`
		}
		if !strings.Contains(buf.String(), want) {
			t.Errorf("newLogger(%q, %q) wrote %q, want %q", tt.level, tt.format, buf.String(), want)
		}
	}
}

// TestCleanupFlagPrecedence: the cleanup defaults follow the same
// precedence as every other serve setting.
func TestCleanupFlagPrecedence(t *testing.T) {
	file := writeFile(t, "filehub.toml", "blob-grace = \"72h\"\nmax-delete-fraction = 0.5\ncleanup-interval = \"0s\"\n")
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		grace    time.Duration
		fraction float64
		interval time.Duration
	}{
		{"default", nil, nil, 24 * time.Hour, 0.1, time.Hour},
		{"file", nil, []string{"--config", file}, 72 * time.Hour, 0.5, 0},
		{"env beats file", map[string]string{"FILEHUB_BLOB_GRACE": "48h", "FILEHUB_CLEANUP_INTERVAL": "2h"}, []string{"--config", file}, 48 * time.Hour, 0.5, 2 * time.Hour},
		{"flag beats env", map[string]string{"FILEHUB_BLOB_GRACE": "48h"}, []string{"--config", file, "--blob-grace", "12h", "--max-delete-fraction", "0.2"}, 12 * time.Hour, 0.2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, code, stderr := parseServe(t, tt.env, tt.args...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if cfg.BlobGrace != tt.grace || cfg.MaxDeleteFraction != tt.fraction || cfg.CleanupInterval != tt.interval {
				t.Errorf("blob grace %v, fraction %g, interval %v; want %v, %g, %v",
					cfg.BlobGrace, cfg.MaxDeleteFraction, cfg.CleanupInterval, tt.grace, tt.fraction, tt.interval)
			}
		})
	}
}

func TestCheckCleanupFlags(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*ServeConfig)
		want string // "" for ok
	}{
		{"defaults", func(*ServeConfig) {}, ""},
		{"scheduler off", func(c *ServeConfig) { c.CleanupInterval = 0 }, ""},
		{"cap off", func(c *ServeConfig) { c.MaxDeleteFraction = 2 }, ""},
		{"zero blob grace", func(c *ServeConfig) { c.BlobGrace = 0 }, "--blob-grace"},
		{"negative upload expiry", func(c *ServeConfig) { c.UploadExpiry = -time.Second }, "--upload-expiry"},
		{"negative interval", func(c *ServeConfig) { c.CleanupInterval = -time.Second }, "--cleanup-interval"},
		{"zero fraction", func(c *ServeConfig) { c.MaxDeleteFraction = 0 }, "--max-delete-fraction"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultServeConfig()
			tt.mod(&cfg)
			err := checkCleanupFlags(cfg)
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("checkCleanupFlags = %v, want %q", err, tt.want)
			}
			if err != nil && !isUsageError(err) {
				t.Errorf("%v is not a usage error (exit 2)", err)
			}
		})
	}
}

func TestStoreFlagPrecedence(t *testing.T) {
	file := writeFile(t, "filehub.toml", `
db = "postgres://file@db/filehub"
blobs = "s3://file-bucket"
`)
	env := map[string]string{"FILEHUB_DB": "postgres://env@db/filehub"}
	cfg, code, stderr := parseServe(t, env, "--config", file, "--blobs", "s3://flag-bucket")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if cfg.DB != "postgres://env@db/filehub" || cfg.Blobs != "s3://flag-bucket" {
		t.Errorf("db %q, blobs %q: want the environment's db and the flag's blobs", cfg.DB, cfg.Blobs)
	}
	cfg, _, _ = parseServe(t, nil, "--config", file)
	if cfg.DB != "postgres://file@db/filehub" || cfg.Blobs != "s3://file-bucket" {
		t.Errorf("db %q, blobs %q: want the file's", cfg.DB, cfg.Blobs)
	}
}

func TestStoreTarget(t *testing.T) {
	tests := []struct {
		target  storeTarget
		wantErr string // "" for valid
		dataDir bool
	}{
		{storeTarget{DataDir: "d"}, "", true},
		{storeTarget{DataDir: "d", DB: "postgres://h/db"}, "", true},
		{storeTarget{DataDir: "d", DB: "postgresql://h/db", Blobs: "s3://b"}, "", false},
		{storeTarget{DB: "postgres://h/db", Blobs: "s3://b"}, "", false},
		{storeTarget{DB: "postgres://h/db"}, "--data-dir", true},
		{storeTarget{DataDir: "d", DB: "mysql://u:secret@h/db"}, "--db", true},
		{storeTarget{DataDir: "d", Blobs: "gs://bucket"}, "--blobs", true},
	}
	for _, tt := range tests {
		err := checkStores(tt.target)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%+v: %v", tt.target, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !isUsageError(err)):
			t.Errorf("%+v: %v, want a usage error about %s", tt.target, err, tt.wantErr)
		case err != nil && strings.Contains(err.Error(), "secret"):
			t.Errorf("%+v: the error shows the password: %v", tt.target, err)
		}
		if got := tt.target.UsesDataDir(); got != tt.dataDir {
			t.Errorf("%+v: usesDataDir %v, want %v", tt.target, got, tt.dataDir)
		}
	}
}

// TestServerConfig: the command line's "0 switches it off" becomes
// server.Config's negative value (its zero is the default), and the other
// settings pass through unchanged.
func TestServerConfig(t *testing.T) {
	def := DefaultServeConfig()
	sc, err := def.ServerConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Listen != def.Listen || sc.DataDir != def.DataDir || sc.RateLimit != def.RateLimit ||
		sc.MinFreeSpace != def.MinFreeSpace || sc.CleanupInterval != def.CleanupInterval ||
		sc.MCPMaxUpload != def.MCPMaxUpload || sc.MCPMaxSessions != def.MCPMaxSessions ||
		sc.MCPIdleTimeout != def.MCPIdleTimeout || sc.MCPRateLimit != def.MCPRateLimit ||
		sc.HeartbeatInterval != def.HeartbeatInterval || !reflect.DeepEqual(sc.DenyTypes, def.DenyTypes) {
		t.Errorf("defaults changed on the way: %+v", sc)
	}

	off := DefaultServeConfig()
	off.RateLimit, off.MinFreeSpace, off.CleanupInterval, off.DenyTypes = 0, 0, 0, nil
	off.MCPRateLimit, off.HeartbeatInterval = 0, 0
	sc, err = off.ServerConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.HeartbeatInterval >= 0 {
		t.Errorf("--heartbeat-interval 0 must switch the heartbeats off: %v", sc.HeartbeatInterval)
	}
	if sc.RateLimit >= 0 || sc.MinFreeSpace >= 0 || sc.CleanupInterval >= 0 || sc.MCPRateLimit >= 0 {
		t.Errorf("0 on the command line must switch off: rate %v, free %v, interval %v, MCP rate %v", sc.RateLimit, sc.MinFreeSpace, sc.CleanupInterval, sc.MCPRateLimit)
	}
	if sc.DenyTypes == nil || len(sc.DenyTypes) != 0 {
		t.Errorf("no deny types on the command line: DenyTypes %#v, want empty, not nil (the default)", sc.DenyTypes)
	}

	neg := DefaultServeConfig()
	neg.HeartbeatInterval = -time.Second
	if _, err := neg.ServerConfig(nil); !isUsageError(err) || !strings.Contains(err.Error(), "--heartbeat-interval") {
		t.Errorf("negative --heartbeat-interval: %v, want a usage error naming it", err)
	}

	bad := DefaultServeConfig()
	bad.DB = "mysql://h/db"
	if _, err := bad.ServerConfig(nil); !isUsageError(err) {
		t.Errorf("unknown --db kind: %v, want a usage error", err)
	}
	if _, err := def.ServerConfig([]string{"FILEHUB_PROVIDER_KIMI_BASE_URL=https://x/v1"}); !isUsageError(err) {
		t.Errorf("provider without key: %v, want a usage error", err)
	}
}

// TestEmptyEnvClearsList: FILEHUB_DENY_TYPES="" (set, empty) clears the
// deny list, down to the server's Config (an empty non-nil slice, not the
// nil that means the default); an empty scalar variable is still unset, and
// an unset list keeps its default. deny-types = [] in the file clears too.
func TestEmptyEnvClearsList(t *testing.T) {
	parse := func(env map[string]string, args ...string) ServeConfig {
		t.Helper()
		var got ServeConfig
		var stderr bytes.Buffer
		code := Execute(context.Background(), append([]string{"serve"}, args...), Env{
			Stdout:    &bytes.Buffer{},
			Stderr:    &stderr,
			Getenv:    func(k string) string { return env[k] },
			LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
			serve: func(_ context.Context, cfg ServeConfig, _ Env) error {
				got = cfg
				return nil
			},
		})
		if code != 0 {
			t.Fatalf("serve %v with %v: exit %d: %s", args, env, code, stderr.String())
		}
		return got
	}
	cfg := parse(map[string]string{"FILEHUB_DENY_TYPES": "", "FILEHUB_LISTEN": ""})
	if cfg.DenyTypes == nil || len(cfg.DenyTypes) != 0 {
		t.Errorf("FILEHUB_DENY_TYPES=\"\": deny types = %#v, want empty and non-nil", cfg.DenyTypes)
	}
	if sc, err := cfg.ServerConfig(nil); err != nil || sc.DenyTypes == nil || len(sc.DenyTypes) != 0 {
		t.Errorf("server config deny types = %#v, %v; want empty and non-nil (nil is the default list)", sc.DenyTypes, err)
	}
	if cfg.Listen == "" {
		t.Error("FILEHUB_LISTEN=\"\" cleared the listen address; an empty scalar must count as unset")
	}
	if cfg := parse(map[string]string{}); len(cfg.DenyTypes) == 0 {
		t.Error("unset FILEHUB_DENY_TYPES cleared the default deny list")
	}
	file := writeFile(t, "f.toml", "deny-types = []\n")
	if cfg := parse(nil, "--config", file); cfg.DenyTypes == nil || len(cfg.DenyTypes) != 0 {
		t.Errorf("deny-types = []: %#v, want empty", cfg.DenyTypes)
	}
	// The environment wins over the file, also when it clears.
	file = writeFile(t, "g.toml", "deny-types = [\"text/*\"]\n")
	if cfg := parse(map[string]string{"FILEHUB_DENY_TYPES": ""}, "--config", file); len(cfg.DenyTypes) != 0 {
		t.Errorf("FILEHUB_DENY_TYPES=\"\" over a file list: %#v, want empty", cfg.DenyTypes)
	}
}
