package httpapi

import (
	"net/http"
	"strconv"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/auth"
)

// authorize authenticates r's bearer key (auth.Authenticator, shared with
// the WebSocket server), checks that it grants one of scopes and applies the key's
// rate limit. On success the key is in the request's context
// (APIKeyFromContext).
//
// Errors: EUNAUTHORIZED for a missing, malformed, unknown or revoked key;
// EFORBIDDEN when the key lacks scope; ERATELIMIT (with Retry-After set on w)
// when the key or, after repeated failures, the client's address is over its
// limit; EUNAVAILABLE when the key store cannot be reached.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, scopes ...filehub.Scope) error {
	ctx := r.Context()
	key, _, err := h.auth.Authenticate(ctx, h.auth.ClientAddr(r), auth.Bearer(r.Header.Get("Authorization")),
		"missing or malformed Authorization header (want: Bearer <key>)")
	if err != nil {
		if n := auth.RetryAfter(err); n > 0 {
			h.metrics.rateLimited.WithLabelValues("auth").Inc()
			w.Header().Set("Retry-After", strconv.Itoa(n))
		}
		return err
	}
	if !hasAny(key, scopes) {
		return filehub.Errorf(filehub.EFORBIDDEN, "this key lacks the %q scope", scopes[0])
	}
	info(ctx).key = key
	info(ctx).log = info(ctx).log.With("key_id", key.ID)
	if h.keyLimits != nil {
		lim := h.keyLimits.Get(key.ID)
		res := lim.Reserve()
		if d := res.Delay(); d > 0 {
			// Refuse rather than wait: the client decides when to retry.
			res.Cancel()
			h.metrics.rateLimited.WithLabelValues("key").Inc()
			w.Header().Set("Retry-After", strconv.Itoa(auth.RetrySeconds(d)))
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

// KeyLimiters returns the per-key rate limiters, or nil when
// Config.RateLimit is 0. A daemon in a cluster sets their share
// (auth.Limiters.SetShare) so that the limit holds across instances.
func (h *Handler) KeyLimiters() *auth.Limiters { return h.keyLimits }
