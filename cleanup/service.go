package cleanup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/filehub/filehub"
)

// leaseName is the name of the lease that makes runs exclusive.
const leaseName = "cleanup"

// Service runs cleanups. It is safe for concurrent use; runs are exclusive
// (Run returns ECONFLICT while another one, in this or another process, is
// in progress).
type Service struct {
	store   filehub.CleanupStore
	meta    filehub.MetaStore // for blob lookups and (if it is one) the ProviderStore
	blobs   filehub.BlobStore
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	id      string
	current atomic.Pointer[Settings]
}

// New returns a Service on meta, which must implement filehub.CleanupStore
// (EINVALID otherwise), and blobs. It reads the stored settings once, with
// ctx, so that TrashGrace is right from the start; if that fails it returns
// the store's error.
func New(ctx context.Context, meta filehub.MetaStore, blobs filehub.BlobStore, cfg Config) (*Service, error) {
	store, ok := meta.(filehub.CleanupStore)
	if !ok {
		return nil, filehub.Errorf(filehub.EINVALID, "the metadata store (%T) does not support cleanup", meta)
	}
	if blobs == nil {
		return nil, filehub.Errorf(filehub.EINVALID, "no blob store given")
	}
	cfg.setDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, filehub.WrapError(filehub.EINTERNAL, "register cleanup metrics", err)
	}
	s := &Service{store: store, meta: meta, blobs: blobs, cfg: cfg, log: cfg.Logger, metrics: m, id: cfg.InstanceID}
	if s.id == "" {
		s.id = filehub.NewID("cleanup_")
	}
	def := s.defaultSettings()
	s.current.Store(&def)
	if _, err := s.Settings(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// RunOptions are the parameters of one run.
type RunOptions struct {
	// DryRun computes and reports exactly what a real run would do and
	// changes nothing (no deletions, marks, flags, audit entries or
	// events); the run itself is recorded.
	DryRun bool
	// Force lets a run exceed the safety cap (Config.MaxDeleteFraction).
	Force bool
	// Only restricts the run to these kinds; empty means all.
	Only []Kind
	// Trigger says what started the run ("schedule", "api", "cli",
	// "websocket"). Default "manual".
	Trigger string
	// Actor is who asked for it, for the audit log. Default:
	// filehub.ActorFromContext(ctx).
	Actor string
	// ProviderOrphans is what to do with provider files no mapping names:
	// ProviderOrphansReport (default, also for "") or
	// ProviderOrphansDelete (delete those older than the blob grace).
	ProviderOrphans string
}

// errCrash marks the error of a run stopped by Config.BeforePhase.
type crashError struct{ err error }

func (e *crashError) Error() string { return fmt.Sprintf("cleanup: stopped by test hook: %v", e.err) }
func (e *crashError) Unwrap() error { return e.err }

// Run runs one cleanup: it takes the lease, records the run, plans every
// kind (scans, computing what qualifies), checks the safety cap, carries
// out the plan phase by phase and records the result. See the package doc
// and docs/cleanup.md for the guarantees.
//
// Run returns the report of the recorded run, also with an error when the
// run failed or was refused (then Report.Status says which). Errors:
// ECONFLICT if another run holds the lease ("a cleanup is already
// running"), ECONFLICT if the safety cap trips without opts.Force, EINVALID
// for an unknown kind in opts.Only, and the store's errors.
func (s *Service) Run(ctx context.Context, opts RunOptions) (*Report, error) {
	for _, k := range opts.Only {
		if _, err := ParseKind(string(k)); err != nil {
			return nil, err
		}
	}
	switch opts.ProviderOrphans {
	case "", ProviderOrphansReport, ProviderOrphansDelete:
	default:
		return nil, filehub.Errorf(filehub.EINVALID, "provider orphans: want report or delete, not %q", opts.ProviderOrphans)
	}
	if opts.Trigger == "" {
		opts.Trigger = "manual"
	}
	if opts.Actor == "" {
		opts.Actor = filehub.ActorFromContext(ctx)
	}
	start := time.Now()
	now := s.cfg.Now()
	// The holder names this run, not only this process: two runs of one
	// process (the schedule and an API call) are two tenures, and a
	// renewal by one never extends the other's.
	holder := s.id + "/" + filehub.NewID("run_")
	fence, ok, err := s.store.AcquireLease(ctx, leaseName, holder, now, s.cfg.LeaseTTL)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.metrics.runs.WithLabelValues(resultConflict).Inc()
		return nil, filehub.Errorf(filehub.ECONFLICT, "a cleanup is already running (held by %s)", fence.Holder)
	}
	crashed := false
	defer func() {
		if crashed {
			return
		}
		// Release even if ctx is done: otherwise the next run waits for
		// the lease to expire.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := s.store.ReleaseLease(rctx, leaseName, holder); err != nil {
			s.log.Warn("cleanup: release lease", "err", err)
		}
	}()

	st, err := s.Settings(ctx)
	if err != nil {
		return nil, err
	}
	r := &Report{
		Trigger: opts.Trigger, Actor: opts.Actor, DryRun: opts.DryRun, Force: opts.Force,
		StartedAt: now.UTC(), Status: filehub.RunRunning, Settings: st, Kinds: make(map[Kind]*KindReport),
	}
	run := r.run()
	if err := s.store.InsertRun(ctx, run); err != nil {
		return nil, err
	}
	r.RunID = run.ID
	log := s.log.With("run_id", r.RunID, "dry_run", r.DryRun, "trigger", r.Trigger)
	log.InfoContext(ctx, "cleanup: run started", "actor", r.Actor, "force", opts.Force, "only", opts.Only)
	s.event(ctx, filehub.EventCleanupStarted, r)

	x := &execution{s: s, r: r, opts: opts, st: st, now: now, log: log, fence: fence}
	runErr := s.runRenewing(ctx, x)
	var ce *crashError
	if errors.As(runErr, &ce) {
		crashed = true
		return r, runErr
	}

	r.FinishedAt = s.cfg.Now().UTC()
	result := resultOK
	switch {
	case runErr == nil:
		r.Status = filehub.RunOK
		if r.DryRun {
			result = resultDryRun
		}
	case x.refused:
		r.Status, r.Error, result = filehub.RunRefused, filehub.ErrorMessage(runErr), resultRefused
	default:
		r.Status, r.Error, result = filehub.RunFailed, runErr.Error(), resultFailed
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.finish(fctx, r); err != nil {
		log.ErrorContext(ctx, "cleanup: record run result", "err", err)
		runErr = errors.Join(runErr, err)
	}
	s.metrics.runs.WithLabelValues(result).Inc()
	s.metrics.duration.Observe(time.Since(start).Seconds())
	if r.Status == filehub.RunOK && !r.DryRun {
		s.metrics.lastSuccess.Set(float64(r.StartedAt.UnixNano()) / 1e9)
	}
	for k, kr := range r.Kinds {
		s.metrics.found.WithLabelValues(string(k)).Add(float64(kr.Found))
		if !r.DryRun && k != KindMissingObject {
			s.metrics.deleted.WithLabelValues(string(k)).Add(float64(kr.Deleted))
			s.metrics.deletedBytes.WithLabelValues(string(k)).Add(float64(kr.BytesFreed))
		}
	}
	if kr := r.Kinds[KindMissingObject]; kr != nil && !kr.Unsupported {
		s.metrics.missing.Set(float64(kr.Found))
	}
	log.InfoContext(ctx, "cleanup: run finished", "status", r.Status, "bytes_freed", r.BytesFreed,
		"errors", r.Errors, "err", runErr)
	s.event(fctx, filehub.EventCleanupFinished, r)
	return r, runErr
}

