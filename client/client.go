// Package client is a Go client for filehub's HTTP API.
//
// Every method takes a context first and returns errors as *filehub.Error,
// so callers test them the same way on both sides of the wire:
//
//	f, err := c.Stat(ctx, id)
//	if errors.Is(err, filehub.ErrNotFound) { … }
//
// Errors the server reports as RFC 9457 problem+json keep their code and
// client-safe message; other failed responses (a proxy's HTML error page, for
// instance) are mapped from their status; transport failures are
// EUNAVAILABLE, except that a cancelled or expired context is returned as is
// (wrapped), so errors.Is(err, context.Canceled) still works.
package client

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
)

// DefaultUserAgent is sent when no WithUserAgent option is given.
const DefaultUserAgent = "filehub-client/1"

// maxErrorBody bounds how much of an error response is read: problem
// documents are small, and a misbehaving peer must not make us buffer a
// huge page.
const maxErrorBody = 64 << 10

// maxJSONBody bounds successful JSON responses (a page of 1000 files is well
// under 1 MiB).
const maxJSONBody = 16 << 20

// Client talks to one filehub server with one API key. It is safe for
// concurrent use.
type Client struct {
	base      string // without trailing slash
	key       string
	hc        *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests with hc instead of
// http.DefaultClient, for custom transports, TLS settings or timeouts. Note
// that a Timeout on hc also bounds uploads and downloads; prefer contexts.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTLSConfig makes the Client talk to an https:// server with cfg (for
// example RootCAs holding a private CA, see CertPool), on a transport of
// its own cloned from http.DefaultTransport. It replaces an earlier
// WithHTTPClient; give the TLS settings to that client's transport
// instead if you need both.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg
		c.hc = &http.Client{Transport: tr}
	}
}

