package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
)

// writeError answers with err's status and problem document. Internal
// errors are logged with their cause, which is never sent; the causes of
// other server-side failures (503, 507) are logged as warnings.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := filehub.ErrorCode(err)
	if code == filehub.EINTERNAL && errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// net/http cancels the request when the client hangs up (or
		// half-closes) mid-body; whatever layer noticed first, it was
		// the client's doing, not a server fault.
		err = filehub.WrapError(filehub.EINVALID, "request aborted: the client went away", err)
		code = filehub.EINVALID
	}
	status := api.StatusCode(code) // the one table, api.Errors
	log := info(r.Context()).log
	switch {
	case errors.Is(r.Context().Err(), context.Canceled):
		// The client is gone; nobody will read the answer.
		log.Debug("request aborted by client", "err", err)
	case status == http.StatusInternalServerError:
		log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	case status >= 500:
		log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	default:
		log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="filehub"`)
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1")
		}
	}
	h.writeProblem(w, r, status, code, filehub.ErrorMessage(err))
}

// writeProblem writes a problem document. If the request body was not read
// to the end, the connection is closed after the response rather than
// reused, and further reads from it fail at once: net/http would otherwise
// read and discard what is left of the body (up to 256 KiB, without any
// deadline) before answering, from a client that may never send it.
func (h *Handler) writeProblem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	ri := info(r.Context())
	if ri.body != nil && !ri.body.done && r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	hdr := w.Header()
	hdr.Del("Content-Length")
	hdr.Del("Content-Disposition")
	hdr.Del("Content-Encoding")
	p := api.NewProblemStatus(status, code, detail)
	p.RequestID = ri.id
	api.WriteProblem(w, p)
}

// writeJSON writes v as the response body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	// Values are plain structs that always encode; a write error means
	// the client has gone, and there is no one left to tell.
	_ = json.NewEncoder(w).Encode(v)
}
