package files

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/filehub/filehub"
)

// Upload is the result of storing one file. It marshals to the file's JSON
// fields plus "deduplicated".
type Upload struct {
	*filehub.File
	// Deduplicated reports that the content was already stored, so no new
	// blob bytes were written.
	Deduplicated bool `json:"deduplicated"`
}

// commitTimeout bounds the commit phase of an upload, which runs detached
// from the request's context: once the whole body has arrived, a client that
// hangs up should not leave a half-committed upload behind.
const commitTimeout = 30 * time.Second

// Upload streams body into the store as a file called name (sanitized here)
// owned by ownerKeyID. Memory use does not grow with the body's size.
//
// The body is copied to a staged blob while being hashed, in a two-stage
// pipeline: the calling goroutine reads and hashes while a second goroutine
// writes, so hashing, writing and write-back overlap. The content type is
// sniffed from the first bytes before anything is written. Then the blob is
// committed (unless its content is already stored) and the file recorded;
// see docs/decisions.md for why this order is safe against crashes and
// concurrent cleanup.
//
// Errors: ETOOLARGE past MaxUploadSize, EUNSUPPORTED for a refused type,
// ESTORAGE on a full disk, EINVALID (or ETIMEOUT, if the body reader says so)
// when the body cannot be read to the end, EUNAVAILABLE when a store is down.
// On any error nothing is left behind: no record, no blob, no staged file.
func (s *Service) Upload(ctx context.Context, body io.Reader, name, ownerKeyID string) (*Upload, error) {
	start := time.Now()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()

	up, received, err := s.upload(ctx, body, name, ownerKeyID)
	var fe *filehub.Error
	if err != nil && !errors.As(err, &fe) && ctx.Err() != nil {
		// A store gave up because the request's context ended: the client
		// went away before the body was complete.
		err = filehub.WrapError(filehub.EINVALID, "upload aborted: the client went away", err)
	}

	s.metrics.bytesReceived.Add(float64(received))
	s.metrics.duration.Observe(time.Since(start).Seconds())
	s.metrics.uploads.WithLabelValues(uploadResult(up, err)).Inc()
	if err != nil {
		s.log.DebugContext(ctx, "upload failed", "name", name, "received", received, "err", err)
		return nil, err
	}
	s.changed(nil)
	if up.Deduplicated {
		s.metrics.dedupHits.Inc()
		s.metrics.dedupSaved.Add(float64(up.Size))
	}
	return up, nil
}

func uploadResult(up *Upload, err error) string {
	switch filehub.ErrorCode(err) {
	case "":
		if up.Deduplicated {
			return resultDeduplicated
		}
		return resultStored
	case filehub.ETOOLARGE:
		return resultTooLarge
	case filehub.EUNSUPPORTED:
		return resultUnsupported
	case filehub.ESTORAGE:
		return resultStorageFull
	case filehub.EINVALID, filehub.ETIMEOUT:
		return resultAborted
	case filehub.EUNAVAILABLE:
		return resultUnavailable
	}
	return resultError
}

func (s *Service) upload(ctx context.Context, body io.Reader, name, ownerKeyID string) (*Upload, int64, error) {
	name = SanitizeName(name)
	// Read one byte past the limit so that an oversized body is detected
	// whatever Content-Length claimed (or when there was none).
	body = io.LimitReader(body, s.cfg.MaxUploadSize+1)

	p := newPipeline()
	defer p.release()

	// Sniff the type before anything is written: a refused upload never
	// touches the disk.
	head := *p.bufs[0]
	n, eof, err := readChunk(ctx, body, head)
	received := int64(n)
	if err != nil {
		return nil, received, err
	}
	ct := sniff(head[:min(n, sniffLen)])
	if err := s.policy.check(ct); err != nil {
		return nil, received, err
	}
	if received > s.cfg.MaxUploadSize {
		return nil, received, s.tooLarge()
	}

	staged, err := s.blobs.Stage(ctx)
	if err != nil {
		return nil, received, err
	}
	defer staged.Close(ctx)

	h := sha256.New()
	total, err := p.run(ctx, body, staged, h, n, eof)
	received = total
	if err != nil {
		return nil, received, err
	}
	if total > s.cfg.MaxUploadSize {
		return nil, received, s.tooLarge()
	}
	sum := hex.EncodeToString(h.Sum(nil))

	// The body is complete: finish even if the client hangs up now.
	up, err := s.commit(ctx, staged, &filehub.File{
		ID:          filehub.NewID("f_"),
		Name:        name,
		Size:        total,
		SHA256:      sum,
		ContentType: ct.name,
		OwnerKeyID:  ownerKeyID,
	})
	return up, received, err
}

