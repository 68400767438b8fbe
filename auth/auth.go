// Package auth turns a bearer secret into an authenticated API key, for
// every surface of the API: the HTTP API (Authorization header), the
// WebSocket server (the header at the upgrade, or the token in hello), and
// whatever comes next. It owns the one limiter of failed authentications,
// so that failing clients are treated alike on every surface. A valid key
// is never refused by it: only failures are counted, per client address
// (seen through Config.TrustedProxies), and an address over its budget is
// answered 429 for its further failures; a bad key it repeats is refused
// without a store lookup. See docs/decisions.md ("Fair authentication
// limits") for why a valid key is always checked.
//
// The daemon builds one Authenticator and hands it to each transport.
package auth

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/filehub/filehub"
)

// KeyStore looks up API keys; filehub.MetaStore implements it.
type KeyStore interface {
	// FindAPIKeyByHash returns the key with the given hash, revoked or
	// not, ENOTFOUND if there is none, EUNAVAILABLE if the store is down.
	FindAPIKeyByHash(ctx context.Context, hash []byte) (*filehub.APIKey, error)
}

// Defaults of Config.
const (
	DefaultFailureLimit = 10
	DefaultMaxLimiters  = 10000
	DefaultMaxBadKeys   = 10000
	DefaultKeyCacheTTL  = 2 * time.Second
	DefaultMaxGoodKeys  = 1000
)

// Config configures an Authenticator. The zero value is ready to use.
type Config struct {
	// FailureLimit is the sustained number of failed authentications per
	// second accepted from one client address; beyond it (after
	// FailureBurst) the address is refused with ERATELIMIT without its
	// keys being checked. Default 10; negative disables the limit.
	FailureLimit float64
	// FailureBurst defaults to 2 × FailureLimit.
	FailureBurst int
	// MaxLimiters bounds the number of per-address limiters kept in
	// memory. Default 10000.
	MaxLimiters int
	// TrustedProxies are the reverse proxies whose Forwarded or
	// X-Forwarded-For header names the client (see ClientAddr). Default
	// none: the peer address is the client.
	TrustedProxies []netip.Prefix
	// MaxBadKeys bounds the remembered hashes of keys that failed, which
	// an address over its budget is refused without a lookup. Default
	// 10000.
	MaxBadKeys int

	// KeyCacheTTL is how long a key found valid is trusted without asking
	// the KeyStore again, so that a burst of requests with one key costs
	// one lookup. A key revoked in the store is refused at the latest
	// KeyCacheTTL after its last lookup. Default 2s (DefaultKeyCacheTTL);
	// negative disables the cache. See docs/decisions.md ("A short-lived
	// cache of valid API keys").
	KeyCacheTTL time.Duration
	// MaxGoodKeys bounds the cached valid keys. Default 1000.
	MaxGoodKeys int
	// Now is the clock of the key cache. Default time.Now; tests inject
	// their own.
	Now func() time.Time
}

// Authenticator checks bearer secrets against a KeyStore. It is safe for
// concurrent use.
type Authenticator struct {
	keys     KeyStore
	failures *Limiters // nil when disabled
	proxies  []netip.Prefix

	// bad holds hashes of keys that failed recently (unknown, revoked),
	// at most maxBad, the oldest forgotten first.
	mu     sync.Mutex
	bad    map[string]struct{}
	badQ   []string
	maxBad int

	// good caches keys found valid, by hash, until their expiry; at most
	// maxGood. Only valid keys: a failure is never cached here, so a key
	// created after a failed attempt works at once.
	goodTTL time.Duration // 0: no cache
	maxGood int
	now     func() time.Time
	goodMu  sync.Mutex
	good    map[string]goodKey
}

// goodKey is a cached valid key.
type goodKey struct {
	key     filehub.APIKey
	expires time.Time
}

