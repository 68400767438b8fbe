package mcpserver

import (
	"context"
	"io"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/providers"
)

// This file is the in-process Backend: the daemon's own services, for the
// Streamable HTTP endpoint.

// Pusher is what Local needs of the provider push service;
// *providers.Service implements it.
type Pusher interface {
	Push(ctx context.Context, fileID, provider string) (*providers.Result, error)
}

// Local is the Backend of the daemon's own services. Files and Meta are
// required; Providers and Cleanup may be nil (push_to_provider then
// answers unknown provider, cleanup_preview not found).
type Local struct {
	Files     *files.Service
	Meta      filehub.MetaStore
	Providers Pusher
	Cleanup   *cleanup.Service
	// PollInterval is how often Watch reads the event log for changes
	// made by other instances; changes made by this one are read at once
	// when Notify is called. Default 1s.
	PollInterval time.Duration
	// Idle, if set, reports that nobody would be told about events now
	// (no MCP session is open). While it holds, Watch reads no events: at
	// each PollInterval it moves past the ones written meanwhile, without
	// decoding them, and Notify is ignored. Every upload writes an event,
	// and reading each one again for no listener cost about 6% of a small
	// upload's CPU (issue 14). Nil: never idle.
	Idle func() bool

	wake chan struct{}
}

var _ Backend = (*Local)(nil)

// NewLocal returns a Local backend on the daemon's services.
func NewLocal(svc *files.Service, meta filehub.MetaStore, pusher Pusher, cleaner *cleanup.Service) *Local {
	return &Local{Files: svc, Meta: meta, Providers: pusher, Cleanup: cleaner, wake: make(chan struct{}, 1)}
}

// Notify makes Watch read the event log now (wire it to files.Config.Changed
// next to the WebSocket hub's). It never blocks.
func (l *Local) Notify() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *Local) ListFiles(ctx context.Context, q ListQuery) ([]*filehub.File, string, error) {
	return l.Meta.ListFiles(ctx, filehub.FileFilter{Limit: q.Limit, Cursor: q.Cursor, IncludeDeleted: q.IncludeDeleted})
}

func (l *Local) GetFile(ctx context.Context, id string) (*filehub.File, error) {
	return l.Files.Get(ctx, id)
}

func (l *Local) OpenContent(ctx context.Context, id string) (*filehub.File, io.ReadCloser, error) {
	return l.Files.Open(ctx, id)
}

func (l *Local) Upload(ctx context.Context, name string, content io.Reader, size int64) (*filehub.File, bool, error) {
	if err := l.Files.Admit(ctx, size); err != nil {
		return nil, false, err
	}
	up, err := l.Files.Upload(ctx, content, name, filehub.ActorFromContext(ctx))
	if err != nil {
		return nil, false, err
	}
	return up.File, up.Deduplicated, nil
}

func (l *Local) Delete(ctx context.Context, id string) (*filehub.File, error) {
	return l.Files.Delete(ctx, id)
}

func (l *Local) Restore(ctx context.Context, id string) (*filehub.File, error) {
	return l.Files.Restore(ctx, id)
}

func (l *Local) Push(ctx context.Context, id, provider string) (*PushResult, error) {
	if l.Providers == nil {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "unknown provider %q", provider)
	}
	r, err := l.Providers.Push(ctx, id, provider)
	if err != nil {
		return nil, err
	}
	return &PushResult{Provider: r.Provider, ProviderFileID: r.ProviderFileID, Reused: r.Reused}, nil
}

func (l *Local) CleanupPreview(ctx context.Context) (*CleanupPreview, error) {
	if l.Cleanup == nil {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "this server has no cleanup service")
	}
	r, err := l.Cleanup.Run(ctx, cleanup.RunOptions{DryRun: true, Trigger: "mcp"})
	if r == nil {
		return nil, err
	}
	// A dry run refused by the safety cap still reports its plan.
	return previewOf(cleanup.ReportWire(r)), nil
}

// previewOf summarises a cleanup report (both backends use it).
func previewOf(r *api.CleanupReport) *CleanupPreview {
	p := &CleanupPreview{RunID: r.RunID, Status: r.Status, Error: r.Error, BytesFreed: r.BytesFreed, TotalBlobs: r.TotalBlobs, Kinds: map[string]KindPreview{}}
	for k, kr := range r.Kinds {
		p.Kinds[k] = KindPreview{Found: kr.Found, WouldDelete: kr.Deleted, Bytes: kr.BytesFreed, Skipped: kr.Skipped}
	}
	return p
}

// providerUsage returns the provider quotas of the newest cleanup report.
func providerUsage(runs []*api.CleanupReport) []ProviderUsage {
	out := []ProviderUsage{}
	if len(runs) == 0 {
		return out
	}
	for _, q := range runs[0].ProviderQuotas {
		out = append(out, ProviderUsage{Provider: q.Provider, Files: q.Files, Quota: q.Quota, Near: q.Near})
	}
	return out
}

func (l *Local) StorageStats(ctx context.Context) (*StorageStats, error) {
	st, err := l.storeStats(ctx)
	if err != nil {
		return nil, err
	}
	if l.Cleanup != nil {
		runs, err := l.Cleanup.Runs(ctx, 1)
		if err != nil {
			return nil, err
		}
		st.Providers = providerUsage(cleanup.ReportsWire(runs))
	}
	return st, nil
}

// storeStats asks the metadata store for its totals (one query) when it can
// count them, and pages through the file records otherwise.
func (l *Local) storeStats(ctx context.Context) (*StorageStats, error) {
	if sr, ok := l.Meta.(filehub.StatsReader); ok {
		st, err := sr.StorageStats(ctx)
		if err != nil {
			return nil, err
		}
		return statsFrom(st), nil
	}
	c := newStatsCounter()
	cursor := ""
	for {
		fs, next, err := l.Meta.ListFiles(ctx, filehub.FileFilter{Limit: 1000, Cursor: cursor, IncludeDeleted: true})
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			c.add(f)
		}
		if next == "" {
			return c.result(true), nil
		}
		cursor = next
	}
}

func (l *Local) Watch(ctx context.Context, after int64, fn func(*filehub.Event)) error {
	interval := l.PollInterval
	if interval <= 0 {
		interval = time.Second
	}
	if after < 0 {
		_, latest, err := l.Meta.EventBounds(ctx)
		if err != nil {
			return err
		}
		after = latest
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	ticked := false
	for {
		switch {
		case l.Idle == nil || !l.Idle():
			for {
				events, err := l.Meta.ListEvents(ctx, after, 1000)
				if err != nil {
					return err
				}
				for _, e := range events {
					fn(e)
					after = e.ID
				}
				if len(events) < 1000 {
					break
				}
			}
		case ticked:
			// The latest ID is read before Idle is asked again: if Idle
			// still holds, every event up to latest was written before
			// any session that could want it was open, so none is lost.
			// If a session opened meanwhile, the next round reads them.
			_, latest, err := l.Meta.EventBounds(ctx)
			if err != nil {
				return err
			}
			if l.Idle() {
				after = max(after, latest)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.wake:
			ticked = false
		case <-tick.C:
			ticked = true
		}
	}
}
