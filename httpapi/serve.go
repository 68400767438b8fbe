package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/filehub/filehub"
)

// requestInfo is what the outer layer learns about a request and the
// handlers need: its id, its logger, and whether its body was read to the
// end.
type requestInfo struct {
	id   string
	log  *slog.Logger
	body *trackedBody
	key  *filehub.APIKey // set after authentication
}

type ctxKey struct{}

func info(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(ctxKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{log: slog.Default()}
}

// APIKeyFromContext returns the API key that authenticated the request
// whose context this is, or nil.
func APIKeyFromContext(ctx context.Context) *filehub.APIKey { return info(ctx).key }

// RequestIDFromContext returns the request id of the request whose context
// this is, or "".
func RequestIDFromContext(ctx context.Context) string { return info(ctx).id }

// requestIDPattern is what an incoming X-Request-ID must look like to be
// trusted: short and free of anything that could forge log lines.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// begin gives the request an id and a logger, and tracks its body.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get("X-Request-ID")
	if !requestIDPattern.MatchString(id) {
		id = filehub.NewID("req_")
	}
	w.Header().Set("X-Request-ID", id)
	ri := &requestInfo{id: id, log: h.log.With("request_id", id)}
	if r.Body != nil && r.Body != http.NoBody {
		ri.body = &trackedBody{ReadCloser: r.Body}
		r.Body = ri.body
	}
	return r.WithContext(context.WithValue(r.Context(), ctxKey{}, ri))
}

// ServeHTTP dispatches r to its route, answering unknown paths (404) and
// methods (405) with problem documents, and records the request's metrics
// under its route pattern.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	r = h.begin(sw, r)
	_, pattern := h.mux.Handler(r)
	route := pattern
	if route == "" {
		route = "unmatched" // never the raw path: that would be unbounded
	}
	defer func() {
		p := recover()
		h.metrics.observe(route, r.Method, sw.code(), time.Since(start))
		if p == nil {
			return
		}
		if p == http.ErrAbortHandler {
			panic(p)
		}
		info(r.Context()).log.Error("panic serving request", "panic", p, "stack", string(debug.Stack()))
		if sw.wroteHeader {
			// Half a response is on the wire: only cutting the
			// connection tells the client it is broken.
			panic(http.ErrAbortHandler)
		}
		h.writeError(sw, r, filehub.WrapError(filehub.EINTERNAL, "internal error", fmt.Errorf("panic: %v", p)))
	}()
	if pattern == "" {
		h.unmatched(sw, r, h.mux)
		return
	}
	h.mux.ServeHTTP(sw, r)
}

// unmatched answers a request no route matches: 405 with Allow if the path
// exists with other methods, else 404. ServeMux knows which; its plain-text
// answer is captured and replaced by a problem document.
func (h *Handler) unmatched(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	mh, _ := mux.Handler(r)
	c := &captureWriter{header: http.Header{}}
	mh.ServeHTTP(c, r)
	if c.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", c.header.Get("Allow"))
		h.writeProblem(w, r, http.StatusMethodNotAllowed, filehub.EINVALID,
			fmt.Sprintf("method %s is not allowed here (allowed: %s)", r.Method, c.header.Get("Allow")))
		return
	}
	h.writeProblem(w, r, http.StatusNotFound, filehub.ENOTFOUND, "no such endpoint")
}

// wrap adapts a route: authentication, scope check and rate limit, then the
// route's handler, whose error becomes a problem document.
func (h *Handler) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.Scope != "" {
			if err := h.authorize(w, r, rt.Scope); err != nil {
				h.writeError(w, r, err)
				return
			}
			r = r.WithContext(filehub.WithActor(r.Context(), info(r.Context()).key.ID)) // the audit log's actor
		}
		if err := rt.handle(h, w, r); err != nil {
			h.writeError(w, r, err)
		}
	})
}

// statusWriter records the status of the response for metrics and panics.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) code() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// captureWriter swallows a response, keeping its status and headers.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
func (c *captureWriter) Write(p []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return len(p), nil
}

// trackedBody remembers whether the request body was read to its end, so an
// error response can close the connection instead of leaving net/http to
// drain a possibly huge unread body.
type trackedBody struct {
	io.ReadCloser
	done bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.done = true
	}
	return n, err
}
