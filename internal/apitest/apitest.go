// Package apitest holds the HTTP API's tests to its OpenAPI document
// (api/openapi.yaml): a validating http.RoundTripper checks every request a
// test sends and every response it gets, and fails the test on any mismatch.
//
// The tests of httpapi and of the daemon (cmd/filehub) send all their HTTP
// traffic through it, so the document cannot drift from what the server
// really answers without a test failing. It uses kin-openapi's openapi3filter,
// which validates OpenAPI 3.1 schemas with a JSON Schema 2020-12 validator.
package apitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/filehub/filehub/api"
)

// maxJSONBody bounds the JSON bodies read for validation. The API's JSON
// requests are at most 64 KiB and its JSON responses (pages of at most 1000
// files, cleanup reports) far below this.
const maxJSONBody = 32 << 20

// Document is the parsed OpenAPI document and a router over its operations.
type Document struct {
	// Doc is the document, validated; treat it as read-only.
	Doc    *openapi3.T
	router routers.Router
}

var loadDoc = sync.OnceValues(func() (*Document, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPIYAML())
	if err != nil {
		return nil, fmt.Errorf("load api/openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("api/openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	// Route by path alone: the tests' servers listen on random ports, not
	// on the documented default address. The router gets its own shallow
	// copy so that Doc keeps the servers as written.
	routed := *doc
	routed.Servers = nil
	router, err := gorillamux.NewRouter(&routed)
	if err != nil {
		return nil, fmt.Errorf("route api/openapi.yaml: %w", err)
	}
	return &Document{Doc: doc, router: router}, nil
})

// Load returns the parsed document, failing tb if it does not load or is
// not a valid OpenAPI 3.1 document. It is parsed once per test binary.
func Load(tb testing.TB) *Document {
	tb.Helper()
	d, err := loadDoc()
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// Transport returns a RoundTripper that sends requests with base (nil:
// http.DefaultTransport) and checks each exchange against the document,
// reporting every mismatch with tb.Errorf:
//
//   - a request to a path and method the document lacks must be answered
//     404 or 405 (the server lacks it too);
//   - a request that violates the document (parameters, JSON body,
//     credentials where the operation needs them) must be refused with a
//     4xx status: if the server accepts what the document forbids, the
//     two disagree;
//   - every response must have a status the operation documents, the
//     documented headers (Retry-After on 429, ETag on downloads …) and, for
//     JSON and problem+json bodies, a body valid against the schema; other
//     bodies (file content, metrics, event streams) are passed through
//     unread, their Content-Type checked against the documented media types.
//
// Mismatches are reported, never turned into transport errors, so the test
// goes on and sees the server's real answer. Reports stop when tb's test has
// ended (a connection still in use by a leftover goroutine).
func Transport(tb testing.TB, base http.RoundTripper) http.RoundTripper {
	tb.Helper()
	if base == nil {
		base = http.DefaultTransport
	}
	t := &transport{doc: Load(tb), base: base, tb: tb}
	tb.Cleanup(func() { t.done.Store(true) })
	return t
}

type transport struct {
	doc  *Document
	base http.RoundTripper
	tb   testing.TB
	done atomic.Bool
}

func (t *transport) errorf(format string, args ...any) {
	if t.done.Load() {
		return
	}
	t.tb.Errorf("OpenAPI: "+format, args...)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections and
// httptest.Server.Close reach the base transport.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := req.Method + " " + req.URL.Path
	route, pathParams, routeErr := t.doc.router.FindRoute(req)
	if routeErr != nil {
		resp, err := t.base.RoundTrip(req)
		if err == nil && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.errorf("%s is not in the document (%v), but the server answered %d", op, routeErr, resp.StatusCode)
		}
		return resp, err
	}

	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: pathParams,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:    bearerPresent,
			IncludeResponseStatus: true,
			MultiError:            true,
			SkipSettingDefaults:   true,
		},
	}
	reqErr := t.validateRequest(req, in)

	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if reqErr != nil && (resp.StatusCode < 400 || resp.StatusCode >= 500) {
		t.errorf("%s violates the document, yet the server answered %d:\n%v", op, resp.StatusCode, reqErr)
	}
	t.validateResponse(op, in, resp)
	recordCoverage(route.Method+" "+route.Path, resp.StatusCode)
	return resp, nil
}

// coverageMu serializes appends to $FILEHUB_OPENAPI_COVERAGE.
var coverageMu sync.Mutex

// recordCoverage appends "METHOD /path STATUS" for each validated exchange
// to the file named by $FILEHUB_OPENAPI_COVERAGE, if set, so that a test
// run can show which documented responses the tests exercise
// (docs/api.md). Failing to record is not the test's failure.
func recordCoverage(op string, status int) {
	path := os.Getenv("FILEHUB_OPENAPI_COVERAGE")
	if path == "" {
		return
	}
	coverageMu.Lock()
	defer coverageMu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintf(f, "%s %d\n", op, status)
	f.Close()
}

