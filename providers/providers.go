// Package providers pushes files' content to model providers (see
// filehub.Provider), uploading each content at most once per provider and
// purpose.
//
// A push claims the content's mapping (filehub.ProviderStore) before it
// uploads: of concurrent pushes of one content exactly one claims and
// uploads, the others wait for its result. A claim left by a crashed push
// expires after Config.ClaimTTL and is taken over. A mapping not verified
// for Config.VerifyAfter is checked with the provider before it is reused;
// if the provider no longer has the file (expired, or deleted outside
// filehub) the content is uploaded again.
package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
)

// Config configures a Service. The zero value is ready to use.
type Config struct {
	// ClaimTTL is how long a push's claim holds before another push may
	// take it over: longer than the slowest upload. Default 15m.
	ClaimTTL time.Duration
	// VerifyAfter is how long a mapping is reused without asking the
	// provider whether it still has the file. Default 1h.
	VerifyAfter time.Duration
	// PollInterval is how often a push waiting for another's upload looks
	// at the mapping. Default 250ms.
	PollInterval time.Duration
	// MaxWait bounds how long a push waits for another's upload before
	// it fails with EUNAVAILABLE. Default 5m.
	MaxWait time.Duration
	// Now returns the time stored in mappings and compared with claims
	// and verifications. Default time.Now.
	Now func() time.Time
	// Logger receives the service's logs. Default: discard.
	Logger *slog.Logger
	// Registerer receives the filehub_provider_* collectors of pushes
	// (see metrics.go). Default: none.
	Registerer prometheus.Registerer
}

// Result is the outcome of a push.
type Result struct {
	Provider       string `json:"provider"`
	ProviderFileID string `json:"provider_file_id"`
	// Reused is true when the provider already had the content, false
	// when this push uploaded it.
	Reused bool `json:"reused"`
}

// Service pushes content to the configured providers. It is safe for
// concurrent use.
type Service struct {
	meta      filehub.MetaStore
	store     filehub.ProviderStore
	blobs     filehub.BlobStore
	providers map[string]filehub.Provider
	cfg       Config
	log       *slog.Logger
	metrics   *metrics
}

