package auth_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/auth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// keys is a KeyStore of fixed keys by secret.
type keys struct {
	m       map[string]*filehub.APIKey // by hash
	down    bool
	lookups int
}

func newKeys(secrets map[string]*filehub.APIKey) *keys {
	k := &keys{m: make(map[string]*filehub.APIKey)}
	for s, key := range secrets {
		k.m[string(filehub.HashAPIKey(s))] = key
	}
	return k
}

func (k *keys) FindAPIKeyByHash(_ context.Context, hash []byte) (*filehub.APIKey, error) {
	k.lookups++
	if k.down {
		return nil, errors.New("connection refused")
	}
	key, ok := k.m[string(hash)]
	if !ok {
		return nil, filehub.ErrNotFound
	}
	return key, nil
}

func TestAuthenticate(t *testing.T) {
	revoked := time.Now()
	ks := newKeys(map[string]*filehub.APIKey{
		"good": {ID: "k_good", Scopes: []filehub.Scope{filehub.ScopeRead}},
		"old":  {ID: "k_old", RevokedAt: &revoked},
	})
	a := auth.New(ks, auth.Config{FailureLimit: -1, KeyCacheTTL: -1})
	ctx := context.Background()
	key, hash, err := a.Authenticate(ctx, "a", "good", "")
	if err != nil || key.ID != "k_good" || string(hash) != string(filehub.HashAPIKey("good")) {
		t.Fatalf("good key: %v, %v", key, err)
	}
	for _, tc := range []struct{ secret, code, msg string }{
		{"", filehub.EUNAUTHORIZED, "say where the key goes"},
		{"nope", filehub.EUNAUTHORIZED, "unknown API key"},
		{"old", filehub.EUNAUTHORIZED, "API key has been revoked"},
	} {
		_, _, err := a.Authenticate(ctx, "a", tc.secret, "say where the key goes")
		if filehub.ErrorCode(err) != tc.code || filehub.ErrorMessage(err) != tc.msg {
			t.Errorf("%q: %v, want %s %q", tc.secret, err, tc.code, tc.msg)
		}
	}
	ks.down = true
	if _, _, err := a.Authenticate(ctx, "a", "good", ""); filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
		t.Errorf("store down: %v, want unavailable", err)
	}
}

// clock is a manual clock for the key cache.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// A valid key is looked up once per KeyCacheTTL: within it a revoked (or
// deleted) key is still accepted from the cache, from its expiry on it is
// refused; the cache holds no failures, and its bound holds.
func TestKeyCache(t *testing.T) {
	ks := newKeys(map[string]*filehub.APIKey{
		"good":  {ID: "k_good", Scopes: []filehub.Scope{filehub.ScopeRead}},
		"other": {ID: "k_other"},
	})
	c := &clock{t: time.Unix(1_000_000, 0)}
	a := auth.New(ks, auth.Config{FailureLimit: -1, KeyCacheTTL: 2 * time.Second, MaxGoodKeys: 1, Now: c.now})
	ctx := context.Background()
	mustAuth := func(secret, id string) {
		t.Helper()
		key, hash, err := a.Authenticate(ctx, "a", secret, "")
		if err != nil || key.ID != id || string(hash) != string(filehub.HashAPIKey(secret)) {
			t.Fatalf("%s: %v, %v", secret, key, err)
		}
	}
	for range 5 {
		mustAuth("good", "k_good")
	}
	if ks.lookups != 1 {
		t.Fatalf("5 requests with one key: %d lookups, want 1", ks.lookups)
	}
	// A caller changing its copy does not change the cached key.
	key, _, _ := a.Authenticate(ctx, "a", "good", "")
	key.Scopes[0] = filehub.ScopeAdmin
	if key, _, _ := a.Authenticate(ctx, "a", "good", ""); key.Has(filehub.ScopeWrite) {
		t.Fatalf("cached key was changed through a returned copy: %+v", key)
	}

	revoked := c.t
	ks.m[string(filehub.HashAPIKey("good"))] = &filehub.APIKey{ID: "k_good", RevokedAt: &revoked}
	c.t = c.t.Add(2*time.Second - time.Nanosecond)
	mustAuth("good", "k_good") // within the TTL: still trusted
	c.t = c.t.Add(time.Nanosecond)
	if _, _, err := a.Authenticate(ctx, "a", "good", ""); filehub.ErrorMessage(err) != "API key has been revoked" {
		t.Fatalf("revoked key after the TTL: %v, want refused as revoked", err)
	}
	// Failures are not cached here: each is looked up again.
	n := ks.lookups
	a.Authenticate(ctx, "a", "good", "")
	if ks.lookups != n+1 {
		t.Fatalf("revoked key: %d lookups, want %d", ks.lookups, n+1)
	}

	// MaxGoodKeys 1: a second key pushes the first out.
	ks.m[string(filehub.HashAPIKey("good"))] = &filehub.APIKey{ID: "k_good"}
	mustAuth("good", "k_good")
	mustAuth("other", "k_other")
	n = ks.lookups
	mustAuth("good", "k_good")
	if ks.lookups != n+1 {
		t.Fatalf("evicted key: %d lookups, want %d", ks.lookups, n+1)
	}

	// A negative TTL disables the cache.
	off := auth.New(ks, auth.Config{FailureLimit: -1, KeyCacheTTL: -1, Now: c.now})
	n = ks.lookups
	for range 3 {
		if _, _, err := off.Authenticate(ctx, "a", "good", ""); err != nil {
			t.Fatal(err)
		}
	}
	if ks.lookups != n+3 {
		t.Fatalf("without cache: %d lookups, want 3", ks.lookups-n)
	}
}

