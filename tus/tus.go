// Package tus is filehub's tus 1.0.0 server: resumable uploads that end as
// ordinary filehub files, for tus-js-client, Uppy, tuspy, tus-java-client
// and `filehub upload --resumable`.
//
// It implements the core protocol and the extensions creation,
// creation-with-upload, creation-defer-length, termination, checksum
// (sha256, sha1, md5), expiration and concatenation, at BasePath (an upload
// at BasePath + its ID). What tusd, the reference server, leaves out is the
// point of this package: every acknowledged offset is durable (fsynced, or
// acknowledged by the object store) before it is answered; the SHA-256 of
// the content is computed while it arrives and its state is stored with the
// offset (filehub.UploadStore), so a resume on any instance re-reads
// nothing; the finished upload goes through the same commit path as the
// HTTP API (files.Service.CommitStaged: deduplicated, one file.created
// event); abandoned uploads expire. See docs/decisions.md for why this is
// not tusd's handler.
//
// Authentication, rate limits and error documents are the HTTP API's,
// through a Gate (httpapi.Handler implements it), so tus refusals are the
// same problem+json documents, from the same code-to-status table.
package tus

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
	"github.com/prometheus/client_golang/prometheus"
)

// Version is the tus protocol version served.
const Version = "1.0.0"

// Extensions is the Tus-Extension header: exactly what is implemented.
const Extensions = "creation,creation-with-upload,creation-defer-length,termination,checksum,expiration,concatenation"

// ChecksumAlgorithms is the Tus-Checksum-Algorithm header.
const ChecksumAlgorithms = "sha256,sha1,md5"

// Response headers beyond tus's own.
const (
	// HeaderFileID carries the ID of the file a finished upload became.
	HeaderFileID = "Filehub-File-Id"
	// HeaderDeduplicated says whether that file's content was already
	// stored ("true" or "false").
	HeaderDeduplicated = "Filehub-Deduplicated"
)

// Defaults for Config's zero values.
const (
	DefaultBasePath       = "/v1/uploads/"
	DefaultExpiry         = 24 * time.Hour
	DefaultMaxOpenUploads = 100
	DefaultStallTimeout   = 60 * time.Second
)

// Config configures a Handler. The zero value is usable.
type Config struct {
	// BasePath is where the handler is mounted, ending in "/". Default
	// "/v1/uploads/". Upload URLs (Location) are BasePath + ID.
	BasePath string
	// Expiry is how long an unfinished upload may stay without receiving
	// a chunk before it expires (410, then removed). Default 24h.
	Expiry time.Duration
	// MaxOpenUploads caps the unfinished uploads of one API key; more get
	// 429. Default 100; negative: no cap.
	MaxOpenUploads int
	// CORSOrigins lists the origins browsers may upload from
	// ("https://app.example.com"); "*" allows any. Default none: no CORS
	// headers at all.
	CORSOrigins []string
	// StallTimeout aborts a PATCH body that sends nothing for this long
	// (the bytes received before are kept). Default 60s.
	StallTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the tus metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// Now defaults to time.Now; tests inject a clock.
	Now func() time.Time
}

// Gate is the HTTP API's authentication and error writing, which the tus
// endpoint shares. httpapi.Handler implements it.
type Gate interface {
	// Authorize authenticates r's API key, applies its rate limit and
	// checks that it grants one of scopes. It returns r carrying the key.
	Authorize(w http.ResponseWriter, r *http.Request, scopes ...filehub.Scope) (*http.Request, *filehub.APIKey, error)
	// WriteError answers with err's status and problem document.
	WriteError(w http.ResponseWriter, r *http.Request, err error)
}

// Handler serves the tus endpoint. It is an http.Handler, safe for
// concurrent use.
type Handler struct {
	svc     *files.Service
	uploads filehub.UploadStore
	stager  filehub.ResumableStager
	blobs   filehub.BlobStore
	native  bool // stager is blobs: a finished upload is committed without a copy
	gate    Gate
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics

	anyOrigin bool
	origins   map[string]bool

	// busy holds the IDs of uploads a request is writing or deleting:
	// a second writer of the same upload gets 423 at once instead of
	// interleaving its bytes with the first's.
	busy sync.Map
}