// commit commits a fully written, hashed staged blob as the object f.SHA256
// (unless that content is already stored) and records f, which has every
// field but CreatedAt set. It is the one commit path of every upload: the
// HTTP API's, the WebSocket's and tus's (CommitStaged). It runs detached
// from ctx's cancellation, bounded by commitTimeout.
func (s *Service) commit(ctx context.Context, staged filehub.StagedBlob, f *filehub.File) (*Upload, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	sum := f.SHA256

	// Unknown content is committed before its record (step 2 of the
	// upload commit protocol). Known content needs neither fsync nor link
	// while its object is there, but the object may have gone missing (a
	// lost disk, a bad restore), and this upload is then the one copy that
	// can repair it: one stat (a HEAD on S3) tells. If the record vanishes
	// before CreateFile runs, CreateFile calls place, which commits the
	// staged copy after all.
	//
	// A staged blob that can link itself only if its object is absent
	// (localfs: the link's EEXIST tells) is committed first: an absent
	// object is committed whether its content is known or not, so new
	// content (the common case) skips the metadata lookup, a ninth of a
	// small upload's CPU (issue 14). Whether the record existed is then
	// learnt from CreateFile (dedup), and the missing flag cleared as below;
	// SetBlobMissing changes nothing if the flag was not set.
	commit, flagged, linked := true, false, false
	if nc, ok := staged.(newCommitter); ok {
		existed, err := nc.CommitNew(cctx, sum)
		if err != nil {
			return nil, err
		}
		linked = !existed
	}
	if !linked {
		known, err := s.meta.FindBlob(cctx, sum)
		switch {
		case err == nil:
			flagged = known.MissingSince != nil
			_, err := s.blobs.Stat(cctx, sum)
			if err != nil && filehub.ErrorCode(err) != filehub.ENOTFOUND {
				return nil, err
			}
			commit = err != nil
		case filehub.ErrorCode(err) != filehub.ENOTFOUND:
			return nil, err
		}
		if commit {
			if err := staged.Commit(cctx, sum); err != nil {
				return nil, err
			}
		}
	}
	f.CreatedAt = s.now().UTC()
	dedup, err := s.meta.CreateFile(cctx, f, func(ctx context.Context) error {
		return staged.Commit(ctx, sum)
	})
	if err != nil {
		return nil, err
	}
	if flagged || (linked && dedup) {
		s.objectFound(cctx, sum)
	}
	return &Upload{File: f, Deduplicated: dedup}, nil
}

// newCommitter is a StagedBlob that commits itself only if its object does
// not exist yet, telling which (localfs: the link's EEXIST; s3: the
// conditional PutObject's 412 or the copy path's HEAD), so that new content
// needs no metadata lookup before its commit.
type newCommitter interface {
	CommitNew(ctx context.Context, sum string) (existed bool, err error)
}

// objectFound clears the missing flag of a blob whose object an upload
// has just re-created, so that its files are served again at once rather
// than after the next cleanup run (whose missing_object kind would clear
// it too; a failure here is only logged for that reason).
func (s *Service) objectFound(ctx context.Context, sum string) {
	sw, ok := s.meta.(filehub.BlobSweeper)
	if !ok {
		return
	}
	audit := filehub.AuditEntry{Action: filehub.AuditObjectFound, Actor: filehub.ActorFromContext(ctx),
		Reason: "the same content was uploaded again"}
	if _, err := sw.SetBlobMissing(ctx, sum, time.Time{}, audit); err != nil {
		s.log.Warn("clear missing flag after re-upload", "sha256", sum, "err", err)
	}
}

func (s *Service) tooLarge() error {
	return filehub.Errorf(filehub.ETOOLARGE, "upload exceeds the limit of %d bytes", s.cfg.MaxUploadSize)
}