// After the burst of failures an address's further failures are refused
// with 429, a bad key it repeats without a lookup; a valid key from the
// same address is still accepted, and other addresses are not affected;
// store outages are not charged.
func TestFailureLimit(t *testing.T) {
	ks := newKeys(map[string]*filehub.APIKey{"good": {ID: "k_good"}})
	// A limit slow enough that no token comes back during the test.
	a := auth.New(ks, auth.Config{FailureLimit: 0.001, FailureBurst: 3})
	ctx := context.Background()
	ks.down = true
	for range 5 {
		if _, _, err := a.Authenticate(ctx, "1.2.3.4", "good", ""); filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
			t.Fatalf("store down: %v", err)
		}
	}
	ks.down = false
	for i := range 3 {
		if _, _, err := a.Authenticate(ctx, "1.2.3.4", "bad", ""); filehub.ErrorCode(err) != filehub.EUNAUTHORIZED {
			t.Fatalf("failure %d: %v, want unauthorized", i, err)
		}
	}
	for _, secret := range []string{"bad", "another bad", ""} {
		_, _, err := a.Authenticate(ctx, "1.2.3.4", secret, "")
		if filehub.ErrorCode(err) != filehub.ERATELIMIT {
			t.Fatalf("failure %q after the burst: %v, want rate_limited", secret, err)
		}
		if n := auth.RetryAfter(err); n < 1 {
			t.Errorf("RetryAfter = %d, want >= 1", n)
		}
	}
	if key, _, err := a.Authenticate(ctx, "1.2.3.4", "good", ""); err != nil || key.ID != "k_good" {
		t.Errorf("valid key from the failing address: %v, %v; want accepted", key, err)
	}
	if _, _, err := a.Authenticate(ctx, "5.6.7.8", "bad", ""); filehub.ErrorCode(err) != filehub.EUNAUTHORIZED {
		t.Errorf("another address: %v, want unauthorized (its own budget)", err)
	}
	if n := auth.RetryAfter(filehub.Errorf(filehub.ERATELIMIT, "x")); n != 0 {
		t.Errorf("RetryAfter of another error = %d, want 0", n)
	}
}

// A bad key repeated by an address over its budget costs no store lookup.
func TestRepeatedBadKeyNotLookedUp(t *testing.T) {
	ks := &countingKeys{keys: newKeys(nil)}
	a := auth.New(ks, auth.Config{FailureLimit: 0.001, FailureBurst: 2})
	for range 10 {
		a.Authenticate(context.Background(), "1.2.3.4", "wrong", "")
	}
	if ks.n != 2 { // the two of the burst; then over budget and known bad
		t.Errorf("store lookups for one bad key repeated 10 times: %d, want 2", ks.n)
	}
}

