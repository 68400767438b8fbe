// Package openai is a client of the OpenAI-compatible files API
// (POST /files, GET /files, GET /files/{id}, DELETE /files/{id}) that
// Moonshot (Kimi), Z.ai (GLM) and OpenAI offer, implementing
// filehub.Provider.
//
// Uploads stream: the multipart body is the file's content between a small
// header and trailer, never buffered whole, and it is sent with its exact
// Content-Length. Requests that fail with 429 or 5xx, time out or lose
// their connection are retried with exponential backoff and jitter,
// honouring Retry-After; other 4xx answers are final. Errors carry the
// provider's name, the HTTP status and the provider's own message.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
)

// Preset is a provider's documented defaults.
type Preset struct {
	BaseURL     string
	Purpose     string
	MaxFileSize int64 // bytes; 0: no known limit
	FileQuota   int   // files per account; 0: no known limit
}

// Presets are the defaults of the providers filehub knows by name. Any
// other name needs a base URL.
//
//   - kimi: Moonshot AI, https://api.moonshot.cn/v1, purpose file-extract,
//     at most 1,000 files of 100 MB each per account.
//   - glm: Z.ai (Zhipu), https://open.bigmodel.cn/api/paas/v4, purpose
//     file-extract: 50 MB per file (images 5 MB), 100 files in all.
//   - qwen: Alibaba Cloud Model Studio (DashScope), OpenAI-compatible mode,
//     https://dashscope.aliyuncs.com/compatible-mode/v1, purpose
//     file-extract: 150 MB per file, 10,000 files per account.
//   - openai: OpenAI, https://api.openai.com/v1, purpose assistants,
//     512 MB per file, no file count limit.
var Presets = map[string]Preset{
	"kimi":   {BaseURL: "https://api.moonshot.cn/v1", Purpose: "file-extract", MaxFileSize: 100 << 20, FileQuota: 1000},
	"glm":    {BaseURL: "https://open.bigmodel.cn/api/paas/v4", Purpose: "file-extract", MaxFileSize: 50 << 20, FileQuota: 100},
	"qwen":   {BaseURL: "https://dashscope.aliyuncs.com/compatible-mode/v1", Purpose: "file-extract", MaxFileSize: 150 << 20, FileQuota: 10000},
	"openai": {BaseURL: "https://api.openai.com/v1", Purpose: "assistants", MaxFileSize: 512 << 20},
}

// Config configures a Client. Name, BaseURL, APIKey and Purpose are
// required (ConfigFor fills BaseURL and Purpose from a preset); every other
// field says its default.
type Config struct {
	Name    string // the provider's name in filehub, e.g. "kimi"
	BaseURL string // including the version path, e.g. https://api.moonshot.cn/v1
	APIKey  string
	Purpose string // the purpose uploads are made with
	// MaxFileSize is the largest file the provider accepts (bytes); 0: no
	// known limit.
	MaxFileSize int64
	// FileQuota is the most files the provider keeps per account; 0: no
	// known limit. Informational for now: the cleanup of provider
	// accounts will use it.
	FileQuota int

	// HTTPClient sends the requests. Default: a client of its own whose
	// transport bounds connecting (10s) and TLS handshakes (10s).
	HTTPClient *http.Client
	// Timeout bounds each attempt of a list, retrieve or delete request,
	// answer included. Default 30s.
	Timeout time.Duration
	// UploadTimeout bounds each attempt of an upload, the body included.
	// Default 10m.
	UploadTimeout time.Duration
	// MaxAttempts is how often a request is tried in all. Default 5.
	MaxAttempts int
	// InitialInterval is the first backoff between attempts, growing
	// 1.5x per attempt with ±50% jitter up to MaxInterval. Defaults 500ms
	// and 30s.
	InitialInterval time.Duration
	MaxInterval     time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits for; a
	// provider asking for more gets the error instead. Default 2m.
	MaxRetryAfter time.Duration
	// Registerer receives filehub_provider_api_errors_total, shared by
	// all clients registered on it. Default: none.
	Registerer prometheus.Registerer
}

// ConfigFor returns a Config for the provider name with the preset's
// defaults if name has one (see Presets), and only the name otherwise.
func ConfigFor(name string) Config {
	p := Presets[name]
	return Config{Name: name, BaseURL: p.BaseURL, Purpose: p.Purpose, MaxFileSize: p.MaxFileSize, FileQuota: p.FileQuota}
}