// CertPool returns a pool of the PEM certificates in pemCerts (a private
// CA's certificate file), for tls.Config.RootCAs. Returns EINVALID if it
// holds no certificate.
func CertPool(pemCerts []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemCerts) {
		return nil, filehub.Errorf(filehub.EINVALID, "no PEM certificate found")
	}
	return pool, nil
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a Client for the server at baseURL (for example
// "http://127.0.0.1:8080") that authenticates with the API key secret key.
// It does not contact the server; a malformed baseURL is reported by the
// first request, as EINVALID.
func New(baseURL, key string, opts ...Option) *Client {
	c := &Client{
		base:      strings.TrimRight(strings.TrimSpace(baseURL), "/"),
		key:       strings.TrimSpace(key),
		hc:        http.DefaultClient,
		userAgent: DefaultUserAgent,
	}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// Upload stores the content read from r as a file called name (the server
// sanitizes it) and returns the stored record, whose Deduplicated field says
// whether the content was already stored. size is the exact length of r's
// content, or -1 if unknown, in which case the body is sent chunked; a size
// that does not match the content makes the request fail.
//
// Errors: ETOOLARGE over the server's size limit, EUNSUPPORTED for a refused
// content type, ESTORAGE when the server's disk is (nearly) full, ERATELIMIT
// and EUNAVAILABLE when the server asks to retry later, EUNAUTHORIZED and
// EFORBIDDEN for a bad or insufficient key.
func (c *Client) Upload(ctx context.Context, name string, r io.Reader, size int64) (*api.Upload, error) {
	q := url.Values{"name": {name}}
	var body io.Reader = r
	if size == 0 {
		// A zero ContentLength with a non-nil body means "unknown" to
		// net/http; NoBody makes an empty upload an explicit 0.
		body = http.NoBody
	}
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/files?"+q.Encode(), body)
	if err != nil {
		return nil, err
	}
	if size >= 0 {
		req.ContentLength = size
	} else {
		req.ContentLength = -1
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	var up api.Upload
	if err := c.doJSON(req, http.StatusCreated, &up); err != nil {
		return nil, err
	}
	if up.File == nil {
		return nil, filehub.Errorf(filehub.EINTERNAL, "server returned an empty upload record")
	}
	return &up, nil
}

// List returns a page of at most limit live files (0: the server's default),
// oldest first, starting at cursor ("" for the first page), and the cursor
// of the next page, "" on the last page. Returns EINVALID for a bad limit or
// cursor.
func (c *Client) List(ctx context.Context, limit int, cursor string) ([]*filehub.File, string, error) {
	q := url.Values{}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	path := "/v1/files"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, "", err
	}
	var page api.FilePage
	if err := c.doJSON(req, http.StatusOK, &page); err != nil {
		return nil, "", err
	}
	return page.Files, page.NextCursor, nil
}

// Stat returns the record of a live file. Returns ENOTFOUND if there is no
// such file or it is soft-deleted.
func (c *Client) Stat(ctx context.Context, id string) (*filehub.File, error) {
	return c.fileRequest(ctx, http.MethodGet, filePath(id), http.StatusOK)
}

// Delete soft-deletes a file and returns its record, with DeletedAt and
// PurgeAfter set: the file can be restored until PurgeAfter. Returns
// ENOTFOUND if there is no live file with that ID.
func (c *Client) Delete(ctx context.Context, id string) (*filehub.File, error) {
	return c.fileRequest(ctx, http.MethodDelete, filePath(id), http.StatusOK)
}

// Restore undoes a soft delete and returns the live record. Returns
// ENOTFOUND if there is no soft-deleted file with that ID.
func (c *Client) Restore(ctx context.Context, id string) (*filehub.File, error) {
	return c.fileRequest(ctx, http.MethodPost, filePath(id)+"/restore", http.StatusOK)
}

// Ready returns nil if the server is ready to take uploads (its stores
// answer and free space is above its floor), otherwise the server's reason,
// usually EUNAVAILABLE or ESTORAGE. It needs a key with the metrics (or
// admin) scope.
func (c *Client) Ready(ctx context.Context) error {
	req, err := c.newRequest(ctx, http.MethodGet, "/readyz", nil)
	if err != nil {
		return err
	}
	return c.doJSON(req, http.StatusOK, nil)
}

// Download is an open download. The caller must Close it.
type Download struct {
	// Name is the file's sanitized name, from Content-Disposition.
	Name string
	// Size is the content length in bytes, -1 if the server did not say.
	Size int64
	// SHA256 is the content's lowercase hex digest, from the ETag.
	SHA256 string
	// ContentType is the stored (sniffed) content type.
	ContentType string
	// Body is the content. Reading it to the end verifies Size and SHA256:
	// if the bytes received do not match, the final Read returns an
	// EINTERNAL error instead of io.EOF, so a truncated or corrupted
	// transfer is never mistaken for the file.
	Body io.ReadCloser
}

// Close releases the connection.
func (d *Download) Close() error {
	if d.Body == nil {
		return nil
	}
	return d.Body.Close()
}

// Open starts downloading a live file's content. Returns ENOTFOUND if there
// is no such file or it is soft-deleted.
func (c *Client) Open(ctx context.Context, id string) (*Download, error) {
	req, err := c.newRequest(ctx, http.MethodGet, filePath(id)+"/content", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	d := &Download{
		Size:        resp.ContentLength,
		SHA256:      strings.Trim(resp.Header.Get("ETag"), `"`),
		ContentType: resp.Header.Get("Content-Type"),
	}
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		d.Name = params["filename"] // mime decodes filename* into filename
	}
	if !filehub.ValidSHA256(d.SHA256) {
		resp.Body.Close()
		return nil, filehub.Errorf(filehub.EINTERNAL, "server sent no valid content digest (ETag %q)", resp.Header.Get("ETag"))
	}
	d.Body = &verifyingReader{rc: resp.Body, h: sha256.New(), want: d.SHA256, size: d.Size}
	return d, nil
}

// DownloadTo writes a live file's content to w and returns its description
// (with a nil Body). The content is verified against its size and SHA-256;
// on a mismatch the error is EINTERNAL and w has received bad bytes, so
// callers writing to a file should remove it.
func (c *Client) DownloadTo(ctx context.Context, id string, w io.Writer) (*Download, error) {
	d, err := c.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	body := d.Body
	defer body.Close()
	d.Body = nil
	if _, err := io.Copy(w, body); err != nil {
		return nil, c.transportError(ctx, err)
	}
	return d, nil
}

// verifyingReader checks the content's length and digest at EOF.
type verifyingReader struct {
	rc   io.ReadCloser
	h    hash.Hash
	want string
	size int64
	n    int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if errors.Is(err, io.EOF) {
		if v.size >= 0 && v.n != v.size {
			return n, filehub.Errorf(filehub.EINTERNAL, "download truncated: got %d of %d bytes", v.n, v.size)
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, filehub.Errorf(filehub.EINTERNAL, "download corrupted: content hashes to %s, want %s", got, v.want)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.rc.Close() }

func filePath(id string) string { return "/v1/files/" + url.PathEscape(id) }

func (c *Client) fileRequest(ctx context.Context, method, path string, want int) (*filehub.File, error) {
	req, err := c.newRequest(ctx, method, path, nil)
	if err != nil {
		return nil, err
	}
	var f filehub.File
	if err := c.doJSON(req, want, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	u, err := url.Parse(c.base + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, filehub.Errorf(filehub.EINVALID, "invalid server URL %q (want http[s]://host[:port])", c.base)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, filehub.WrapError(filehub.EINVALID, "cannot build request", err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	return req, nil
}

func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(req.Context(), err)
	}
	return resp, nil
}

// transportError classifies a failure to talk to the server.
func (c *Client) transportError(ctx context.Context, err error) error {
	var fe *filehub.Error
	if errors.As(err, &fe) {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("filehub client: %w", err)
	}
	return filehub.WrapError(filehub.EUNAVAILABLE, "cannot reach the filehub server at "+c.base, err)
}

// doJSON sends req and decodes a response with status want into v (nil:
// discard it). Any other status is turned into an *filehub.Error.
func (c *Client) doJSON(req *http.Request, want int, v any) error {
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return responseError(resp)
	}
	if v == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSONBody)).Decode(v); err != nil {
		if req.Context().Err() != nil {
			return fmt.Errorf("filehub client: %w", req.Context().Err())
		}
		return filehub.WrapError(filehub.EINTERNAL, "malformed response from the server", err)
	}
	return nil
}

// responseError turns a failed response into an *filehub.Error.
func responseError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var p api.Problem
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == api.ProblemContentType || mt == "application/json" {
		_ = json.Unmarshal(body, &p)
	}
	fe := p.Err(resp.StatusCode)
	code := fe.Code
	msg := fe.Message
	if msg == "" {
		msg = fmt.Sprintf("server answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	rid := p.RequestID
	if rid == "" {
		rid = resp.Header.Get("X-Request-ID")
	}
	return &filehub.Error{Code: code, Message: msg, Err: &RequestError{
		StatusCode: resp.StatusCode,
		RequestID:  rid,
		RetryAfter: resp.Header.Get("Retry-After"),
	}}
}

// RequestError is the cause attached to every *filehub.Error built from a
// server response (reach it with errors.As). It carries what support and
// retry logic need beyond the code.
type RequestError struct {
	StatusCode int    // the HTTP status
	RequestID  string // the server's request id, for its logs
	RetryAfter string // the Retry-After header, if any (seconds)
}

func (e *RequestError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.StatusCode)
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}