type countingKeys struct {
	*keys
	n int
}

func (k *countingKeys) FindAPIKeyByHash(ctx context.Context, hash []byte) (*filehub.APIKey, error) {
	k.n++
	return k.keys.FindAPIKeyByHash(ctx, hash)
}

func TestClientAddr(t *testing.T) {
	proxies, err := auth.ParseTrustedProxies([]string{"10.0.0.0/8", "::1", " "})
	if err != nil {
		t.Fatal(err)
	}
	a := auth.New(newKeys(nil), auth.Config{TrustedProxies: proxies})
	none := auth.New(newKeys(nil), auth.Config{})
	for _, tc := range []struct {
		name, remote string
		hdr          map[string][]string
		want, direct string
	}{
		{"no proxy", "203.0.113.5:1234", nil, "203.0.113.5", "203.0.113.5"},
		{"untrusted peer's header ignored", "203.0.113.5:1234",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.5", "203.0.113.5"},
		{"trusted proxy", "10.1.2.3:80",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1", "10.1.2.3"},
		{"forged left entries ignored", "10.1.2.3:80",
			map[string][]string{"X-Forwarded-For": {"1.1.1.1, 2.2.2.2", "198.51.100.1"}}, "198.51.100.1", "10.1.2.3"},
		{"chain of trusted proxies", "10.1.2.3:80",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1, 10.9.9.9"}}, "198.51.100.1", "10.1.2.3"},
		{"Forwarded wins", "[::1]:80",
			map[string][]string{"Forwarded": {`for=192.0.2.60;proto=http, for="[2001:db8::17]:4711"`},
				"X-Forwarded-For": {"198.51.100.1"}}, "2001:db8::17", "::1"},
		{"unknown hop: charged to the proxy", "10.1.2.3:80",
			map[string][]string{"Forwarded": {"for=unknown"}}, "10.1.2.3", "10.1.2.3"},
		{"trusted proxy without header", "10.1.2.3:80", nil, "10.1.2.3", "10.1.2.3"},
		{"mapped IPv4 peer", "[::ffff:10.1.2.3]:80",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1", "10.1.2.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for k, vs := range tc.hdr {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if got := a.ClientAddr(r); got != tc.want {
				t.Errorf("ClientAddr with trusted proxies = %q, want %q", got, tc.want)
			}
			if got := none.ClientAddr(r); got != tc.direct {
				t.Errorf("ClientAddr without trusted proxies = %q, want %q", got, tc.direct)
			}
		})
	}
	if _, err := auth.ParseTrustedProxies([]string{"10.0.0.0/8", "nope"}); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("ParseTrustedProxies(bad) = %v, want invalid", err)
	}
}

// FuzzClientAddr: any forwarding headers from a trusted peer give an
// address (never a forged non-address, never a panic).
func FuzzClientAddr(f *testing.F) {
	f.Add("198.51.100.1, 10.0.0.1", `for="[2001:db8::1]:80";by=x`)
	f.Add("", "for=unknown")
	proxies, _ := auth.ParseTrustedProxies([]string{"10.0.0.0/8"})
	a := auth.New(newKeys(nil), auth.Config{TrustedProxies: proxies})
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.1:80"
		r.Header.Set("X-Forwarded-For", xff)
		if fwd != "" {
			r.Header.Set("Forwarded", fwd)
		}
		if _, err := netip.ParseAddr(a.ClientAddr(r)); err != nil {
			t.Errorf("ClientAddr = %q, not an address", a.ClientAddr(r))
		}
	})
}

func TestBearer(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc":   "abc",
		"bearer  abc ": "abc",
		"Basic abc":    "",
		"Bearer":       "",
		"":             "",
	} {
		if got := auth.Bearer(h); got != want {
			t.Errorf("Bearer(%q) = %q, want %q", h, got, want)
		}
	}
}