// Pipeline sizing. Each upload holds at least minPipelineDepth and at most
// pipelineDepth chunks: the chunks beyond the minimum come from a budget
// shared by all uploads (spareChunks), so one large upload gets the full
// overlap of reading, hashing and writing, while 100 concurrent uploads
// hold 100 × 64 KiB plus the budget's 4 MiB instead of 100 × 4 × 64 KiB
// (issue 14: the peak RSS of 100 concurrent 10 MiB uploads went from 60 to
// 45 MiB). An upload without spare chunks reads and writes in turn; with
// that many in flight the disk is busy anyway. Memory is bounded by
// concurrency, never by file size. 64 KiB chunks keep the number of write
// system calls low (16 per MiB).
const (
	chunkSize        = 64 << 10
	pipelineDepth    = 4
	minPipelineDepth = 1
	spareChunkBudget = 64 // 4 MiB
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// spareChunks holds a token for each chunk an upload uses beyond
// minPipelineDepth.
var spareChunks = make(chan struct{}, spareChunkBudget)

// pipeline copies a body to a staged blob: the caller's goroutine reads and
// hashes, a writer goroutine writes. Buffers circulate between them through
// the free list, so at most pipelineDepth chunks are in use.
type pipeline struct {
	bufs []*[]byte // bufs[0] is the head chunk, read before the pipeline starts
}

// newPipeline takes the head chunk only: a body that fits in it (most
// small uploads) never needs the others, which run takes when it starts
// the writer.
func newPipeline() *pipeline {
	p := &pipeline{bufs: make([]*[]byte, 1, pipelineDepth)}
	p.bufs[0] = chunkPool.Get().(*[]byte)
	return p
}

func (p *pipeline) release() {
	for i, b := range p.bufs {
		chunkPool.Put(b)
		if i >= minPipelineDepth {
			<-spareChunks
		}
	}
	p.bufs = nil
}

// readChunk fills buf from r. It returns the bytes read, whether r is
// exhausted, and a filehub error if reading failed.
//
// Only a plain io.EOF ends a body. io.ReadFull is deliberately not used: it
// turns an EOF after a partial read into io.ErrUnexpectedEOF, which is also
// what net/http returns for a body cut short (a client that hung up before
// sending its Content-Length), and the two must not be confused — the first
// is a complete upload, the second a truncated one that must not be stored.
func readChunk(ctx context.Context, r io.Reader, buf []byte) (n int, eof bool, err error) {
	for n < len(buf) {
		var m int
		m, err = r.Read(buf[n:])
		n += m
		if err != nil {
			break
		}
	}
	switch err {
	case nil:
		return n, false, nil
	case io.EOF: // exactly io.EOF, never a wrapped or unexpected one (see above)
		return n, true, nil
	}
	var fe *filehub.Error
	if errors.As(err, &fe) {
		return n, false, err
	}
	if ctx.Err() != nil {
		return n, false, filehub.WrapError(filehub.EINVALID, "upload aborted: the client went away", err)
	}
	return n, false, filehub.WrapError(filehub.EINVALID, "upload aborted: the body could not be read to its end", err)
}

// run copies the rest of body after the first n bytes already in the head
// buffer, returning the total size.
func (p *pipeline) run(ctx context.Context, body io.Reader, w io.Writer, h hash.Hash, n int, eof bool) (int64, error) {
	head := (*p.bufs[0])[:n]
	total := int64(n)
	if eof {
		// Small upload: the whole body is in hand; no goroutine needed.
		h.Write(head)
		if _, err := w.Write(head); err != nil {
			return total, err
		}
		return total, nil
	}

fill:
	for len(p.bufs) < pipelineDepth {
		if len(p.bufs) >= minPipelineDepth {
			select {
			case spareChunks <- struct{}{}:
			default: // the budget is spent: run with fewer chunks
				break fill
			}
		}
		p.bufs = append(p.bufs, chunkPool.Get().(*[]byte))
	}
	if len(p.bufs) == 1 {
		return p.runSerial(ctx, body, w, h, n)
	}

	type chunk struct{ b []byte }
	work := make(chan chunk, pipelineDepth)
	free := make(chan []byte, pipelineDepth)
	for _, b := range p.bufs[1:] {
		free <- *b
	}
	var writeErr atomic.Pointer[error]
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range work {
			if writeErr.Load() == nil {
				if _, err := w.Write(c.b); err != nil {
					writeErr.Store(&err)
				}
			}
			free <- c.b[:cap(c.b)]
		}
	}()
	finish := func(err error) (int64, error) {
		close(work)
		<-done
		if werr := writeErr.Load(); werr != nil {
			return total, *werr
		}
		return total, err
	}

	// The writer may still be writing a chunk while it is being hashed
	// here; both only read it, and it returns to the free list only after
	// the write, so it is never overwritten while in use.
	work <- chunk{head}
	h.Write(head)
	for !eof {
		if writeErr.Load() != nil {
			return finish(nil)
		}
		buf := <-free
		var err error
		n, eof, err = readChunk(ctx, body, buf)
		total += int64(n)
		if err != nil {
			return finish(err)
		}
		if n == 0 {
			free <- buf
			break
		}
		work <- chunk{buf[:n]}
		h.Write(buf[:n])
	}
	return finish(nil)
}

// runSerial is run with one chunk, when the shared budget is spent: read,
// hash and write in turn on the caller's goroutine, since a writer
// goroutine could not overlap anything without a second chunk and would
// only add two hand-offs per chunk.
func (p *pipeline) runSerial(ctx context.Context, body io.Reader, w io.Writer, h hash.Hash, n int) (int64, error) {
	buf := *p.bufs[0]
	total := int64(n)
	for {
		h.Write(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			return total, err
		}
		var eof bool
		var err error
		n, eof, err = readChunk(ctx, body, buf)
		total += int64(n)
		if err != nil {
			return total, err
		}
		if eof || n == 0 {
			if n > 0 {
				h.Write(buf[:n])
				if _, err := w.Write(buf[:n]); err != nil {
					return total, err
				}
			}
			return total, nil
		}
	}
}