// runRenewing runs x while renewing its lease every Config.RenewEvery, so
// that a phase longer than the lease's TTL (an S3 scan, provider retries)
// keeps it. If a renewal finds the lease taken by another run, the run's
// context is cancelled and runRenewing returns the ErrLeaseLost error; the
// fence of each destructive step is what guarantees that nothing is
// deleted in between, the renewal only stops the run early.
func (s *Service) runRenewing(ctx context.Context, x *execution) error {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.RenewEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-rctx.Done():
				return
			case <-t.C:
			}
			err := s.store.RenewLease(rctx, x.fence, s.cfg.Now(), s.cfg.LeaseTTL)
			switch {
			case errors.Is(err, filehub.ErrLeaseLost):
				x.log.ErrorContext(ctx, "cleanup: lease lost; stopping the run", "err", err)
				cancel(err)
				return
			case err != nil && rctx.Err() == nil:
				// The next renewal may succeed; meanwhile the fences hold.
				x.log.WarnContext(ctx, "cleanup: renew lease", "err", err)
			}
		}
	}()
	err := x.run(rctx)
	close(stop)
	<-done
	if cause := context.Cause(rctx); errors.Is(cause, filehub.ErrLeaseLost) && ctx.Err() == nil {
		return cause
	}
	return err
}

