// Package files is filehub's file service: the streaming, deduplicating
// ingest pipeline and the file operations (list, stat, open, soft delete,
// restore) that the HTTP API, the WebSocket RPC and the CLI share.
//
// It sits between the transports and the stores: it knows the upload limits,
// the content type policy and the trash grace period, and it turns storage
// failures into filehub error codes. It does not know about HTTP.
package files

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/filehub/filehub"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config's zero values.
const (
	DefaultMaxUploadSize = 512 << 20
	DefaultMinFreeSpace  = 512 << 20
	DefaultTrashGrace    = 7 * 24 * time.Hour
)

// Config configures a Service. The zero value is usable.
type Config struct {
	// MaxUploadSize is the largest file accepted, in bytes. Default 512 MiB.
	MaxUploadSize int64
	// MinFreeSpace is the free-space floor of the blob store, in bytes:
	// uploads are refused (ESTORAGE) and the service is not ready below it.
	// Default 512 MiB; negative disables the check.
	MinFreeSpace int64
	// TrashGrace is how long a soft-deleted file can be restored before it
	// may be purged. Default 7 days.
	TrashGrace time.Duration
	// TrashGraceFunc, if set, is asked for the trash grace at each delete
	// and wins over TrashGrace when it returns a positive duration, so the
	// cleanup service's run-time setting applies without a restart.
	TrashGraceFunc func() time.Duration
	// AllowTypes, if not empty, lists the MIME patterns ("image/*",
	// "application/pdf", "*/*") that may be stored; others are refused.
	AllowTypes []string
	// DenyTypes lists MIME patterns that are refused; it wins over
	// AllowTypes. Nil means DefaultDenyTypes; an empty non-nil slice denies
	// nothing.
	DenyTypes []string
	// Registerer receives the upload metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now; tests inject a clock.
	Now func() time.Time
	// Changed, if set, is called after every committed change (upload,
	// delete, restore, discard), so that the WebSocket event hub can read
	// the new events at once instead of at its next poll. It must not
	// block.
	Changed func()
}

// Service implements the file operations. It is safe for concurrent use.
type Service struct {
	meta    filehub.MetaStore
	blobs   filehub.BlobStore
	cfg     Config
	policy  typePolicy
	metrics *metrics
	log     *slog.Logger
	now     func() time.Time
}

// New returns a Service on the given stores. It returns EINVALID if a type
// pattern in cfg is malformed.
func New(meta filehub.MetaStore, blobs filehub.BlobStore, cfg Config) (*Service, error) {
	if cfg.MaxUploadSize <= 0 {
		cfg.MaxUploadSize = DefaultMaxUploadSize
	}
	if cfg.MinFreeSpace == 0 {
		cfg.MinFreeSpace = DefaultMinFreeSpace
	}
	if cfg.TrashGrace <= 0 {
		cfg.TrashGrace = DefaultTrashGrace
	}
	if cfg.DenyTypes == nil {
		cfg.DenyTypes = DefaultDenyTypes
	}
	for _, list := range [][]string{cfg.AllowTypes, cfg.DenyTypes} {
		for _, p := range list {
			if !validPattern(p) {
				return nil, filehub.Errorf(filehub.EINVALID, "invalid MIME pattern %q (want type/subtype, type/* or */*)", p)
			}
		}
	}
	s := &Service{
		meta:    meta,
		blobs:   blobs,
		cfg:     cfg,
		policy:  typePolicy{allow: cfg.AllowTypes, deny: cfg.DenyTypes},
		metrics: newMetrics(cfg.Registerer),
		log:     cfg.Logger,
		now:     cfg.Now,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.registerHealth(cfg.Registerer)
	return s, nil
}

// MaxUploadSize returns the configured upload size limit.
func (s *Service) MaxUploadSize() int64 { return s.cfg.MaxUploadSize }

// Admit decides, before any of the body is read, whether an upload of
// contentLength bytes (-1 when unknown) can be accepted. It returns
// ETOOLARGE when the announced length exceeds the limit and ESTORAGE when the
// blob store's free space is below the floor (or would be after this upload).
func (s *Service) Admit(ctx context.Context, contentLength int64) error {
	if contentLength > s.cfg.MaxUploadSize {
		return filehub.Errorf(filehub.ETOOLARGE, "upload of %d bytes exceeds the limit of %d bytes", contentLength, s.cfg.MaxUploadSize)
	}
	return s.checkSpace(ctx, max(contentLength, 0))
}

// checkSpace returns ESTORAGE if storing need more bytes would take the blob
// store below the free-space floor.
func (s *Service) checkSpace(ctx context.Context, need int64) error {
	fs, ok := s.blobs.(filehub.FreeSpacer)
	if !ok || s.cfg.MinFreeSpace < 0 {
		return nil
	}
	free, err := fs.FreeSpace(ctx)
	if err != nil {
		return filehub.WrapError(filehub.EUNAVAILABLE, "cannot determine free space", err)
	}
	if free-need < s.cfg.MinFreeSpace {
		return filehub.Errorf(filehub.ESTORAGE, "not enough free space to store the upload")
	}
	return nil
}

// Ready returns nil when the service can take uploads: both stores answer
// and free space is above the floor. Otherwise it returns why not.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.meta.Ping(ctx); err != nil {
		return filehub.WrapError(filehub.EUNAVAILABLE, "metadata store not ready", err)
	}
	if err := s.blobs.Ping(ctx); err != nil {
		return filehub.WrapError(filehub.EUNAVAILABLE, "blob store not ready", err)
	}
	return s.checkSpace(ctx, 0)
}

