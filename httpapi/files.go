package httpapi

import (
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
)

// maxListLimit is the largest page a client may ask for; MetaStore caps
// pages at 1000 too, but a clear 400 beats a silently shorter page.
const maxListLimit = 1000

func (h *Handler) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			return filehub.Errorf(filehub.EINVALID, "limit must be an integer from 1 to %d", maxListLimit)
		}
		limit = n
	}
	p := api.FilesListRequest{Limit: limit, Cursor: q.Get("cursor")}
	fs, next, err := h.svc.List(r.Context(), p.Limit, p.Cursor)
	if err != nil {
		return err
	}
	if fs == nil {
		fs = []*filehub.File{} // [] rather than null for clients
	}
	writeJSON(w, http.StatusOK, api.FilePage{Files: fs, NextCursor: next})
	return nil
}

func (h *Handler) stat(w http.ResponseWriter, r *http.Request) error {
	p := api.FileRequest{ID: r.PathValue("id")}
	f, err := h.svc.Get(r.Context(), p.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) error {
	p := api.FileRequest{ID: r.PathValue("id")}
	f, err := h.svc.Delete(r.Context(), p.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (h *Handler) restore(w http.ResponseWriter, r *http.Request) error {
	p := api.FileRequest{ID: r.PathValue("id")}
	f, err := h.svc.Restore(r.Context(), p.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

// content serves a file's bytes with http.ServeContent, which handles HEAD,
// a single Range (206), If-None-Match/If-Range against the ETag (304) and
// If-Modified-Since.
func (h *Handler) content(w http.ResponseWriter, r *http.Request) error {
	// Several ranges would be answered as multipart/byteranges, which no
	// filehub client needs and which lets a small request ask for many
	// overlapping copies of a large file. Refuse them up front.
	if rg := r.Header.Get("Range"); strings.Contains(rg, ",") {
		return filehub.Errorf(filehub.ERANGE, "only a single byte range is supported")
	}
	f, content, err := h.svc.Open(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	defer content.Close()

	hdr := w.Header()
	hdr.Set("ETag", `"`+f.SHA256+`"`)
	hdr.Set("Content-Type", f.ContentType)
	hdr.Set("Content-Disposition", contentDisposition(f.Name))
	// The content is whatever users uploaded: never let a browser sniff
	// it into something executable, and sandbox it if opened inline
	// anyway.
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	hdr.Set("Cache-Control", "private, no-cache")

	dw := &downloadWriter{
		ResponseWriter: w,
		rc:             http.NewResponseController(w),
		timeout:        h.cfg.DownloadStallTimeout,
	}
	http.ServeContent(dw, r, "", f.CreatedAt, content)
	dw.finish()
	if dw.unsatisfiable {
		// ServeContent has set Content-Range: bytes */size, which stays.
		return filehub.Errorf(filehub.ERANGE, "range not satisfiable: the file is %d bytes", f.Size)
	}
	return nil
}

// contentDisposition returns an attachment disposition for name. Names are
// already sanitized when stored; mime.FormatMediaType adds the RFC 2231
// filename* form for non-ASCII names, so they survive intact.
func contentDisposition(name string) string {
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" {
		return v
	}
	return "attachment" // unreachable for sanitized names; never send a broken header
}
