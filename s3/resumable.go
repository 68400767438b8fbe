package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/filehub/filehub"
)

var _ filehub.ResumableStager = (*Store)(nil)

// Resumable uploads live in the bucket, so that any instance can continue
// any upload: each acknowledged chunk is one object
//
//	<prefix>uploads/<upload id>/<offset, 20 digits>
//
// written like a staged blob (one PutObject, or a multipart upload for
// chunks larger than a part) and acknowledged by S3 before WriteResumable
// returns. Keys are built only from server-made upload IDs
// (filehub.ValidUploadID).

// piece is one chunk object of an upload.
type piece struct {
	key       string
	off, size int64
}

func (s *Store) uploadPrefix(id string) (string, error) {
	if !filehub.ValidUploadID(id) {
		return "", filehub.Errorf(filehub.EINVALID, "invalid upload id %q", id)
	}
	return s.prefix + "uploads/" + id + "/", nil
}

// pieces lists upload id's chunk objects in offset order.
func (s *Store) pieces(ctx context.Context, id string) ([]piece, error) {
	prefix, err := s.uploadPrefix(id)
	if err != nil {
		return nil, err
	}
	var ps []piece
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, s.wrap("list upload "+id, err)
		}
		for _, o := range page.Contents {
			off, err := strconv.ParseInt(strings.TrimPrefix(aws.ToString(o.Key), prefix), 10, 64)
			if err != nil || off < 0 {
				s.log.Warn("s3: skipping non-conforming upload key", "key", aws.ToString(o.Key))
				continue
			}
			ps = append(ps, piece{key: aws.ToString(o.Key), off: off, size: aws.ToInt64(o.Size)})
		}
	}
	slices.SortFunc(ps, func(a, b piece) int { return int(a.off - b.off) })
	return ps, nil
}

// WriteResumable stores what r yields as the chunk object at offset, after
// deleting the chunks at or past offset; see filehub.ResumableStager.
func (s *Store) WriteResumable(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	ps, err := s.pieces(ctx, id)
	if err != nil {
		return 0, err
	}
	var have int64
	for _, p := range ps {
		switch {
		case p.off >= offset:
			if err := s.deleteKey(ctx, p.key); err != nil {
				return 0, s.wrap("drop chunk of upload "+id, err)
			}
		case p.off != have:
			return 0, filehub.Errorf(filehub.EINTERNAL, "chunks of upload %s do not line up at %d", id, p.off)
		case p.off+p.size > offset:
			// A chunk that goes past offset (never one the caller
			// acknowledged): keep its head only.
			if err := s.truncatePiece(ctx, id, p, offset-p.off); err != nil {
				return 0, err
			}
			have = offset
		default:
			have += p.size
		}
	}
	if have != offset || (offset > 0 && len(ps) == 0) {
		return 0, filehub.Errorf(filehub.ENOTFOUND, "content of upload %s ends at %d, before offset %d", id, have, offset)
	}
	prefix, _ := s.uploadPrefix(id)
	b := newStaged(ctx, s, id)
	b.key = prefix + fmt.Sprintf("%020d", offset)
	n, readErr, writeErr := copyChunk(b, r)
	if writeErr == nil && n == 0 && offset > 0 {
		b.Close(ctx)
		return 0, readErr
	}
	if writeErr == nil {
		writeErr = b.Sync()
	}
	if writeErr != nil {
		b.Close(ctx) // aborts and deletes whatever was sent
		return 0, writeErr
	}
	// Keep the completed object: release the staged blob without the
	// deletion of Close.
	b.cancel()
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return n, readErr
}

// truncatePiece rewrites the chunk object p with its first n bytes. The new
// object replaces the old one only when it is complete, so it can be read
// from the old one.
func (s *Store) truncatePiece(ctx context.Context, id string, p piece, n int64) error {
	src := &reader{ctx: ctx, s: s, key: p.key, size: p.size}
	defer src.Close()
	b := newStaged(ctx, s, id)
	b.key = p.key
	fail := func(err error) error {
		// Close must not delete the key: it is still the old chunk.
		b.mu.Lock()
		b.sent = false
		b.mu.Unlock()
		b.Close(ctx)
		return err
	}
	if _, err := io.Copy(b, io.LimitReader(src, n)); err != nil {
		return fail(err)
	}
	if err := b.Sync(); err != nil {
		return fail(err)
	}
	b.cancel()
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// copyChunk copies r to w, keeping read and write errors apart: bytes read
// before a read error are still written.
func copyChunk(w io.Writer, r io.Reader) (n int64, readErr, writeErr error) {
	buf := make([]byte, 256<<10)
	for {
		m, err := r.Read(buf)
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return n, nil, werr
			}
			n += int64(m)
		}
		if err == io.EOF {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
	}
}

