package mcpserver

import (
	"context"
	"net/http"
	"strconv"

	mcpauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/auth"
)

// Authenticator returns the API key of an HTTP request's credentials, or
// an *filehub.Error: EUNAUTHORIZED for missing or bad credentials,
// ERATELIMIT or EUNAVAILABLE when they cannot be checked now.
type Authenticator func(r *http.Request) (*filehub.APIKey, error)

// FromAuthenticator authenticates "Authorization: Bearer <key>" with a,
// the one authenticator the HTTP API and the WebSocket server use: the
// same keys, and failed attempts charged to the same per-address limiter.
func FromAuthenticator(a *auth.Authenticator) Authenticator {
	return func(r *http.Request) (*filehub.APIKey, error) {
		key, _, err := a.Authenticate(r.Context(), auth.ClientAddr(r), auth.Bearer(r.Header.Get("Authorization")),
			"missing or malformed Authorization header (want: Bearer <key>)")
		return key, err
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
	verify := func(ctx context.Context, _ string, r *http.Request) (*mcpauth.TokenInfo, error) {
		key, _ := r.Context().Value(requestKey{}).(*filehub.APIKey)
		if key == nil {
			return nil, mcpauth.ErrInvalidToken
		}
		scopes := make([]string, len(key.Scopes))
		for i, sc := range key.Scopes {
			scopes[i] = string(sc)
		}
		return &mcpauth.TokenInfo{UserID: key.ID, Scopes: scopes, Extra: map[string]any{keyExtra: key}}, nil
	}
	inner := mcpauth.RequireBearerToken(verify, &mcpauth.RequireBearerTokenOptions{AllowMissingExpiration: true})(sh)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := authn(r)
		if err != nil {
			s.metrics.refused.WithLabelValues("unauthorized").Inc()
			writeProblem(w, err)
			return
		}
		if !key.Has(filehub.ScopeRead) && !key.Has(filehub.ScopeWrite) {
			s.metrics.refused.WithLabelValues("forbidden").Inc()
			writeProblem(w, filehub.Errorf(filehub.EFORBIDDEN, "the MCP endpoint needs a key with the read, write or admin scope"))
			return
		}
		if r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == "" && s.sessionCount() >= s.cfg.MaxSessions {
			s.metrics.refused.WithLabelValues("sessions").Inc()
			w.Header().Set("Retry-After", "5")
			writeProblem(w, filehub.Errorf(filehub.EUNAVAILABLE, "too many MCP sessions are open (%d); retry later", s.cfg.MaxSessions))
			return
		}
		if r.ContentLength > largeRequest || r.ContentLength < 0 && r.Method == http.MethodPost {
			select {
			case s.large <- struct{}{}:
				defer func() { <-s.large }()
			default:
				s.metrics.refused.WithLabelValues("large_requests").Inc()
				w.Header().Set("Retry-After", "1")
				writeProblem(w, filehub.Errorf(filehub.EUNAVAILABLE, "too many large MCP requests in progress (%d); retry later", s.cfg.MaxLargeRequests))
				return
			}
		}
		inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, key)))
	})
}

// writeProblem answers with the RFC 9457 problem document of err, its
// status from the one error table.
func writeProblem(w http.ResponseWriter, err error) {
	code := filehub.ErrorCode(err)
	if code == filehub.EUNAUTHORIZED {
		w.Header().Set("WWW-Authenticate", `Bearer realm="filehub"`)
	}
	if s := auth.RetryAfter(err); s > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(s))
	}
	api.WriteProblem(w, api.NewProblem(code, filehub.ErrorMessage(err)))
}
