package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestBoundFlags: issue 15's bounds and --trusted-proxies follow flag >
// env > file, reach server.Config unchanged, and bad values are usage
// errors.
func TestBoundFlags(t *testing.T) {
	file := writeFile(t, "filehub.toml", "ws-max-sessions-per-key = 7\ns3-buffer-memory = \"64MiB\"\ntrusted-proxies = [\"10.0.0.0/8\"]\n")
	env := map[string]string{"FILEHUB_WS_MAX_SESSIONS_PER_KEY": "9", "FILEHUB_WS_RESULT_CACHE_TOTAL": "32MiB"}
	cfg, code, stderr := parseServe(t, env, "--config", file, "--ws-anon-hello-timeout", "2s", "--trusted-proxies", "192.0.2.1,2001:db8::/32")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if cfg.WSMaxSessionsPerKey != 9 || cfg.S3BufferMemory != 64<<20 || cfg.WSResultCacheTotalBytes != 32<<20 ||
		cfg.WSAnonHelloTimeout != 2*time.Second || strings.Join(cfg.TrustedProxies, ",") != "192.0.2.1,2001:db8::/32" {
		t.Fatalf("parsed %+v", cfg)
	}
	sc, err := cfg.ServerConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/32")}
	if len(sc.TrustedProxies) != 2 || sc.TrustedProxies[0] != want[0] || sc.TrustedProxies[1] != want[1] {
		t.Errorf("TrustedProxies = %v, want %v", sc.TrustedProxies, want)
	}
	if sc.WSMaxSessionsPerKey != 9 || sc.S3BufferMemory != 64<<20 || sc.WSResultCacheTotalBytes != 32<<20 ||
		sc.WSResultCacheBytes != cfg.WSResultCacheBytes || sc.WSMaxPendingHellos != cfg.WSMaxPendingHellos {
		t.Errorf("server config %+v", sc)
	}

	for _, mod := range []func(*ServeConfig){
		func(c *ServeConfig) { c.TrustedProxies = []string{"10.0.0.0/33"} },
		func(c *ServeConfig) { c.WSMaxSessionsPerKey = 0 },
		func(c *ServeConfig) { c.WSResultCacheBytes = 0 },
		func(c *ServeConfig) { c.Blobs = "s3://b"; c.S3BufferMemory = 1 << 20 },
		func(c *ServeConfig) { c.WSSessions = "disk" },
	} {
		c := DefaultServeConfig()
		mod(&c)
		if _, err := c.ServerConfig(nil); !isUsageError(err) {
			t.Errorf("%+v: %v, want a usage error", c, err)
		}
	}
}