// validateRequest checks req against the document, reading a JSON body
// (and putting it back) but leaving any other body to stream untouched.
func (t *transport) validateRequest(req *http.Request, in *openapi3filter.RequestValidationInput) error {
	// Validation must not consume or alter what is sent, so it works on a
	// shallow copy whose body, if read, is a copy.
	vreq := req.Clone(req.Context())
	in.Request = vreq
	if req.Body == nil || req.Body == http.NoBody || !isJSON(req.Header.Get("Content-Type")) {
		in.Options.ExcludeRequestBody = true
		vreq.Body = http.NoBody
	} else {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxJSONBody+1))
		req.Body.Close()
		if err != nil {
			return fmt.Errorf("read the request body: %w", err)
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		if len(b) > maxJSONBody {
			in.Options.ExcludeRequestBody = true
			vreq.Body = http.NoBody
		} else {
			vreq.Body = io.NopCloser(bytes.NewReader(b))
		}
	}
	err := openapi3filter.ValidateRequest(req.Context(), in)
	in.Request = req
	return err
}

// validateResponse checks resp against in's operation. A JSON body is read
// and put back; other bodies are left alone.
func (t *transport) validateResponse(op string, in *openapi3filter.RequestValidationInput, resp *http.Response) {
	opts := *in.Options
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &opts,
	}
	ct := resp.Header.Get("Content-Type")
	switch {
	case resp.StatusCode == http.StatusSwitchingProtocols:
		// The body is the upgraded connection: only the status and
		// headers are the document's business.
		opts.ExcludeResponseBody = true
		out.Body = io.NopCloser(strings.NewReader(""))
	case isJSON(ct):
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody+1))
		resp.Body.Close()
		resp.Body = &replayBody{Reader: bytes.NewReader(b), err: err}
		if err != nil || len(b) > maxJSONBody {
			// A body cut short cannot be judged; the test sees the
			// error when it reads.
			opts.ExcludeResponseBody = true
		}
		out.SetBodyBytes(b)
	default:
		opts.ExcludeResponseBody = true
		out.Body = io.NopCloser(strings.NewReader(""))
		t.checkMediaType(op, in, resp)
	}
	if err := openapi3filter.ValidateResponse(in.Request.Context(), out); err != nil {
		t.errorf("%s: response %d does not match the document:\n%v", op, resp.StatusCode, err)
	}
}

// checkMediaType checks that a non-JSON response's Content-Type is one the
// operation documents for its status.
func (t *transport) checkMediaType(op string, in *openapi3filter.RequestValidationInput, resp *http.Response) {
	if in.Request.Method == http.MethodHead || resp.StatusCode == http.StatusNotModified {
		return
	}
	rr := in.Route.Operation.Responses.Status(resp.StatusCode)
	if rr == nil || rr.Value == nil {
		return // ValidateResponse reports the undocumented status
	}
	content := rr.Value.Content
	ct := resp.Header.Get("Content-Type")
	if len(content) == 0 {
		if resp.ContentLength > 0 {
			t.errorf("%s: response %d has a %q body, but the document says it has none", op, resp.StatusCode, ct)
		}
		return
	}
	if content.Get(ct) == nil {
		t.errorf("%s: response %d has Content-Type %q, which the document does not list", op, resp.StatusCode, ct)
	}
}

// bearerPresent is the document's bearer scheme as far as the document can
// tell: an Authorization header with a Bearer credential. Whether the key
// is valid is the server's business (a 401 is documented everywhere).
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme == nil || in.SecurityScheme.Type != "http" || !strings.EqualFold(in.SecurityScheme.Scheme, "bearer") {
		return in.NewError(errors.New("apitest knows only the http bearer scheme"))
	}
	scheme, cred, ok := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(cred) == "" {
		return in.NewError(errors.New("no Bearer credentials"))
	}
	return nil
}

// isJSON reports whether a media type is JSON (application/json,
// application/problem+json, …).
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// replayBody serves a body read for validation, then the error that ended
// the original read, if any.
type replayBody struct {
	*bytes.Reader
	err error
}

func (b *replayBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF && b.err != nil {
		return n, b.err
	}
	return n, err
}

func (b *replayBody) Close() error { return nil }

// Proxy starts a reverse proxy to target (a base URL) whose transport is
// Transport, and returns its URL: handing it to code under test in place of
// the server's own URL checks all of that code's traffic against the
// document without changing the code (the CLI builds its own transports).
// Bodies stream through (nothing is buffered but JSON), and WebSocket
// upgrades pass. The proxy is closed when tb's test ends.
func Proxy(tb testing.TB, target string) string {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	base := &http.Transport{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
		},
		Transport:     Transport(tb, base),
		FlushInterval: -1,
		// A backend that cuts a connection is what some tests are
		// about; the proxy answers 502 and need not log it.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(rp)
	tb.Cleanup(func() {
		// A stream still open at the end (an event stream nobody
		// closed) would make Close wait for ever: the backend that
		// would end it is closed after the proxy.
		srv.CloseClientConnections()
		srv.Close()
		base.CloseIdleConnections()
	})
	return srv.URL
}