// Client is a provider's files API. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string // without a trailing slash
	hc   *http.Client
	// apiErrors counts failed attempts by provider and status.
	apiErrors *prometheus.CounterVec
	// sleep waits between attempts; tests replace it to observe waits.
	sleep func(ctx context.Context, d time.Duration) error
}

var _ filehub.Provider = (*Client)(nil)

// New returns a client for cfg. It returns EINVALID if a required field is
// missing or the base URL is not an absolute http(s) URL.
func New(cfg Config) (*Client, error) {
	if cfg.Name == "" || cfg.APIKey == "" || cfg.Purpose == "" {
		return nil, filehub.Errorf(filehub.EINVALID, "provider %q needs a name, an API key and a purpose", cfg.Name)
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, filehub.Errorf(filehub.EINVALID, "provider %s: base URL %q is not an absolute http(s) URL", cfg.Name, cfg.BaseURL)
	}
	if cfg.MaxFileSize < 0 || cfg.FileQuota < 0 {
		return nil, filehub.Errorf(filehub.EINVALID, "provider %s: negative max file size or file quota", cfg.Name)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.UploadTimeout <= 0 {
		cfg.UploadTimeout = 10 * time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.InitialInterval <= 0 {
		cfg.InitialInterval = 500 * time.Millisecond
	}
	if cfg.MaxInterval <= 0 {
		cfg.MaxInterval = 30 * time.Second
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = 2 * time.Minute
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = 10 * time.Second
		hc = &http.Client{Transport: tr}
	}
	apiErrors, err := newAPIErrors(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("provider %s: register metrics: %w", cfg.Name, err)
	}
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/"), hc: hc, apiErrors: apiErrors, sleep: sleepCtx}, nil
}

// Name returns the provider's name.
func (c *Client) Name() string { return c.cfg.Name }

// Purpose returns the purpose uploads are made with.
func (c *Client) Purpose() string { return c.cfg.Purpose }

// MaxFileSize returns the largest file the provider accepts; 0: no limit.
func (c *Client) MaxFileSize() int64 { return c.cfg.MaxFileSize }

// FileQuota returns the most files the provider keeps; 0: no limit.
func (c *Client) FileQuota() int { return c.cfg.FileQuota }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// APIError is an error answer of the provider. It is the cause (Err) of
// the *filehub.Error the client returns.
type APIError struct {
	Provider string
	Op       string // e.g. "POST /files"
	Status   int
	// Message is the provider's error message (or the start of its body).
	Message string
	// RetryAfter is the wait the provider asked for; 0 if none.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("provider %s: %s: %d %s: %s", e.Provider, e.Op, e.Status, http.StatusText(e.Status), e.Message)
}

// retryable reports whether the answer may change if asked again.
func (e *APIError) retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// code maps a provider status to a filehub code: what it means for the
// caller of filehub, not for the provider's client. The provider refusing
// filehub's key is filehub's outage, not the caller's missing scope.
func (e *APIError) code() string {
	switch {
	case e.Status == http.StatusNotFound:
		return filehub.ENOTFOUND
	case e.Status == http.StatusRequestEntityTooLarge:
		return filehub.ETOOLARGE
	case e.Status == http.StatusTooManyRequests:
		return filehub.ERATELIMIT
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || e.Status >= 500:
		return filehub.EUNAVAILABLE
	}
	return filehub.EINVALID
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

func readAPIError(provider, op string, resp *http.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Provider: provider, Op: op, Status: resp.StatusCode}
	var parsed struct {
		Error json.RawMessage `json:"error"`
		Msg   string          `json:"message"`
	}
	if json.Unmarshal(body, &parsed) == nil {
		var inner struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(parsed.Error, &inner) == nil && inner.Message != "":
			e.Message = inner.Message
		case json.Unmarshal(parsed.Error, &s) == nil && s != "":
			e.Message = s
		case parsed.Msg != "":
			e.Message = parsed.Msg
		}
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 512 {
			e.Message = e.Message[:512] + "…"
		}
	}
	if e.Message == "" {
		e.Message = "(no message)"
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// parseRetryAfter reads a Retry-After of delay-seconds or an HTTP date; 0
// if absent or malformed.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, 1<<31)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// attemptError is one failed attempt: err, and whether trying again may
// help and after how long at least.
type attemptError struct {
	err       error
	retry     bool
	notBefore time.Duration
}

// do runs attempt until it succeeds, fails for good or MaxAttempts are
// spent, waiting between attempts with exponential backoff and jitter, or
// as long as the provider's Retry-After says.
func (c *Client) do(ctx context.Context, op string, attempt func(ctx context.Context) *attemptError) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = c.cfg.InitialInterval
	b.MaxInterval = c.cfg.MaxInterval
	b.Reset()
	for n := 1; ; n++ {
		ae := attempt(ctx)
		if ae == nil {
			return nil
		}
		if ctx.Err() != nil {
			return filehub.WrapError(filehub.EUNAVAILABLE, fmt.Sprintf("provider %s: %s: %v", c.cfg.Name, op, context.Cause(ctx)), ae.err)
		}
		if !ae.retry || n >= c.cfg.MaxAttempts {
			return c.final(op, ae.err, n)
		}
		wait := b.NextBackOff()
		if ae.notBefore > c.cfg.MaxRetryAfter {
			return c.final(op, ae.err, n)
		}
		wait = max(wait, ae.notBefore)
		if err := c.sleep(ctx, wait); err != nil {
			return filehub.WrapError(filehub.EUNAVAILABLE, fmt.Sprintf("provider %s: %s: %v", c.cfg.Name, op, err), ae.err)
		}
	}
}

// final turns the last attempt's error into the *filehub.Error returned.
func (c *Client) final(op string, err error, attempts int) error {
	tries := ""
	if attempts > 1 {
		tries = fmt.Sprintf(" (after %d attempts)", attempts)
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return filehub.WrapError(ae.code(), ae.Error()+tries, ae)
	}
	code := filehub.EUNAVAILABLE
	var fe *filehub.Error
	if errors.As(err, &fe) {
		code = fe.Code // the content could not be read: its code, not the provider's
	}
	return filehub.WrapError(code, fmt.Sprintf("provider %s: %s: %v%s", c.cfg.Name, op, err, tries), err)
}

// send sends one request and decodes a 2xx answer's JSON into v.
func (c *Client) send(ctx context.Context, op string, req *http.Request, v any) *attemptError {
	req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		// A connection that failed or timed out may work next time. An
		// upload whose answer was lost may have been stored: a retry can
		// leave a copy at the provider that no mapping names, which is
		// what the provider orphan report is for.
		c.apiErrors.WithLabelValues(c.cfg.Name, statusTransport).Inc()
		return &attemptError{err: err, retry: true}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		c.apiErrors.WithLabelValues(c.cfg.Name, strconv.Itoa(resp.StatusCode)).Inc()
		e := readAPIError(c.cfg.Name, op, resp)
		return &attemptError{err: e, retry: e.retryable(), notBefore: e.RetryAfter}
	}
	if v == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(v); err != nil {
		// A truncated answer is a transport failure; a 2xx that is not
		// JSON will not become JSON.
		return &attemptError{err: fmt.Errorf("decode the answer: %w", err), retry: errors.Is(err, io.ErrUnexpectedEOF)}
	}
	return nil
}

// apiFile is the files API's file object.
type apiFile struct {
	ID        string `json:"id"`
	Bytes     int64  `json:"bytes"`
	CreatedAt int64  `json:"created_at"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
}

func (f *apiFile) toFile() *filehub.ProviderFile {
	return &filehub.ProviderFile{ID: f.ID, Filename: f.Filename, Purpose: f.Purpose, Bytes: f.Bytes,
		CreatedAt: time.Unix(f.CreatedAt, 0).UTC()}
}

// Upload stores content at the provider; see filehub.Provider. Content
// over MaxFileSize is refused with ETOOLARGE before anything is sent.
func (c *Client) Upload(ctx context.Context, name, purpose string, size int64, open func() (io.ReadCloser, error)) (*filehub.ProviderFile, error) {
	if c.cfg.MaxFileSize > 0 && size > c.cfg.MaxFileSize {
		return nil, filehub.Errorf(filehub.ETOOLARGE, "provider %s accepts files up to %d bytes, this one has %d", c.cfg.Name, c.cfg.MaxFileSize, size)
	}
	if purpose == "" {
		purpose = c.cfg.Purpose
	}
	if name == "" {
		name = "file"
	}
	head, tail, ctype, err := multipartFrame(name, purpose)
	if err != nil {
		return nil, filehub.WrapError(filehub.EINTERNAL, "build the multipart body", err)
	}
	const op = "POST /files"
	var out apiFile
	err = c.do(ctx, op, func(ctx context.Context) *attemptError {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.UploadTimeout)
		defer cancel()
		rc, err := open()
		if err != nil {
			return &attemptError{err: fmt.Errorf("open the content: %w", err)}
		}
		defer rc.Close()
		// The body is header, content, trailer: streamed, with a known
		// length, so the provider sees an ordinary upload rather than a
		// chunked one (which some gateways refuse), and a content shorter
		// or longer than size fails the request instead of storing a
		// truncated file.
		body := io.MultiReader(bytes.NewReader(head), io.LimitReader(rc, size), &exact{r: rc}, bytes.NewReader(tail))
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/files", body)
		if err != nil {
			return &attemptError{err: err}
		}
		req.ContentLength = int64(len(head)) + size + int64(len(tail))
		req.Header.Set("Content-Type", ctype)
		return c.send(ctx, op, req, &out)
	})
	if err != nil {
		return nil, err
	}
	if out.ID == "" {
		return nil, filehub.Errorf(filehub.EUNAVAILABLE, "provider %s: %s: the answer names no file ID", c.cfg.Name, op)
	}
	return out.toFile(), nil
}

// exact reads nothing, and fails if its reader, which must be drained by
// the size-limited reader before it, still has content: the content is
// longer than announced.
type exact struct{ r io.Reader }

func (e *exact) Read([]byte) (int, error) {
	var one [1]byte
	n, err := io.ReadFull(e.r, one[:])
	if n > 0 {
		return 0, errors.New("the content is longer than its size")
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return 0, io.EOF
	}
	return 0, err
}

// multipartFrame returns the bytes before and after the file's content in a
// multipart/form-data body with a purpose field and a file part, and the
// body's content type.
func multipartFrame(name, purpose string) (head, tail []byte, contentType string, err error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("purpose", purpose); err != nil {
		return nil, nil, "", err
	}
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, escapeQuotes(name)))
	h.Set("Content-Type", "application/octet-stream")
	if _, err := mw.CreatePart(h); err != nil {
		return nil, nil, "", err
	}
	head = bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := mw.Close(); err != nil {
		return nil, nil, "", err
	}
	return head, bytes.Clone(buf.Bytes()), mw.FormDataContentType(), nil
}

// escapeQuotes escapes a file name for a quoted header parameter, as
// mime/multipart does for CreateFormFile.
var escapeQuotes = strings.NewReplacer("\\", "\\\\", `"`, "\\\"", "\r", " ", "\n", " ").Replace

// Retrieve returns a provider file; see filehub.Provider.
func (c *Client) Retrieve(ctx context.Context, id string) (*filehub.ProviderFile, error) {
	const op = "GET /files/{id}"
	var out apiFile
	err := c.do(ctx, op, func(ctx context.Context) *attemptError {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/files/"+url.PathEscape(id), nil)
		if err != nil {
			return &attemptError{err: err}
		}
		return c.send(ctx, op, req, &out)
	})
	if err != nil {
		return nil, err
	}
	return out.toFile(), nil
}

// Delete deletes a provider file; see filehub.Provider.
func (c *Client) Delete(ctx context.Context, id string) error {
	const op = "DELETE /files/{id}"
	return c.do(ctx, op, func(ctx context.Context) *attemptError {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.base+"/files/"+url.PathEscape(id), nil)
		if err != nil {
			return &attemptError{err: err}
		}
		return c.send(ctx, op, req, nil)
	})
}

// List returns a page of provider files; see filehub.Provider. Providers
// that do not page answer everything at once, which is then the last page.
func (c *Client) List(ctx context.Context, after string, limit int) ([]*filehub.ProviderFile, string, error) {
	const op = "GET /files"
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	u := c.base + "/files"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var out struct {
		Data    []apiFile `json:"data"`
		HasMore bool      `json:"has_more"`
	}
	err := c.do(ctx, op, func(ctx context.Context) *attemptError {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return &attemptError{err: err}
		}
		out.Data, out.HasMore = nil, false
		return c.send(ctx, op, req, &out)
	})
	if err != nil {
		return nil, "", err
	}
	files := make([]*filehub.ProviderFile, len(out.Data))
	for i := range out.Data {
		files[i] = out.Data[i].toFile()
	}
	next := ""
	if out.HasMore && len(files) > 0 {
		next = files[len(files)-1].ID
	}
	return files, next, nil
}