// finish stores r's final state.
func (s *Service) finish(ctx context.Context, r *Report) error {
	run := r.run()
	b, err := json.Marshal(r)
	if err != nil {
		return filehub.WrapError(filehub.EINTERNAL, "encode cleanup report", err)
	}
	run.Report = b
	return s.store.FinishRun(ctx, run)
}

// event reports a run event to Config.OnEvent and, unless it is a dry run,
// to the event log.
func (s *Service) event(ctx context.Context, typ string, r *Report) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(typ, r)
	}
	if r.DryRun {
		return
	}
	e := &filehub.Event{Type: typ, Time: s.cfg.Now().UTC(), Run: r.run()}
	if err := s.store.AppendEvent(ctx, e); err != nil {
		s.log.WarnContext(ctx, "cleanup: record event", "type", typ, "err", err)
		return
	}
	if s.cfg.Changed != nil {
		s.cfg.Changed()
	}
}

// Loop runs a cleanup every Interval (the stored setting, re-read each
// time), moved by up to ±Jitter at random, until ctx is done; then it
// returns nil. It is the scheduler service the server starts with its
// others. A run refused by the safety cap or blocked by another instance's
// lease is logged and retried at the next interval; Loop itself never
// fails.
func (s *Service) Loop(ctx context.Context) error {
	for {
		interval := time.Duration(s.current.Load().Interval)
		d := interval
		if j := s.cfg.Jitter; j > 0 {
			d += time.Duration(rand.Int64N(int64(2*j)+1)) - j
		}
		d = max(d, interval/2, time.Millisecond)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		rctx := filehub.WithActor(ctx, filehub.ActorSystem)
		_, err := s.Run(rctx, RunOptions{Trigger: "schedule"})
		switch {
		case err == nil, ctx.Err() != nil:
		case filehub.ErrorCode(err) == filehub.ECONFLICT:
			s.log.InfoContext(ctx, "cleanup: scheduled run did not proceed", "reason", filehub.ErrorMessage(err))
		default:
			s.log.ErrorContext(ctx, "cleanup: scheduled run failed", "err", err)
		}
	}
}

// Runs returns the reports of the last runs, newest first (last <= 0: 10).
func (s *Service) Runs(ctx context.Context, last int) ([]*Report, error) {
	runs, err := s.store.ListRuns(ctx, last)
	if err != nil {
		return nil, err
	}
	out := make([]*Report, 0, len(runs))
	for _, run := range runs {
		r, err := decodeRun(run)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// RunByID returns the report of one run, or ENOTFOUND.
func (s *Service) RunByID(ctx context.Context, id int64) (*Report, error) {
	run, err := s.store.FindRun(ctx, id)
	if err != nil {
		return nil, err
	}
	return decodeRun(run)
}

func decodeRun(run *filehub.CleanupRun) (*Report, error) {
	if run.Report == nil {
		return reportFromRun(run), nil
	}
	var r Report
	if err := json.Unmarshal(run.Report, &r); err != nil {
		return nil, filehub.WrapError(filehub.EINTERNAL, "decode cleanup report", fmt.Errorf("run %d: %w", run.ID, err))
	}
	// The stored status wins: a later run may have marked it interrupted.
	r.Status = run.Status
	return &r, nil
}

// Audit returns audit log entries matching filter, in ID order.
func (s *Service) Audit(ctx context.Context, filter filehub.AuditFilter) ([]*filehub.AuditEntry, error) {
	return s.store.ListAudit(ctx, filter)
}

// wants reports whether opts select kind k.
func (o *RunOptions) wants(k Kind) bool {
	return len(o.Only) == 0 || slices.Contains(o.Only, k)
}