// List returns a page of live files, oldest first.
func (s *Service) List(ctx context.Context, limit int, cursor string) ([]*filehub.File, string, error) {
	return s.meta.ListFiles(ctx, filehub.FileFilter{Limit: limit, Cursor: cursor})
}

// Get returns a live file. Returns ENOTFOUND if the file does not exist or
// is soft-deleted.
func (s *Service) Get(ctx context.Context, id string) (*filehub.File, error) {
	f, err := s.meta.FindFile(ctx, id)
	if err != nil {
		return nil, err
	}
	if f.Deleted() {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "file %s not found", id)
	}
	return f, nil
}

// Open returns a live file and its content. The caller closes the content.
// Returns ENOTFOUND like Get, and EINTERNAL if the record's content is
// missing from the blob store (which the cleanup service reports).
func (s *Service) Open(ctx context.Context, id string) (*filehub.File, io.ReadSeekCloser, error) {
	f, err := s.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	rc, err := s.blobs.Open(ctx, f.SHA256)
	if err != nil {
		if filehub.ErrorCode(err) == filehub.ENOTFOUND {
			s.log.ErrorContext(ctx, "blob missing for live file", "file_id", f.ID, "sha256", f.SHA256)
			return nil, nil, filehub.WrapError(filehub.EINTERNAL, "file content is missing", err)
		}
		return nil, nil, err
	}
	return f, rc, nil
}

// Delete soft-deletes a live file: it disappears from listings and
// downloads at once and can be restored until its purge_after time
// (now + the trash grace). The store audits the deletion with the actor of
// ctx (filehub.WithActor) and its reason (filehub.WithReason, "api" if
// none). Returns ENOTFOUND if there is no live file with that ID.
func (s *Service) Delete(ctx context.Context, id string) (*filehub.File, error) {
	now := s.now().UTC()
	grace := s.cfg.TrashGrace
	if s.cfg.TrashGraceFunc != nil {
		if g := s.cfg.TrashGraceFunc(); g > 0 {
			grace = g
		}
	}
	f, err := s.meta.SoftDeleteFile(withReason(ctx, "api"), id, now, now.Add(grace))
	s.changed(err)
	return f, err
}

// Restore undoes a soft delete, audited like Delete. Returns ENOTFOUND if
// there is no soft-deleted file with that ID (never existed, live, or
// already purged).
func (s *Service) Restore(ctx context.Context, id string) (*filehub.File, error) {
	f, err := s.meta.RestoreFile(withReason(ctx, "api"), id)
	s.changed(err)
	return f, err
}

// Discard removes a file record for good; the HTTP layer uses it to roll back
// the parts of a multipart upload that succeeded before a later part failed.
func (s *Service) Discard(ctx context.Context, id string) error {
	_, err := s.meta.PurgeFile(withReason(ctx, "upload rolled back"), id)
	s.changed(err)
	return err
}

// withReason sets the audit reason of ctx to reason unless the caller set
// one.
func withReason(ctx context.Context, reason string) context.Context {
	if filehub.ReasonFromContext(ctx) != "" {
		return ctx
	}
	return filehub.WithReason(ctx, reason)
}

// changed reports a committed change to Config.Changed.
func (s *Service) changed(err error) {
	if err == nil && s.cfg.Changed != nil {
		s.cfg.Changed()
	}
}
