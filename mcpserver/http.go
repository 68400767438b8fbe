package mcpserver

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/filehub/filehub"
)

// Authenticator returns the API key of an HTTP request's credentials, or
// an *filehub.Error: EUNAUTHORIZED for missing or bad credentials,
// ERATELIMIT or EUNAVAILABLE when they cannot be checked now.
type Authenticator func(r *http.Request) (*filehub.APIKey, error)

// KeyStore looks up API keys; filehub.MetaStore implements it.
type KeyStore interface {
	FindAPIKeyByHash(ctx context.Context, hash []byte) (*filehub.APIKey, error)
}

// KeyAuthenticator authenticates "Authorization: Bearer <key>" against
// keys, as the HTTP API does.
func KeyAuthenticator(keys KeyStore) Authenticator {
	return func(r *http.Request) (*filehub.APIKey, error) {
		scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		secret = strings.TrimSpace(secret)
		if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
			return nil, filehub.Errorf(filehub.EUNAUTHORIZED, "missing or malformed Authorization header (want: Bearer <key>)")
		}
		key, err := keys.FindAPIKeyByHash(r.Context(), filehub.HashAPIKey(secret))
		switch filehub.ErrorCode(err) {
		case "":
		case filehub.ENOTFOUND:
			return nil, filehub.Errorf(filehub.EUNAUTHORIZED, "unknown API key")
		default:
			return nil, filehub.WrapError(filehub.EUNAVAILABLE, "cannot check the API key right now", err)
		}
		if key.RevokedAt != nil {
			return nil, filehub.Errorf(filehub.EUNAUTHORIZED, "API key has been revoked")
		}
		return key, nil
	}
}

// largeRequest is the body size from which a request takes one of the
// Config.MaxLargeRequests slots.
const largeRequest = 64 << 10

// requestKey is the context key under which HTTPHandler passes the
// authenticated key to the SDK's token check.
type requestKey struct{}

// HTTPHandler returns the Streamable HTTP endpoint (mount it at /v1/mcp).
// Every request is authenticated with authn; the key must hold the read,
// write or admin scope, and a session can only be used with the key that
// opened it (the SDK checks TokenInfo.UserID, the key's ID). New sessions
// are refused with 503 while Config.MaxSessions are open; idle ones are
// closed after Config.SessionIdleTimeout.
func (s *Server) HTTPHandler(authn Authenticator) http.Handler {
	sh := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp }, &mcp.StreamableHTTPOptions{
		Logger:         slogWarn(s),
		SessionTimeout: s.cfg.SessionIdleTimeout,
		// Plain JSON answers rather than an event stream per call: no
		// tool streams progress, notifications travel on the session's
		// own stream, and a JSON answer is cheaper for both ends and
		// for proxies.
		JSONResponse: true,
		// Room for the largest upload_file call, base64-encoded, so that
		// content a little over the limit gets a clear tool error; far
		// larger bodies are refused with 413 before they are buffered.
		MaxRequestBodyBytes: s.cfg.MaxUpload*4/3 + 1<<20,
		// The endpoint needs a bearer key, which a page rebinding a DNS
		// name to the loopback address does not have; and behind a
		// reverse proxy on the same host every request comes from the
		// loopback address with the public Host, which the SDK's
		// protection would refuse.
		DisableLocalhostProtection: true,
	})
	verify := func(ctx context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		key, _ := r.Context().Value(requestKey{}).(*filehub.APIKey)
		if key == nil {
			return nil, auth.ErrInvalidToken
		}
		scopes := make([]string, len(key.Scopes))
		for i, sc := range key.Scopes {
			scopes[i] = string(sc)
		}
		return &auth.TokenInfo{UserID: key.ID, Scopes: scopes, Extra: map[string]any{keyExtra: key}}, nil
	}
	inner := auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(sh)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := authn(r)
		if err != nil {
			s.metrics.refused.WithLabelValues("unauthorized").Inc()
			writeProblem(w, r, err)
			return
		}
		if !key.Has(filehub.ScopeRead) && !key.Has(filehub.ScopeWrite) {
			s.metrics.refused.WithLabelValues("forbidden").Inc()
			writeProblem(w, r, filehub.Errorf(filehub.EFORBIDDEN, "the MCP endpoint needs a key with the read, write or admin scope"))
			return
		}
		if r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == "" && s.sessionCount() >= s.cfg.MaxSessions {
			s.metrics.refused.WithLabelValues("sessions").Inc()
			w.Header().Set("Retry-After", "5")
			writeProblem(w, r, filehub.Errorf(filehub.EUNAVAILABLE, "too many MCP sessions are open (%d); retry later", s.cfg.MaxSessions))
			return
		}
		if r.ContentLength > largeRequest || r.ContentLength < 0 && r.Method == http.MethodPost {
			select {
			case s.large <- struct{}{}:
				defer func() { <-s.large }()
			default:
				s.metrics.refused.WithLabelValues("large_requests").Inc()
				w.Header().Set("Retry-After", "1")
				writeProblem(w, r, filehub.Errorf(filehub.EUNAVAILABLE, "too many large MCP requests in progress (%d); retry later", s.cfg.MaxLargeRequests))
				return
			}
		}
		inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, key)))
	})
}

// statusByCode maps the codes HTTPHandler can refuse with to statuses.
var statusByCode = map[string]int{
	filehub.EUNAUTHORIZED: http.StatusUnauthorized,
	filehub.EFORBIDDEN:    http.StatusForbidden,
	filehub.ERATELIMIT:    http.StatusTooManyRequests,
	filehub.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// writeProblem answers with an RFC 9457 problem document.
func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	code := filehub.ErrorCode(err)
	status, ok := statusByCode[code]
	if !ok {
		status, code = http.StatusInternalServerError, filehub.EINTERNAL
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="filehub"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type":   "about:blank",
		"title":  http.StatusText(status),
		"status": status,
		"detail": filehub.ErrorMessage(err),
		"code":   code,
	})
}
