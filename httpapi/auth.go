package httpapi

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/filehub/filehub"
	"golang.org/x/time/rate"
)

// authorize authenticates r's bearer key, checks that it grants one of scopes and
// applies the key's rate limit. On success the key is in the request's
// context (APIKeyFromContext).
//
// Errors: EUNAUTHORIZED for a missing, malformed, unknown or revoked key;
// EFORBIDDEN when the key lacks scope; ERATELIMIT (with Retry-After set on w)
// when the key or, after repeated failures, the client's address is over its
// limit; EUNAVAILABLE when the key store cannot be reached.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, scopes ...filehub.Scope) error {
	ctx := r.Context()
	ip := clientIP(r)
	// An address that keeps presenting bad keys is refused before its key
	// is even looked up: that is what makes guessing slow. Addresses whose
	// keys work are never charged, so a valid key is only refused here if
	// someone at the same address has been failing at more than the
	// sustained AuthFailureLimit.
	if h.authLimits != nil {
		if lim := h.authLimits.peek(ip); lim != nil && lim.Tokens() < 1 {
			h.metrics.rateLimited.WithLabelValues("auth").Inc()
			setRetryAfter(w, lim.Limit(), 1)
			return filehub.Errorf(filehub.ERATELIMIT, "too many failed authentication attempts; retry later")
		}
	}
	key, err := h.authenticate(r)
	if err != nil {
		if filehub.ErrorCode(err) == filehub.EUNAUTHORIZED && h.authLimits != nil {
			h.authLimits.get(ip).Allow()
		}
		return err
	}
	if !hasAny(key, scopes) {
		return filehub.Errorf(filehub.EFORBIDDEN, "this key lacks the %q scope", scopes[0])
	}
	info(ctx).key = key
	info(ctx).log = info(ctx).log.With("key_id", key.ID)
	if h.keyLimits != nil {
		lim := h.keyLimits.get(key.ID)
		res := lim.Reserve()
		if d := res.Delay(); d > 0 {
			// Refuse rather than wait: the client decides when to retry.
			res.Cancel()
			h.metrics.rateLimited.WithLabelValues("key").Inc()
			w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(d)))
			return filehub.Errorf(filehub.ERATELIMIT, "rate limit of %g requests/s exceeded; retry later", h.cfg.RateLimit)
		}
	}
	return nil
}

// hasAny reports whether key grants at least one of scopes.
func hasAny(key *filehub.APIKey, scopes []filehub.Scope) bool {
	for _, s := range scopes {
		if key.Has(s) {
			return true
		}
	}
	return false
}

// authenticate returns the API key of r's bearer credentials.
func (h *Handler) authenticate(r *http.Request) (*filehub.APIKey, error) {
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, filehub.Errorf(filehub.EUNAUTHORIZED, "missing or malformed Authorization header (want: Bearer <key>)")
	}
	key, err := h.keys.FindAPIKeyByHash(r.Context(), filehub.HashAPIKey(secret))
	switch filehub.ErrorCode(err) {
	case "":
	case filehub.ENOTFOUND:
		return nil, filehub.Errorf(filehub.EUNAUTHORIZED, "unknown API key")
	case filehub.EUNAVAILABLE:
		return nil, err
	default:
		// Whatever went wrong, it was not the client's key: answer
		// 503 so that it retries instead of discarding a good key.
		return nil, filehub.WrapError(filehub.EUNAVAILABLE, "cannot check the API key right now", err)
	}
	if key.RevokedAt != nil {
		return nil, filehub.Errorf(filehub.EUNAUTHORIZED, "API key has been revoked")
	}
	return key, nil
}

// clientIP is the address rate limits of failed authentications are kept
// for. Forwarding headers are deliberately ignored: they are trivially
// forged, and trusting them would let an attacker pick a fresh address per
// attempt.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// retrySeconds rounds a wait up to whole seconds, at least 1, for
// Retry-After.
func retrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// setRetryAfter sets Retry-After to the time lim needs to refill n tokens.
func setRetryAfter(w http.ResponseWriter, lim rate.Limit, n float64) {
	d := time.Second
	if lim > 0 {
		d = time.Duration(n / float64(lim) * float64(time.Second))
	}
	w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(d)))
}

// limiterSet keeps one token-bucket limiter per key (API key id or client
// address), with a bounded number of entries.
type limiterSet struct {
	limit rate.Limit
	burst int
	max   int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newLimiterSet(limit float64, burst, max int) *limiterSet {
	return &limiterSet{limit: rate.Limit(limit), burst: burst, max: max, m: make(map[string]*rate.Limiter)}
}

// peek returns the limiter for k, or nil if there is none.
func (s *limiterSet) peek(k string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k]
}

// get returns the limiter for k, creating it if needed.
func (s *limiterSet) get(k string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lim, ok := s.m[k]; ok {
		return lim
	}
	if len(s.m) >= s.max {
		s.evict()
	}
	lim := rate.NewLimiter(s.limit, s.burst)
	s.m[k] = lim
	return lim
}

// evict makes room. It first drops idle limiters, those whose bucket has
// refilled: a full bucket behaves exactly like a new one, so dropping it
// loses nothing. If every limiter is busy, arbitrary ones are dropped
// (which forgives their debt) down to three quarters of the bound, so that
// the O(n) sweep runs at most once per max/4 insertions.
func (s *limiterSet) evict() {
	now := time.Now()
	for k, lim := range s.m {
		if lim.TokensAt(now) >= float64(s.burst) {
			delete(s.m, k)
		}
	}
	for k := range s.m {
		if len(s.m) < s.max*3/4 {
			break
		}
		delete(s.m, k)
	}
}