// New returns a Service pushing the content of meta's files, read from
// blobs, to providers. It returns EINVALID if two providers share a name,
// or if there are providers and meta does not implement
// filehub.ProviderStore, and the registerer's error if the metrics cannot
// be registered.
func New(meta filehub.MetaStore, blobs filehub.BlobStore, providers []filehub.Provider, cfg Config) (*Service, error) {
	if cfg.ClaimTTL <= 0 {
		cfg.ClaimTTL = 15 * time.Minute
	}
	if cfg.VerifyAfter <= 0 {
		cfg.VerifyAfter = time.Hour
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{meta: meta, blobs: blobs, providers: map[string]filehub.Provider{}, cfg: cfg, log: cfg.Logger}
	for _, p := range providers {
		if _, dup := s.providers[p.Name()]; dup {
			return nil, filehub.Errorf(filehub.EINVALID, "two providers are named %q", p.Name())
		}
		s.providers[p.Name()] = p
	}
	if len(providers) > 0 {
		ps, ok := meta.(filehub.ProviderStore)
		if !ok {
			return nil, filehub.Errorf(filehub.EINVALID, "the metadata store %T cannot record provider copies", meta)
		}
		s.store = ps
	}
	m, err := newMetrics(cfg.Registerer, s.providers)
	if err != nil {
		return nil, fmt.Errorf("register provider metrics: %w", err)
	}
	s.metrics = m
	return s, nil
}

// Providers returns the names of the configured providers, sorted.
func (s *Service) Providers() []string {
	return slices.Sorted(maps.Keys(s.providers))
}

// Push makes sure the content of file fileID exists at the provider named
// provider and returns the provider's file ID. It returns ENOTFOUND for an
// unknown provider or a file that does not exist or is in the trash,
// ETOOLARGE if the file is larger than the provider accepts, EUNAVAILABLE
// if another push of the same content is still uploading after
// Config.MaxWait, and the provider's error if the upload fails.
func (s *Service) Push(ctx context.Context, fileID, provider string) (*Result, error) {
	p, ok := s.providers[provider]
	if !ok {
		s.metrics.observe(unknownProvider, nil, 0, filehub.ErrNotFound)
		return nil, filehub.Errorf(filehub.ENOTFOUND, "unknown provider %q", provider)
	}
	var size int64
	res, err := s.push(ctx, p, fileID, &size)
	s.metrics.observe(provider, res, size, err)
	return res, err
}

// push is Push to the provider p; it sets *size to the file's size once
// known.
func (s *Service) push(ctx context.Context, p filehub.Provider, fileID string, size *int64) (*Result, error) {
	provider := p.Name()
	f, err := s.meta.FindFile(ctx, fileID)
	if err != nil {
		return nil, err
	}
	*size = f.Size
	if f.Deleted() {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "file %s is in the trash", fileID)
	}
	if limit := p.MaxFileSize(); limit > 0 && f.Size > limit {
		return nil, filehub.Errorf(filehub.ETOOLARGE, "file %s has %d bytes; provider %s accepts up to %d", fileID, f.Size, provider, limit)
	}
	key := filehub.ProviderKey{SHA256: f.SHA256, Provider: p.Name(), Purpose: p.Purpose()}
	claimID := filehub.NewID("c_")
	deadline := time.NewTimer(s.cfg.MaxWait)
	defer deadline.Stop()
	for {
		m, claimed, err := s.store.ClaimProviderMapping(ctx, key, f.Size, claimID, s.cfg.Now(), s.cfg.ClaimTTL)
		if err != nil {
			return nil, err
		}
		switch {
		case claimed:
			res, retry, err := s.upload(ctx, p, f, m)
			if !retry {
				return res, err
			}
		case m.State == filehub.MappingReady:
			res, retry, err := s.reuse(ctx, p, m)
			if !retry {
				return res, err
			}
			continue // the stale mapping is gone: claim it afresh at once
		}
		// Another push is uploading the content: wait for its result.
		t := time.NewTimer(s.cfg.PollInterval)
		select {
		case <-t.C:
		case <-deadline.C:
			t.Stop()
			return nil, filehub.Errorf(filehub.EUNAVAILABLE,
				"another push of this content to %s is still uploading after %v; try again later", provider, s.cfg.MaxWait)
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

// upload uploads f's content under the claim m. retry is true when the
// claim was lost to another push meanwhile, whose result is to be awaited.
func (s *Service) upload(ctx context.Context, p filehub.Provider, f *filehub.File, m *filehub.ProviderMapping) (res *Result, retry bool, err error) {
	open := func() (io.ReadCloser, error) { return s.blobs.Open(ctx, f.SHA256) }
	pf, err := p.Upload(ctx, f.Name, m.Purpose, f.Size, open)
	if err != nil {
		// Give the claim up, so that the next push tries again at once
		// instead of after the claim TTL. It must happen even if ctx was
		// canceled.
		if _, derr := s.store.DeleteProviderMapping(context.WithoutCancel(ctx), m); derr != nil {
			s.log.Warn("providers: release a failed claim", "provider", p.Name(), "sha256", f.SHA256, "err", derr)
		}
		return nil, false, err
	}
	done, err := s.store.CompleteProviderMapping(ctx, m.Key(), m.ClaimID, pf.ID, s.cfg.Now())
	if filehub.ErrorCode(err) == filehub.ECONFLICT || filehub.ErrorCode(err) == filehub.ENOTFOUND {
		// This upload outlived its claim and another push has taken over:
		// its copy will be the one mapped, ours is a duplicate.
		s.log.Warn("providers: claim lost during the upload; deleting the duplicate", "provider", p.Name(), "sha256", f.SHA256, "provider_file_id", pf.ID)
		if derr := p.Delete(context.WithoutCancel(ctx), pf.ID); derr != nil {
			s.log.Warn("providers: delete a duplicate provider file", "provider", p.Name(), "provider_file_id", pf.ID, "err", derr)
		}
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	return &Result{Provider: p.Name(), ProviderFileID: done.ProviderFileID}, false, nil
}

// reuse answers with the ready mapping m, after asking the provider whether
// it still has the file if m was last verified VerifyAfter ago or more.
// retry is true when the provider no longer has it and the mapping has been
// deleted (or changed by another push): claim again.
func (s *Service) reuse(ctx context.Context, p filehub.Provider, m *filehub.ProviderMapping) (res *Result, retry bool, err error) {
	now := s.cfg.Now()
	var verified time.Time
	if m.VerifiedAt == nil || now.Sub(*m.VerifiedAt) >= s.cfg.VerifyAfter {
		_, err := p.Retrieve(ctx, m.ProviderFileID)
		if errors.Is(err, filehub.ErrNotFound) {
			s.log.Info("providers: provider file gone; uploading again", "provider", p.Name(), "sha256", m.SHA256, "provider_file_id", m.ProviderFileID)
			if _, err := s.store.DeleteProviderMapping(ctx, m); err != nil {
				return nil, false, err
			}
			return nil, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		verified = now
	}
	if err := s.store.TouchProviderMapping(ctx, m.Key(), verified, now); err != nil {
		if errors.Is(err, filehub.ErrNotFound) {
			return nil, true, nil // deleted meanwhile by a push that found it gone
		}
		return nil, false, err
	}
	return &Result{Provider: p.Name(), ProviderFileID: m.ProviderFileID, Reused: true}, false, nil
}