// ReadResumable reads upload id's chunk objects in order from offset; see
// filehub.ResumableStager.
func (s *Store) ReadResumable(ctx context.Context, id string, offset int64) (io.ReadCloser, error) {
	ps, err := s.pieces(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "content of upload %s not found", id)
	}
	return &piecesReader{ctx: ctx, s: s, ps: ps, off: offset}, nil
}

// piecesReader reads chunk objects one after the other, each with ranged
// GETs (the blob reader), opening each only when it is reached.
type piecesReader struct {
	ctx context.Context
	s   *Store
	ps  []piece
	off int64
	cur *reader
}

func (p *piecesReader) Read(b []byte) (int, error) {
	for {
		if p.cur == nil {
			for len(p.ps) > 0 && p.ps[0].off+p.ps[0].size <= p.off {
				p.ps = p.ps[1:]
			}
			if len(p.ps) == 0 {
				return 0, io.EOF
			}
			pc := p.ps[0]
			p.ps = p.ps[1:]
			p.cur = &reader{ctx: p.ctx, s: p.s, key: pc.key, size: pc.size}
			if _, err := p.cur.Seek(p.off-pc.off, io.SeekStart); err != nil {
				return 0, err
			}
		}
		n, err := p.cur.Read(b)
		p.off += int64(n)
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

func (p *piecesReader) Close() error {
	if p.cur != nil {
		return p.cur.Close()
	}
	return nil
}

// StageResumable stages the first size bytes of upload id as a blob. The
// chunks are copied through a staged blob, because S3's server-side
// UploadPartCopy needs every part but the last to be at least 5 MiB, which
// tus chunks need not be. Closing it removes the upload's chunks. See
// filehub.ResumableStager.
func (s *Store) StageResumable(ctx context.Context, id string, size int64) (filehub.StagedBlob, error) {
	rc, err := s.ReadResumable(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	st, err := s.Stage(ctx)
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(st, io.LimitReader(rc, size))
	if err == nil && n != size {
		err = filehub.Errorf(filehub.ENOTFOUND, "content of upload %s is %d bytes, not %d", id, n, size)
	}
	if err != nil {
		st.Close(ctx)
		return nil, err
	}
	return &resumableStaged{StagedBlob: st, s: s, id: id}, nil
}

// resumableStaged removes the upload's chunks when it is closed.
type resumableStaged struct {
	filehub.StagedBlob
	s  *Store
	id string
}

func (r *resumableStaged) Close(ctx context.Context) error {
	err := r.StagedBlob.Close(ctx)
	return errors.Join(err, r.s.RemoveResumable(ctx, r.id))
}

// RemoveResumable deletes upload id's chunk objects and aborts the
// multipart uploads of chunks a crashed writer left unfinished; see
// filehub.ResumableStager.
func (s *Store) RemoveResumable(ctx context.Context, id string) error {
	ps, err := s.pieces(ctx, id)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if err := s.deleteKey(ctx, p.key); err != nil {
			return s.wrap("remove upload "+id, err)
		}
	}
	prefix, _ := s.uploadPrefix(id)
	uploads := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: &prefix})
	for uploads.HasMorePages() {
		page, err := uploads.NextPage(ctx)
		if isNoSuchUpload(err) {
			break // some servers (gofakes3) say so when there are none
		}
		if err != nil {
			return s.wrap("remove upload "+id, err)
		}
		for _, u := range page.Uploads {
			if err := s.abort(ctx, aws.ToString(u.Key), aws.ToString(u.UploadId)); err != nil {
				return s.wrap("remove upload "+id, err)
			}
		}
	}
	return nil
}
