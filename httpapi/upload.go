package httpapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/files"
)

// drainLimit is how much trailing data (a multipart epilogue) is read after
// the last part so that the connection can be reused; more than that and
// the connection is closed instead.
const drainLimit = 64 << 10

// upload handles POST /v1/files: a multipart/form-data body with parts named
// "file", or any other body with ?name=.
//
// Everything that can be refused without the body is refused first (bad
// request, size, free space, no upload slot), so that a rejected upload
// costs one round trip and no body bytes.
func (h *Handler) upload(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	multi := mediaType == "multipart/form-data"
	name := r.URL.Query().Get("name")
	switch {
	case multi && params["boundary"] == "":
		return filehub.Errorf(filehub.EINVALID, "multipart/form-data without a boundary")
	case !multi && name == "":
		return filehub.Errorf(filehub.EINVALID, "missing file name: send ?name=FILENAME, or a multipart/form-data body with parts named \"file\"")
	}
	// The announced length bounds the whole request, which for multipart
	// includes the part headers: one request carries at most
	// MaxUploadSize bytes, raw or multipart, with or without
	// Content-Length.
	if err := h.svc.Admit(ctx, r.ContentLength); err != nil {
		return err
	}
	select {
	case h.uploadSlots <- struct{}{}:
		defer func() { <-h.uploadSlots }()
	default:
		h.metrics.uploadsRejected.WithLabelValues("busy").Inc()
		w.Header().Set("Retry-After", "1")
		return filehub.Errorf(filehub.EUNAVAILABLE, "too many uploads in progress; retry later")
	}

	body := newBodyReader(w, r.Body, h.cfg.UploadStallTimeout, h.svc.MaxUploadSize())
	defer body.stop()
	r.Body = body
	owner := info(ctx).key.ID

	if !multi {
		up, err := h.svc.Upload(ctx, body, name, owner)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, uploadWire(up))
		return nil
	}

	ups, err := h.uploadParts(ctx, r, owner)
	if err != nil {
		return err
	}
	// The closing boundary may be followed by an epilogue. Read a short
	// one so the connection can be reused; close it rather than read a
	// long one.
	if n, _ := io.CopyN(io.Discard, body, drainLimit+1); n > drainLimit {
		w.Header().Set("Connection", "close")
	}
	if len(ups) == 1 {
		writeJSON(w, http.StatusCreated, uploadWire(ups[0]))
		return nil
	}
	list := api.UploadList{Files: make([]*api.Upload, len(ups))}
	for i, up := range ups {
		list.Files[i] = uploadWire(up)
	}
	writeJSON(w, http.StatusCreated, list)
	return nil
}

// uploadParts stores every part of a multipart body. It is all or nothing:
// if a part fails, the files stored from earlier parts are discarded before
// the error is returned.
func (h *Handler) uploadParts(ctx context.Context, r *http.Request, owner string) (ups []*files.Upload, err error) {
	defer func() {
		if err == nil {
			return
		}
		// Roll back even if the client has gone: the records must not
		// outlive the failed request.
		dctx := context.WithoutCancel(ctx)
		for _, up := range ups {
			if derr := h.svc.Discard(dctx, up.ID); derr != nil {
				info(ctx).log.Error("cannot roll back part of a failed multipart upload",
					"file_id", up.ID, "err", derr)
			}
		}
		ups = nil
	}()

	mr, err := r.MultipartReader()
	if err != nil {
		return nil, filehub.WrapError(filehub.EINVALID, "malformed multipart body", err)
	}
	for {
		part, err := mr.NextPart()
		// Only a bare io.EOF is the closing boundary: NextPart wraps
		// the io.EOF of a body that ends without one.
		if err == io.EOF {
			break
		}
		if err != nil {
			var fe *filehub.Error
			if errors.As(err, &fe) {
				return ups, fe
			}
			return ups, filehub.WrapError(filehub.EINVALID, "malformed multipart body", err)
		}
		if part.FormName() != "file" {
			part.Close()
			return ups, filehub.Errorf(filehub.EINVALID, "unexpected multipart part %q: only parts named \"file\" are accepted", truncate(part.FormName(), 64))
		}
		if len(ups) >= h.cfg.MaxParts {
			part.Close()
			return ups, filehub.Errorf(filehub.EINVALID, "too many files in one request (the limit is %d)", h.cfg.MaxParts)
		}
		name := part.FileName()
		if name == "" {
			name = "file"
		}
		up, err := h.svc.Upload(ctx, partReader{part}, name, owner)
		part.Close()
		if err != nil {
			return ups, err
		}
		ups = append(ups, up)
	}
	if len(ups) == 0 {
		return nil, filehub.Errorf(filehub.EINVALID, "multipart body has no part named \"file\"")
	}
	return ups, nil
}

// truncate shortens client-supplied text quoted in error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// uploadWire is an upload's answer on the wire.
func uploadWire(up *files.Upload) *api.Upload {
	return &api.Upload{File: up.File, Deduplicated: up.Deduplicated}
}