// New returns a Handler. Upload state lives in uploads; content in stager
// while it arrives, then in blobs. If stager is blobs itself (localfs), a
// finished upload becomes a blob without a copy; otherwise (a local spool
// in front of S3) its bytes are copied once into a blob staged in blobs.
func New(svc *files.Service, uploads filehub.UploadStore, stager filehub.ResumableStager, blobs filehub.BlobStore, gate Gate, cfg Config) *Handler {
	if cfg.BasePath == "" {
		cfg.BasePath = DefaultBasePath
	}
	if !strings.HasSuffix(cfg.BasePath, "/") {
		cfg.BasePath += "/"
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = DefaultExpiry
	}
	if cfg.MaxOpenUploads == 0 {
		cfg.MaxOpenUploads = DefaultMaxOpenUploads
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	h := &Handler{
		svc:     svc,
		uploads: uploads,
		stager:  stager,
		blobs:   blobs,
		gate:    gate,
		cfg:     cfg,
		log:     cfg.Logger,
		now:     cfg.Now,
		metrics: newMetrics(cfg.Registerer),
		origins: map[string]bool{},
	}
	// A stager wrapping another (metrics, tests) says so with Unwrap.
	inner := stager
	for {
		u, ok := inner.(interface {
			Unwrap() filehub.ResumableStager
		})
		if !ok {
			break
		}
		inner = u.Unwrap()
	}
	if bs, ok := blobs.(filehub.ResumableStager); ok && bs == inner {
		h.native = true
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	for _, o := range cfg.CORSOrigins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		switch o {
		case "":
		case "*":
			h.anyOrigin = true
		default:
			h.origins[strings.ToLower(o)] = true
		}
	}
	return h
}

// ServeHTTP dispatches a tus request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Tus-Resumable", Version)
	h.cors(w, r)
	method := r.Method
	if o := r.Header.Get("X-HTTP-Method-Override"); o != "" && r.Method == http.MethodPost {
		// For clients behind proxies that allow only GET and POST.
		method = strings.ToUpper(strings.TrimSpace(o))
	}
	id, ok := strings.CutPrefix(r.URL.Path, h.cfg.BasePath)
	if !ok && r.URL.Path == strings.TrimSuffix(h.cfg.BasePath, "/") {
		id, ok = "", true
	}
	if !ok {
		h.gate.WriteError(w, r, filehub.Errorf(filehub.ENOTFOUND, "no such endpoint"))
		return
	}
	if method == http.MethodOptions {
		h.options(w)
		return
	}
	if v := r.Header.Get("Tus-Resumable"); v != Version {
		w.Header().Set("Tus-Version", Version)
		h.gate.WriteError(w, r, filehub.Errorf(filehub.EPRECONDITION, "unsupported tus version %q: this server speaks Tus-Resumable: %s", truncate(v, 32), Version))
		return
	}
	var err error
	switch {
	case id == "" && method == http.MethodPost:
		err = h.create(w, r)
	case id == "":
		w.Header().Set("Allow", "OPTIONS, POST")
		err = filehub.Errorf(filehub.EINVALID, "method %s is not allowed on the upload collection (allowed: OPTIONS, POST)", truncate(method, 16))
	case !filehub.ValidUploadID(id):
		err = filehub.Errorf(filehub.ENOTFOUND, "upload not found")
	case method == http.MethodHead:
		err = h.head(w, r, id)
	case method == http.MethodPatch:
		err = h.patch(w, r, id)
	case method == http.MethodDelete:
		err = h.terminate(w, r, id)
	default:
		w.Header().Set("Allow", "OPTIONS, HEAD, PATCH, DELETE")
		err = filehub.Errorf(filehub.EINVALID, "method %s is not allowed on an upload (allowed: OPTIONS, HEAD, PATCH, DELETE)", truncate(method, 16))
	}
	if err != nil {
		h.gate.WriteError(w, r, err)
	}
}

// options answers OPTIONS: what the server supports. It needs no key, so
// that browsers' CORS preflights (which never carry one) and discovery work.
func (h *Handler) options(w http.ResponseWriter) {
	hdr := w.Header()
	hdr.Set("Tus-Version", Version)
	hdr.Set("Tus-Extension", Extensions)
	hdr.Set("Tus-Max-Size", strconv.FormatInt(h.svc.MaxUploadSize(), 10))
	hdr.Set("Tus-Checksum-Algorithm", ChecksumAlgorithms)
	w.WriteHeader(http.StatusNoContent)
}

// Headers a browser may send and read (CORS).
const (
	corsAllowHeaders = "Authorization, Content-Type, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, " +
		"Tus-Resumable, Upload-Length, Upload-Offset, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum"
	corsExposeHeaders = "Location, Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, " +
		"Upload-Offset, Upload-Length, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Expires, " +
		"X-Request-ID, Retry-After, " + HeaderFileID + ", " + HeaderDeduplicated
	corsAllowMethods = "POST, HEAD, PATCH, DELETE, OPTIONS"
)

// cors sets the CORS headers for an allowed Origin. Credentials (cookies)
// are never allowed: the key travels in the Authorization header.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	hdr := w.Header()
	hdr.Add("Vary", "Origin")
	if !h.anyOrigin && !h.origins[strings.ToLower(strings.TrimRight(origin, "/"))] {
		return
	}
	hdr.Set("Access-Control-Allow-Origin", origin)
	hdr.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		hdr.Set("Access-Control-Allow-Methods", corsAllowMethods)
		hdr.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		hdr.Set("Access-Control-Max-Age", "86400")
	}
}

// find returns upload id if key may see it: its owner's or an admin key.
// Another key gets ENOTFOUND, as if the upload did not exist.
func (h *Handler) find(ctx context.Context, id string, key *filehub.APIKey) (*filehub.Upload, error) {
	u, err := h.uploads.FindUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.OwnerKeyID != key.ID && !key.Has(filehub.ScopeAdmin) {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "upload %s not found", id)
	}
	return u, nil
}