// New returns an Authenticator that looks keys up in keys.
func New(keys KeyStore, cfg Config) *Authenticator {
	if cfg.FailureLimit == 0 {
		cfg.FailureLimit = DefaultFailureLimit
	}
	if cfg.FailureBurst <= 0 {
		cfg.FailureBurst = max(1, int(2*cfg.FailureLimit))
	}
	if cfg.MaxLimiters <= 0 {
		cfg.MaxLimiters = DefaultMaxLimiters
	}
	if cfg.MaxBadKeys <= 0 {
		cfg.MaxBadKeys = DefaultMaxBadKeys
	}
	if cfg.KeyCacheTTL == 0 {
		cfg.KeyCacheTTL = DefaultKeyCacheTTL
	}
	if cfg.MaxGoodKeys <= 0 {
		cfg.MaxGoodKeys = DefaultMaxGoodKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Authenticator{
		keys: keys, proxies: cfg.TrustedProxies, bad: make(map[string]struct{}), maxBad: cfg.MaxBadKeys,
		goodTTL: max(0, cfg.KeyCacheTTL), maxGood: cfg.MaxGoodKeys, now: cfg.Now, good: make(map[string]goodKey),
	}
	if cfg.FailureLimit > 0 {
		a.failures = NewLimiters(cfg.FailureLimit, cfg.FailureBurst, cfg.MaxLimiters)
	}
	return a
}

// Missing is the message of the EUNAUTHORIZED error for a request without
// usable credentials; transports pass their own (saying where the key goes)
// to Authenticate.
const Missing = "missing or malformed credentials"

// Authenticate returns the API key whose secret is given, and its hash (to
// look the key up again later), for a client at address addr (ClientAddr).
// missing is the message when secret is empty ("" for Missing).
//
// A valid key is always accepted, whatever addr's failures: the limiter
// counts failures only, and refuses failures only. A key found valid is
// trusted for Config.KeyCacheTTL without another store lookup (each call
// returns its own copy). Errors: EUNAUTHORIZED
// for an empty, unknown or revoked key; ERATELIMIT instead when addr is
// over its failure budget (RetryAfter says for how long; a bad key already
// seen is then refused without a store lookup); and EUNAVAILABLE when the
// key store cannot tell (never charged). Scopes are the caller's to check
// (APIKey.Has).
func (a *Authenticator) Authenticate(ctx context.Context, addr, secret, missing string) (*filehub.APIKey, []byte, error) {
	var hash []byte
	if secret != "" {
		hash = filehub.HashAPIKey(secret)
	}
	if a.failures != nil && (secret == "" || a.knownBad(hash)) {
		// A failure for certain: refuse it cheaply if addr is over budget.
		if err := a.overBudget(addr); err != nil {
			return nil, nil, err
		}
	}
	if key := a.cached(hash); key != nil {
		return key, hash, nil
	}
	key, err := a.lookup(ctx, hash, missing)
	if err == nil {
		a.remember(hash, key)
		return key, hash, nil
	}
	if filehub.ErrorCode(err) != filehub.EUNAUTHORIZED || a.failures == nil {
		return nil, nil, err
	}
	if hash != nil {
		a.rememberBad(hash)
	}
	if !a.failures.Get(addr).Allow() {
		return nil, nil, a.refusal(addr)
	}
	return nil, nil, err
}

// overBudget returns the ERATELIMIT refusal if addr has no failure left.
func (a *Authenticator) overBudget(addr string) error {
	if lim := a.failures.Peek(addr); lim != nil && lim.Tokens() < 1 {
		return a.refusal(addr)
	}
	return nil
}

func (a *Authenticator) refusal(addr string) error {
	d := time.Second
	if lim := a.failures.Peek(addr); lim != nil && lim.Limit() > 0 {
		d = time.Duration(float64(time.Second) / float64(lim.Limit()))
	}
	return filehub.WrapError(filehub.ERATELIMIT, "too many failed authentication attempts; retry later", &retryError{d})
}

func (a *Authenticator) knownBad(hash []byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.bad[string(hash)]
	return ok
}

// rememberBad records a hash that failed. A key created later under that
// hash is impossible in practice (256-bit secrets); a revoked key stays
// revoked.
func (a *Authenticator) rememberBad(hash []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.bad[string(hash)]; ok {
		return
	}
	if len(a.badQ) >= a.maxBad {
		delete(a.bad, a.badQ[0])
		a.badQ = a.badQ[1:]
	}
	a.bad[string(hash)] = struct{}{}
	a.badQ = append(a.badQ, string(hash))
}

// cached returns a copy of the valid key cached under hash, or nil if there
// is none or it expired.
func (a *Authenticator) cached(hash []byte) *filehub.APIKey {
	if a.goodTTL == 0 || hash == nil {
		return nil
	}
	a.goodMu.Lock()
	defer a.goodMu.Unlock()
	g, ok := a.good[string(hash)]
	if !ok {
		return nil
	}
	if !a.now().Before(g.expires) {
		delete(a.good, string(hash))
		return nil
	}
	k := g.key
	k.Scopes = slices.Clone(k.Scopes)
	return &k
}

// remember caches a valid key. When the cache is full, expired entries go
// first, then an arbitrary one (map order): a bound on memory, not an LRU,
// since a miss costs only one lookup.
func (a *Authenticator) remember(hash []byte, key *filehub.APIKey) {
	if a.goodTTL == 0 {
		return
	}
	now := a.now()
	a.goodMu.Lock()
	defer a.goodMu.Unlock()
	if _, ok := a.good[string(hash)]; !ok && len(a.good) >= a.maxGood {
		for h, g := range a.good {
			if !now.Before(g.expires) {
				delete(a.good, h)
			}
		}
		for h := range a.good {
			if len(a.good) < a.maxGood {
				break
			}
			delete(a.good, h)
		}
	}
	k := *key
	k.Scopes = slices.Clone(k.Scopes)
	a.good[string(hash)] = goodKey{key: k, expires: now.Add(a.goodTTL)}
}

func (a *Authenticator) lookup(ctx context.Context, hash []byte, missing string) (*filehub.APIKey, error) {
	if hash == nil {
		if missing == "" {
			missing = Missing
		}
		return nil, filehub.Errorf(filehub.EUNAUTHORIZED, "%s", missing)
	}
	key, err := a.keys.FindAPIKeyByHash(ctx, hash)
	switch filehub.ErrorCode(err) {
	case "":
	case filehub.ENOTFOUND:
		return nil, filehub.Errorf(filehub.EUNAUTHORIZED, "unknown API key")
	case filehub.EUNAVAILABLE:
		return nil, err
	default:
		// Whatever went wrong, it was not the client's key: answer
		// unavailable so that it retries instead of discarding a good key.
		return nil, filehub.WrapError(filehub.EUNAVAILABLE, "cannot check the API key right now", err)
	}
	if key.RevokedAt != nil {
		return nil, filehub.Errorf(filehub.EUNAUTHORIZED, "API key has been revoked")
	}
	return key, nil
}

// Bearer returns the secret of an "Authorization: Bearer <key>" header
// value, or "" if it is missing or malformed.
func Bearer(header string) string {
	scheme, secret, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(secret)
}

// retryError is the cause of a rate-limited authentication.
type retryError struct{ after time.Duration }

func (e *retryError) Error() string { return "retry after " + e.after.String() }

// RetryAfter returns how long a client refused with ERATELIMIT by
// Authenticate should wait, in whole seconds (at least 1), or 0 if err is
// not such a refusal.
func RetryAfter(err error) int {
	var re *retryError
	if !errors.As(err, &re) {
		return 0
	}
	return RetrySeconds(re.after)
}

// RetrySeconds rounds a wait up to whole seconds, at least 1, for
// Retry-After.
func RetrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
