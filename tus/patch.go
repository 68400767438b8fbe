package tus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
)

// patch answers PATCH: one chunk at the upload's current offset. The
// offset answered is durable; a chunk at the wrong offset is refused (409)
// with the right one, a second concurrent writer gets 423, a chunk that
// does not match its Upload-Checksum is not kept (460).
func (h *Handler) patch(w http.ResponseWriter, r *http.Request, id string) error {
	r, key, err := h.gate.Authorize(w, r, filehub.ScopeWrite)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if !isOffsetStream(r) {
		return filehub.Errorf(filehub.EUNSUPPORTED, "a PATCH body must be Content-Type: application/offset+octet-stream")
	}
	off, err := offsetOf(r)
	if err != nil {
		return err
	}
	if _, err := h.find(ctx, id, key); err != nil {
		return err
	}
	unlock, err := h.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	// Read again under the lock: another request may have advanced it.
	u, err := h.find(ctx, id, key)
	if err != nil {
		return err
	}
	switch {
	case h.expired(u):
		return h.gone(u)
	case u.Concat == filehub.UploadFinal:
		return filehub.Errorf(filehub.EFORBIDDEN, "a final upload cannot be patched")
	case off != u.Offset:
		w.Header().Set("Upload-Offset", itoa(u.Offset))
		return filehub.Errorf(filehub.ECONFLICT, "the upload is at offset %d, not %d", u.Offset, off)
	case u.Finished():
		// A repeated final PATCH (the client missed the answer).
		h.setState(w, u)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if n, has, err := parseInt(r.Header, "Upload-Length"); err != nil {
		return err
	} else if has {
		switch {
		case u.Length >= 0 && n != u.Length:
			return filehub.Errorf(filehub.EINVALID, "the upload's length is already %d", u.Length)
		case n < u.Offset:
			return filehub.Errorf(filehub.EINVALID, "Upload-Length %d is below the offset %d", n, u.Offset)
		case n > h.svc.MaxUploadSize():
			return filehub.Errorf(filehub.ETOOLARGE, "upload of %d bytes exceeds the limit of %d bytes", n, h.svc.MaxUploadSize())
		}
		u.Length = n
	}
	next, err := h.receive(ctx, w, r, u)
	if err != nil {
		return err
	}
	h.setState(w, next)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// receive stores r's body at u's offset and records the new offset, with
// the SHA-256 state of everything up to it, and returns the new state. When
// the last byte is in, the upload becomes a file (finish). The caller holds
// the upload's lock.
func (h *Handler) receive(ctx context.Context, w http.ResponseWriter, r *http.Request, u *filehub.Upload) (*filehub.Upload, error) {
	var ck *Checksum
	if v := r.Header.Get("Upload-Checksum"); v != "" {
		var err error
		if ck, err = ParseChecksum(v); err != nil {
			return nil, err
		}
	}
	limit := h.svc.MaxUploadSize() - u.Offset
	if u.Length >= 0 {
		limit = u.Length - u.Offset
	}
	if r.ContentLength > limit {
		return nil, filehub.Errorf(filehub.ETOOLARGE, "a chunk of %d bytes at offset %d goes past the upload's end (%d more bytes allowed)", r.ContentLength, u.Offset, limit)
	}
	// 507 before any byte is accepted.
	if err := h.svc.Admit(ctx, max(r.ContentLength, 0)); err != nil {
		return nil, err
	}
	var src io.Reader = http.NoBody
	if r.Body != nil {
		b := newBody(w, r.Body, h.cfg.StallTimeout, limit)
		defer b.stop()
		src = b
	}

	var ct string // the sniffed type, when this chunk holds all the bytes sniffing looks at
	if u.Offset == 0 && u.Concat == "" {
		// Refuse a refused type as soon as its first bytes are here,
		// before any is stored. (Partial uploads are judged when they
		// are joined: their first bytes are not the file's.)
		head := make([]byte, files.SniffLen)
		n, err := io.ReadFull(src, head)
		if err != nil && err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
		sniffed, err := h.svc.CheckContent(head[:n])
		if err != nil {
			h.discard(ctx, u)
			return nil, err
		}
		if n == files.SniffLen || int64(n) == u.Length {
			ct = sniffed
		}
		src = io.MultiReader(bytes.NewReader(head[:n]), src)
	}

	sum := sha256.New()
	if len(u.HashState) > 0 {
		if err := sum.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.HashState); err != nil {
			return nil, filehub.WrapError(filehub.EINTERNAL, "stored hash state is unreadable", err)
		}
	}
	hr := &hashReader{r: src, sum: sum}
	if ck != nil {
		hr.ck, hr.want = ck.New(), ck.Sum
	}
	n, err := h.stager.WriteResumable(ctx, u.ID, u.Offset, hr)
	if err != nil {
		var fe *filehub.Error
		switch {
		case filehub.ErrorCode(err) == filehub.ENOTFOUND && u.Concat == "" && u.Length >= 0:
			// The bytes are gone: either a crash came after the file
			// was recorded (its staged blob took them) and before the
			// upload was, and the file exists, or they are lost.
			return h.recover(ctx, u, err)
		case errors.As(err, &fe) && fe.Code == filehub.ECHECKSUM:
			h.metrics.checksumMismatches.Inc()
			// Not kept: cut the chunk off again at once.
			if _, terr := h.stager.WriteResumable(context.WithoutCancel(ctx), u.ID, u.Offset, http.NoBody); terr != nil {
				h.log.WarnContext(ctx, "tus: cannot drop a chunk with a bad checksum", "upload", u.ID, "err", terr)
			}
			return nil, err
		case !clientGone(hr.readErr) || n != hr.n || ck != nil || n == 0:
			// A storage error, or a cut chunk whose checksum cannot be
			// verified: the offset does not move.
			return nil, err
		}
		// The client went away or stalled: keep what was stored, as
		// tus asks, and record it below.
	}
	h.metrics.bytes.Add(float64(n))
	next := *u
	next.Offset += n
	next.ExpiresAt = h.now().UTC().Add(h.cfg.Expiry)
	state, merr := sum.(encoding.BinaryMarshaler).MarshalBinary()
	if merr != nil {
		return nil, filehub.WrapError(filehub.EINTERNAL, "cannot save the hash state", merr)
	}
	next.HashState = state
	// The chunk is stored: record it even if the client hangs up now.
	dctx := context.WithoutCancel(ctx)
	if next.Complete() && next.Concat == "" {
		if ferr := h.finish(dctx, &next, hex.EncodeToString(sum.Sum(nil)), ct); ferr != nil {
			return nil, ferr
		}
	}
	if uerr := h.uploads.UpdateUpload(dctx, &next, u.Offset); uerr != nil {
		return nil, uerr
	}
	if err != nil {
		return nil, err
	}
	return &next, nil
}

// finish turns a complete upload into a file: the stored bytes become a
// blob (hard-linked on a local disk) committed through files.CommitStaged,
// the HTTP API's own commit path, under a file ID derived from the upload
// ID, so that finishing twice (a retry after a crash between the file and
// the upload record) finds the file instead of making a second one. It sets
// u's FileID and Deduplicated. ct is the content's sniffed type if the
// caller has it, else "" (the first bytes are read back and sniffed).
func (h *Handler) finish(ctx context.Context, u *filehub.Upload, sum, ct string) error {
	fileID := "f_" + strings.TrimPrefix(u.ID, "u_")
	if ct == "" {
		// The stored type is the content's, whatever was declared.
		head, err := h.readHead(ctx, u)
		if err != nil {
			return h.finished(ctx, u, fileID, err)
		}
		if ct, err = h.svc.CheckContent(head); err != nil {
			h.discard(ctx, u)
			return err
		}
	}
	staged, err := h.stage(ctx, u)
	if err != nil {
		return h.finished(ctx, u, fileID, err)
	}
	defer staged.Close(ctx)
	up, err := h.svc.CommitStaged(ctx, staged, &filehub.File{
		ID:          fileID,
		Name:        u.Name,
		Size:        u.Length,
		SHA256:      sum,
		ContentType: ct,
		OwnerKeyID:  u.OwnerKeyID,
	})
	if err != nil {
		return h.finished(ctx, u, fileID, err)
	}
	if !h.native {
		if err := h.stager.RemoveResumable(ctx, u.ID); err != nil {
			h.log.WarnContext(ctx, "tus: cannot remove a finished upload's spooled bytes", "upload", u.ID, "err", err)
		}
	}
	h.metrics.finished.Inc()
	u.FileID, u.Deduplicated, u.HashState = up.ID, up.Deduplicated, nil
	return nil
}

// recover finishes u with the file its ID maps to, if that file exists
// (see finish), and returns err otherwise.
func (h *Handler) recover(ctx context.Context, u *filehub.Upload, err error) (*filehub.Upload, error) {
	next := *u
	next.Offset = u.Length
	dctx := context.WithoutCancel(ctx)
	if h.finished(dctx, &next, "f_"+strings.TrimPrefix(u.ID, "u_"), err) != nil {
		return nil, err
	}
	if uerr := h.uploads.UpdateUpload(dctx, &next, u.Offset); uerr != nil {
		return nil, uerr
	}
	return &next, nil
}

// finished handles an error of finish: if the file fileID exists (an
// earlier attempt made it, and its bytes are gone with its staged blob, or
// it conflicts with this one), the upload is finished with it after all;
// otherwise err stands.
func (h *Handler) finished(ctx context.Context, u *filehub.Upload, fileID string, err error) error {
	if f, ferr := h.svc.Find(ctx, fileID); ferr == nil {
		u.FileID, u.HashState = f.ID, nil
		return nil
	}
	return err
}

// readHead returns the first bytes of a stored upload, for sniffing.
func (h *Handler) readHead(ctx context.Context, u *filehub.Upload) ([]byte, error) {
	rc, err := h.stager.ReadResumable(ctx, u.ID, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	head := make([]byte, min(int64(files.SniffLen), u.Length))
	if _, err := io.ReadFull(rc, head); err != nil {
		return nil, filehub.WrapError(filehub.EINTERNAL, "cannot read the stored upload", err)
	}
	return head, nil
}

// stage returns a staged blob of a complete upload's bytes: the stored
// upload itself when the stager is the blob store, else a copy.
func (h *Handler) stage(ctx context.Context, u *filehub.Upload) (filehub.StagedBlob, error) {
	if h.native {
		return h.stager.StageResumable(ctx, u.ID, u.Length)
	}
	rc, err := h.stager.ReadResumable(ctx, u.ID, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	st, err := h.blobs.Stage(ctx)
	if err != nil {
		return nil, err
	}
	if n, err := io.Copy(st, io.LimitReader(rc, u.Length)); err != nil || n != u.Length {
		st.Close(ctx)
		if err == nil {
			err = filehub.Errorf(filehub.EINTERNAL, "the stored upload %s is %d bytes, not %d", u.ID, n, u.Length)
		}
		return nil, err
	}
	return st, nil
}

// discard removes an upload refused by the type policy.
func (h *Handler) discard(ctx context.Context, u *filehub.Upload) {
	if err := h.remove(context.WithoutCancel(ctx), u.ID); err != nil {
		h.log.WarnContext(ctx, "tus: cannot remove a refused upload", "upload", u.ID, "err", err)
	}
}

// hashReader feeds what it reads to the upload's SHA-256 and, if the chunk
// has an Upload-Checksum, to its checksum, which it checks at the end: a
// mismatch is returned instead of io.EOF, so the chunk is never counted.
type hashReader struct {
	r       io.Reader
	sum     hash.Hash
	ck      hash.Hash
	want    []byte
	n       int64
	readErr error
}

func (hr *hashReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	if n > 0 {
		hr.sum.Write(p[:n])
		if hr.ck != nil {
			hr.ck.Write(p[:n])
		}
		hr.n += int64(n)
	}
	if err == io.EOF && hr.ck != nil && !bytes.Equal(hr.ck.Sum(nil), hr.want) {
		return n, filehub.Errorf(filehub.ECHECKSUM, "the chunk does not match its Upload-Checksum; it was not kept")
	}
	if err != nil && err != io.EOF {
		hr.readErr = err
	}
	return n, err
}

// clientGone reports whether a body read failed because the client went
// away or stalled (see body), the cases in which tus keeps what arrived.
func clientGone(err error) bool {
	if err == nil {
		return false
	}
	c := filehub.ErrorCode(err)
	return c == filehub.EINVALID || c == filehub.ETIMEOUT
}

func itoa(n int64) string {
	return strconv.FormatInt(n, 10)
}