// expired reports whether an unfinished upload has expired.
func (h *Handler) expired(u *filehub.Upload) bool {
	return !u.Finished() && !h.now().Before(u.ExpiresAt)
}

func (h *Handler) gone(u *filehub.Upload) error {
	return filehub.Errorf(filehub.EGONE, "upload %s expired at %s", u.ID, u.ExpiresAt.UTC().Format(time.RFC3339))
}

// lock marks upload id busy, in this process and, when the upload store
// is shared (filehub.UploadLocker), on every instance. It returns ELOCKED if
// another request holds it, else a function that releases it.
func (h *Handler) lock(ctx context.Context, id string) (func(), error) {
	if _, held := h.busy.LoadOrStore(id, struct{}{}); held {
		return nil, filehub.Errorf(filehub.ELOCKED, "upload %s is being written by another request; retry when it has finished", id)
	}
	l, ok := h.uploads.(filehub.UploadLocker)
	if !ok {
		return func() { h.busy.Delete(id) }, nil
	}
	unlock, err := l.LockUpload(ctx, id)
	if err != nil {
		h.busy.Delete(id)
		return nil, err
	}
	return func() { unlock(); h.busy.Delete(id) }, nil
}

// setState sets the headers describing u on a response.
func (h *Handler) setState(w http.ResponseWriter, u *filehub.Upload) {
	hdr := w.Header()
	hdr.Set("Upload-Offset", strconv.FormatInt(u.Offset, 10))
	if !u.Finished() {
		hdr.Set("Upload-Expires", u.ExpiresAt.UTC().Format(http.TimeFormat))
	}
	if u.Finished() {
		hdr.Set(HeaderFileID, u.FileID)
		hdr.Set(HeaderDeduplicated, strconv.FormatBool(u.Deduplicated))
	}
}

// head answers HEAD: the upload's offset and what the client declared.
func (h *Handler) head(w http.ResponseWriter, r *http.Request, id string) error {
	r, key, err := h.gate.Authorize(w, r, filehub.ScopeRead, filehub.ScopeWrite)
	if err != nil {
		return err
	}
	u, err := h.find(r.Context(), id, key)
	if err != nil {
		return err
	}
	if h.expired(u) {
		return h.gone(u)
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	if u.Length >= 0 {
		hdr.Set("Upload-Length", strconv.FormatInt(u.Length, 10))
	} else {
		hdr.Set("Upload-Defer-Length", "1")
	}
	if u.Metadata != "" {
		hdr.Set("Upload-Metadata", u.Metadata)
	}
	switch u.Concat {
	case filehub.UploadPartial:
		hdr.Set("Upload-Concat", filehub.UploadPartial)
	case filehub.UploadFinal:
		urls := make([]string, len(u.Parts))
		for i, p := range u.Parts {
			urls[i] = h.cfg.BasePath + p
		}
		hdr.Set("Upload-Concat", "final;"+strings.Join(urls, " "))
	}
	h.setState(w, u)
	w.WriteHeader(http.StatusOK)
	return nil
}

// terminate answers DELETE: the upload and its stored bytes are removed at
// once. The file of a finished upload stays.
func (h *Handler) terminate(w http.ResponseWriter, r *http.Request, id string) error {
	r, key, err := h.gate.Authorize(w, r, filehub.ScopeWrite)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := h.find(ctx, id, key); err != nil {
		return err
	}
	unlock, err := h.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	if err := h.remove(context.WithoutCancel(ctx), id); err != nil {
		return err
	}
	h.metrics.terminated.Inc()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// remove deletes an upload's bytes, then its record: a crash in between
// leaves a record whose bytes are gone, which answers 404 on the next
// PATCH, never bytes without a record.
func (h *Handler) remove(ctx context.Context, id string) error {
	if err := h.stager.RemoveResumable(ctx, id); err != nil {
		return err
	}
	if err := h.uploads.DeleteUpload(ctx, id); err != nil && filehub.ErrorCode(err) != filehub.ENOTFOUND {
		return err
	}
	return nil
}

// RemoveExpired removes up to limit (all if limit <= 0) uploads that
// expired at or before now (unfinished ones with their bytes, finished
// ones' records) and returns how many it removed. Uploads being written
// are skipped. The cleanup service's expired_upload kind does the same in
// its runs, with dry run, report and audit; this is for embedders without
// one.
func (h *Handler) RemoveExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	ups, err := h.uploads.ListExpiredUploads(ctx, now, limit)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range ups {
		unlock, err := h.lock(ctx, u.ID)
		if err != nil {
			continue
		}
		err = h.remove(ctx, u.ID)
		unlock()
		if err != nil {
			return n, err
		}
		n++
		if !u.Finished() {
			h.metrics.expired.Inc()
		}
	}
	return n, nil
}

// truncate shortens client-supplied text quoted in error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// StatusChecksumMismatch returns tus's 460 Checksum Mismatch status.
func StatusChecksumMismatch() int { return 460 }
