package httpapi

import (
	"net/http"

	"github.com/filehub/filehub"
)

// Mount serves next for every method under pattern (a ServeMux pattern such
// as "/v1/uploads/"), behind the API's request IDs, metrics (labelled with
// pattern), panic recovery and 404/405 handling of other paths. next
// authenticates by itself with Authorize, because what it needs depends on
// the method (the tus endpoint's OPTIONS is public, HEAD takes read or write).
// Mount must be called before the Handler serves.
func (h *Handler) Mount(pattern string, next http.Handler) {
	h.mux.Handle(pattern, next)
}

// Authorize authenticates r's bearer key exactly like the API's own routes
// (per-address failure limit, revocation, per-key rate limit) and checks
// that it grants at least one of scopes. It returns r with the key in its
// context (APIKeyFromContext) and as the audit actor, and the key.
//
// Errors: EUNAUTHORIZED, EFORBIDDEN, ERATELIMIT (Retry-After set on w),
// EUNAVAILABLE; write them with WriteError.
func (h *Handler) Authorize(w http.ResponseWriter, r *http.Request, scopes ...filehub.Scope) (*http.Request, *filehub.APIKey, error) {
	if len(scopes) == 0 {
		return nil, nil, filehub.Errorf(filehub.EINTERNAL, "authorize: no scope given")
	}
	if err := h.authorize(w, r, scopes...); err != nil {
		return nil, nil, err
	}
	key := info(r.Context()).key
	return r.WithContext(filehub.WithActor(r.Context(), key.ID)), key, nil
}

// WriteError answers with err's status and problem document, through the
// API's one code-to-status table, as its own routes do.
func (h *Handler) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	h.writeError(w, r, err)
}
