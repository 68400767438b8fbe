package tus

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/filehub/filehub"
)

// create answers POST on the collection: a new upload (tus creation),
// possibly with its first chunk (creation-with-upload), a partial upload or
// a final one (concatenation). Everything that can be refused without the
// body is refused before the upload exists: size (413), free space (507), a
// declared executable (415), the open-upload cap (429).
func (h *Handler) create(w http.ResponseWriter, r *http.Request) error {
	r, key, err := h.gate.Authorize(w, r, filehub.ScopeWrite)
	if err != nil {
		return err
	}
	ctx := r.Context()
	concat := r.Header.Get("Upload-Concat")
	if strings.HasPrefix(concat, "final;") {
		return h.createFinal(w, r, key, concat)
	}
	if concat != "" && concat != filehub.UploadPartial {
		return filehub.Errorf(filehub.EINVALID, "Upload-Concat must be \"partial\" or \"final;<upload URLs>\"")
	}
	length, err := parseLength(r.Header)
	if err != nil {
		return err
	}
	if err := h.svc.Admit(ctx, length); err != nil {
		return err
	}
	raw := r.Header.Get("Upload-Metadata")
	md, err := ParseMetadata(raw)
	if err != nil {
		return err
	}
	if err := h.svc.CheckDeclaredType(md["filetype"]); err != nil {
		return err
	}
	now := h.now().UTC()
	u := &filehub.Upload{
		ID:          filehub.NewID("u_"),
		OwnerKeyID:  key.ID,
		Length:      length,
		Metadata:    raw,
		Name:        nameOf(md),
		ContentType: md["filetype"],
		Concat:      concat,
		CreatedAt:   now,
		ExpiresAt:   now.Add(h.cfg.Expiry),
	}
	if err := h.uploads.CreateUpload(ctx, u, max(h.cfg.MaxOpenUploads, 0)); err != nil {
		return err
	}
	h.metrics.started.Inc()
	w.Header().Set("Location", h.cfg.BasePath+u.ID)

	hasBody := r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
	if hasBody && !isOffsetStream(r) {
		return filehub.Errorf(filehub.EUNSUPPORTED, "a creation body must be Content-Type: application/offset+octet-stream")
	}
	if hasBody || (length == 0 && concat == "") {
		// creation-with-upload, or an empty file, which is complete at
		// once.
		unlock, err := h.lock(ctx, u.ID)
		if err != nil {
			return err
		}
		defer unlock()
		next, err := h.receive(ctx, w, r, u)
		if err != nil {
			return err
		}
		u = next
	}
	h.setState(w, u)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// nameOf is the file name a client declared: tus-js-client and Uppy send
// "filename" (Uppy also "name"). The name is sanitized when the file is
// recorded.
func nameOf(md map[string]string) string {
	if n := md["filename"]; n != "" {
		return n
	}
	if n := md["name"]; n != "" {
		return n
	}
	return "upload"
}

func isOffsetStream(r *http.Request) bool {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), "application/offset+octet-stream")
}

// createFinal answers POST with "Upload-Concat: final;…": the partial
// uploads, all complete and the caller's, are joined in order through the
// HTTP API's own ingest pipeline (hashing, sniffing, type policy, dedup),
// which is the one place their concatenation is ever read. The final
// upload is finished at once; its partial uploads are removed.
func (h *Handler) createFinal(w http.ResponseWriter, r *http.Request, key *filehub.APIKey, concat string) error {
	ctx := r.Context()
	ids, err := parseFinal(concat, h.cfg.BasePath)
	if err != nil {
		return err
	}
	raw := r.Header.Get("Upload-Metadata")
	md, err := ParseMetadata(raw)
	if err != nil {
		return err
	}
	if err := h.svc.CheckDeclaredType(md["filetype"]); err != nil {
		return err
	}
	var (
		parts []*filehub.Upload
		total int64
	)
	for _, id := range ids {
		unlock, err := h.lock(ctx, id)
		if err != nil {
			return err
		}
		defer unlock()
		p, err := h.find(ctx, id, key)
		if err != nil {
			return err
		}
		switch {
		case p.Concat != filehub.UploadPartial:
			return filehub.Errorf(filehub.EINVALID, "upload %s is not a partial upload", id)
		case !p.Complete():
			return filehub.Errorf(filehub.EINVALID, "partial upload %s is not complete (%d of %d bytes)", id, p.Offset, p.Length)
		}
		parts = append(parts, p)
		total += p.Length
	}
	if err := h.svc.Admit(ctx, total); err != nil {
		return err
	}
	pr := &partsReader{ctx: ctx, h: h, parts: parts}
	up, err := h.svc.Upload(ctx, pr, nameOf(md), key.ID)
	pr.Close()
	if err != nil {
		return err
	}
	now := h.now().UTC()
	u := &filehub.Upload{
		ID:           filehub.NewID("u_"),
		OwnerKeyID:   key.ID,
		Length:       total,
		Offset:       total,
		Metadata:     raw,
		Name:         up.Name,
		ContentType:  md["filetype"],
		Concat:       filehub.UploadFinal,
		Parts:        ids,
		CreatedAt:    now,
		ExpiresAt:    now.Add(h.cfg.Expiry),
		FileID:       up.ID,
		Deduplicated: up.Deduplicated,
	}
	dctx := context.WithoutCancel(ctx)
	if err := h.uploads.CreateUpload(dctx, u, 0); err != nil {
		return err
	}
	for _, p := range parts {
		if err := h.remove(dctx, p.ID); err != nil {
			// The file exists; a leftover part expires like any other.
			h.log.WarnContext(ctx, "tus: cannot remove a concatenated partial upload", "upload", p.ID, "err", err)
		}
	}
	h.metrics.started.Inc()
	h.metrics.finished.Inc()
	w.Header().Set("Location", h.cfg.BasePath+u.ID)
	h.setState(w, u)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// partsReader reads partial uploads one after the other, each up to its
// length, opening each only when the previous one is done.
type partsReader struct {
	ctx   context.Context
	h     *Handler
	parts []*filehub.Upload
	cur   io.ReadCloser
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.cur == nil {
			if len(p.parts) == 0 {
				return 0, io.EOF
			}
			rc, err := p.h.stager.ReadResumable(p.ctx, p.parts[0].ID, 0)
			if err != nil {
				return 0, err
			}
			p.cur = &limitedReadCloser{Reader: io.LimitReader(rc, p.parts[0].Length), Closer: rc}
			p.parts = p.parts[1:]
		}
		n, err := p.cur.Read(b)
		if err == io.EOF {
			p.cur.Close()
			p.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// Close closes the part being read, if any.
func (p *partsReader) Close() {
	if p.cur != nil {
		p.cur.Close()
		p.cur = nil
	}
}

type limitedReadCloser struct {
	io.Reader
	io.Closer
}

// uploadOffsetHeader is the header of the offset in PATCH requests.
const uploadOffsetHeader = "Upload-Offset"

func offsetOf(r *http.Request) (int64, error) {
	off, has, err := parseInt(r.Header, uploadOffsetHeader)
	if err != nil {
		return 0, err
	}
	if !has {
		return 0, filehub.Errorf(filehub.EINVALID, "missing Upload-Offset")
	}
	return off, nil
}
