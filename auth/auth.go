// Package auth turns a bearer secret into an authenticated API key, for
// every surface of the API: the HTTP API (Authorization header), the
// WebSocket server (the header at the upgrade, or the token in hello), and
// whatever comes next. It owns the one limiter of failed authentications,
// so that guessing keys is equally slow on every surface: a client address
// that keeps presenting bad keys is refused before its keys are even
// looked up.
//
// The daemon builds one Authenticator and hands it to each transport.
package auth

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strings"
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
}

// Authenticator checks bearer secrets against a KeyStore. It is safe for
// concurrent use.
type Authenticator struct {
	keys     KeyStore
	failures *Limiters // nil when disabled
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
	a := &Authenticator{keys: keys}
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
// Errors: EUNAUTHORIZED for an empty, unknown or revoked key; ERATELIMIT
// when addr has failed too often (RetryAfter says for how long); and
// EUNAVAILABLE when the key store cannot tell. Each EUNAUTHORIZED is
// charged to addr. Scopes are the caller's to check (APIKey.Has).
func (a *Authenticator) Authenticate(ctx context.Context, addr, secret, missing string) (*filehub.APIKey, []byte, error) {
	// Addresses whose keys work are never charged, so a valid key is only
	// refused here if someone at the same address has been failing at more
	// than the sustained limit.
	if a.failures != nil {
		if lim := a.failures.Peek(addr); lim != nil && lim.Tokens() < 1 {
			d := time.Second
			if l := lim.Limit(); l > 0 {
				d = time.Duration(float64(time.Second) / float64(l))
			}
			return nil, nil, filehub.WrapError(filehub.ERATELIMIT, "too many failed authentication attempts; retry later", &retryError{d})
		}
	}
	key, hash, err := a.lookup(ctx, secret, missing)
	if err != nil {
		if filehub.ErrorCode(err) == filehub.EUNAUTHORIZED && a.failures != nil {
			a.failures.Get(addr).Allow()
		}
		return nil, nil, err
	}
	return key, hash, nil
}

func (a *Authenticator) lookup(ctx context.Context, secret, missing string) (*filehub.APIKey, []byte, error) {
	if secret == "" {
		if missing == "" {
			missing = Missing
		}
		return nil, nil, filehub.Errorf(filehub.EUNAUTHORIZED, "%s", missing)
	}
	hash := filehub.HashAPIKey(secret)
	key, err := a.keys.FindAPIKeyByHash(ctx, hash)
	switch filehub.ErrorCode(err) {
	case "":
	case filehub.ENOTFOUND:
		return nil, nil, filehub.Errorf(filehub.EUNAUTHORIZED, "unknown API key")
	case filehub.EUNAVAILABLE:
		return nil, nil, err
	default:
		// Whatever went wrong, it was not the client's key: answer
		// unavailable so that it retries instead of discarding a good key.
		return nil, nil, filehub.WrapError(filehub.EUNAVAILABLE, "cannot check the API key right now", err)
	}
	if key.RevokedAt != nil {
		return nil, nil, filehub.Errorf(filehub.EUNAUTHORIZED, "API key has been revoked")
	}
	return key, hash, nil
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

// ClientAddr is the address failed authentications are charged to: the
// peer's IP. Forwarding headers are deliberately ignored: they are trivially
// forged, and trusting them would let an attacker pick a fresh address per
// attempt.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
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
