package cleanup

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/filehub/filehub"
)

// execution is the state of one run: the kinds' units, which hold their
// plans, and what several kinds share.
type execution struct {
	s    *Service
	r    *Report
	opts RunOptions
	st   Settings
	now  time.Time
	log  *slog.Logger
	// fence is the run's tenure of the lease; every destructive step
	// passes it to the store, which refuses once another run took over.
	fence filehub.Fence

	kinds   []kind
	refused bool // the safety cap tripped
	changed bool // something was written to the event log

	// Shared by several kinds, each computed once, by the first to ask.
	scan      *objectScan    // see objectScan
	records   int64          // blob records, once recordsOK
	recordsOK bool           // records is known
	prov      *providerState // see providerPlan
}

// phase is the checkpoint before each phase: the crash hook, ctx, and a
// renewal of the lease (a run that lost it stops: another may be running).
// The renewal keeps the run's tenure; it never takes the lease anew, so a
// run that stalled while another ran and released the lease stops rather
// than acting on its stale plan.
func (x *execution) phase(ctx context.Context, name string) error {
	if h := x.s.cfg.BeforePhase; h != nil {
		if err := h(name); err != nil {
			return &crashError{err}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return x.s.store.RenewLease(ctx, x.fence, x.s.cfg.Now(), x.s.cfg.LeaseTTL)
}

func (x *execution) run(ctx context.Context) error {
	defer func() {
		if x.changed && x.s.cfg.Changed != nil {
			x.s.cfg.Changed()
		}
	}()
	kinds, err := newKinds()
	if err != nil {
		return err
	}
	x.kinds = kinds
	if err := x.phase(ctx, PhasePlan); err != nil {
		return err
	}
	if err := x.plan(ctx); err != nil {
		return err
	}
	if err := x.checkCap(); err != nil {
		return err
	}
	// Every kind's phases, selected or not (an unselected kind has
	// nothing to do), so that the checkpoints are the same for every run.
	last := ""
	for _, k := range x.kinds {
		for _, ph := range k.phases() {
			if ph != last {
				if err := x.phase(ctx, ph); err != nil {
					return err
				}
				last = ph
			}
			if !x.opts.wants(k.name()) {
				continue
			}
			if err := k.apply(ctx, x, ph, x.r.Kinds[k.name()]); err != nil {
				return err
			}
		}
	}
	if h := x.s.cfg.BeforePhase; h != nil {
		if err := h(PhaseFinish); err != nil {
			return &crashError{err}
		}
	}
	return nil
}

// plan plans every selected kind and then what the report says across
// kinds (the blob total, the provider quotas). It changes nothing, so a dry
// run and a real run plan alike.
func (x *execution) plan(ctx context.Context) error {
	for _, k := range x.kinds {
		if !x.opts.wants(k.name()) {
			continue
		}
		if err := k.plan(ctx, x, x.r.kind(k.name())); err != nil {
			return err
		}
	}
	records, err := x.blobRecords(ctx)
	if err != nil {
		return err
	}
	x.r.TotalBlobs = max(x.r.TotalBlobs, records)
	if x.scan != nil {
		x.r.TotalBlobs = max(x.r.TotalBlobs, x.scan.objects)
	}
	x.planProviderQuotas(ctx)
	return nil
}

// objectScan returns the merge of the object listing with the blob
// records, running it on the first call. It is nil (and nothing is read)
// unless orphan_object or missing_object is selected.
func (x *execution) objectScan(ctx context.Context) (*objectScan, error) {
	if x.scan != nil || !x.opts.wants(KindOrphanObject) && !x.opts.wants(KindMissingObject) {
		return x.scan, nil
	}
	sc, err := x.scanObjects(ctx)
	if err != nil {
		return nil, err
	}
	x.scan = sc
	return sc, nil
}

// blobRecords returns the number of blob records. A scan counted the
// records it read; counting them again would be one more pass over the
// whole table.
func (x *execution) blobRecords(ctx context.Context) (int64, error) {
	if x.recordsOK {
		return x.records, nil
	}
	if x.scan != nil && !x.scan.unsupported {
		x.records = x.scan.records
	} else {
		n, err := x.s.store.CountBlobs(ctx)
		if err != nil {
			return 0, err
		}
		x.records = n
	}
	x.recordsOK = true
	return x.records, nil
}

// checkCap refuses the run, before anything is deleted, if it would delete
// more blobs, or more provider files, than the safety cap allows. The
// refused report lists every target the run would have deleted.
func (x *execution) checkCap() error {
	var planned, provPlanned int64
	for _, k := range x.kinds {
		switch base, n := k.deletions(); base {
		case capBlobs:
			planned += n
		case capProviderFiles:
			provPlanned += n
		}
	}
	x.r.PlannedBlobDeletions = planned
	x.r.PlannedProviderDeletions = provPlanned
	within := func(planned, total int64) bool {
		return planned <= int64(x.s.cfg.MinDeleteAllowance) || float64(planned) <= x.st.MaxDeleteFraction*float64(total)
	}
	blobsOK, provOK := within(planned, x.r.TotalBlobs), within(provPlanned, x.r.TotalProviderFiles)
	if x.opts.Force || blobsOK && provOK {
		return nil
	}
	x.refused = true
	refuse := func(base capBase) {
		for _, k := range x.kinds {
			if b, n := k.deletions(); b == base && n > 0 {
				k.refuse(x.r.kind(k.name()))
			}
		}
	}
	if !provOK {
		refuse(capProviderFiles)
		if blobsOK {
			return filehub.Errorf(filehub.ECONFLICT,
				"cleanup would delete %d of %d provider files, more than the safety cap of %g%%; nothing was deleted; run again with force to proceed",
				provPlanned, x.r.TotalProviderFiles, x.st.MaxDeleteFraction*100)
		}
	}
	refuse(capBlobs)
	return filehub.Errorf(filehub.ECONFLICT,
		"cleanup would delete %d of %d blobs, more than the safety cap of %g%%; nothing was deleted; run again with force to proceed",
		planned, x.r.TotalBlobs, x.st.MaxDeleteFraction*100)
}

// wouldDelete is the target of a run refused by the safety cap.
func wouldDelete(t Target) Target {
	t.Action, t.Reason = ActionWouldDelete, "refused by the safety cap"
	return t
}

// audit returns an audit entry of this run.
func (x *execution) audit(action, reason string) filehub.AuditEntry {
	return filehub.AuditEntry{Time: x.s.cfg.Now(), Actor: x.r.Actor, Action: action, Reason: reason, RunID: x.r.RunID}
}

// skip records a planned action not taken: in the report and, for a real
// run, in the audit log.
func (x *execution) skip(ctx context.Context, kr *KindReport, t Target, kind, target, reason string) {
	t.Action, t.Reason = ActionSkipped, reason
	kr.Skipped++
	kr.Targets = append(kr.Targets, t)
	a := x.audit(filehub.AuditSkipped, reason)
	a.TargetKind, a.Target, a.Bytes = kind, target, t.Bytes
	if err := x.s.store.AppendAudit(ctx, a); err != nil {
		x.log.WarnContext(ctx, "cleanup: audit skipped action", "target", target, "err", err)
	}
}

// fail records a failed action; the run goes on with the next item unless
// ctx is done or the store is unavailable, which fail returns.
func (x *execution) fail(ctx context.Context, kr *KindReport, t Target, kind, target string, err error) error {
	if ctx.Err() != nil || filehub.ErrorCode(err) == filehub.EUNAVAILABLE || errors.Is(err, filehub.ErrLeaseLost) {
		return err
	}
	x.r.Errors++
	x.log.ErrorContext(ctx, "cleanup: action failed", "target_kind", kind, "target", target, "err", err)
	t.Action, t.Reason = ActionFailed, filehub.ErrorMessage(err)
	kr.Targets = append(kr.Targets, t)
	a := x.audit(filehub.AuditSkipped, "failed: "+filehub.ErrorMessage(err))
	a.TargetKind, a.Target, a.Bytes = kind, target, t.Bytes
	if aerr := x.s.store.AppendAudit(ctx, a); aerr != nil {
		x.log.WarnContext(ctx, "cleanup: audit failed action", "target", target, "err", aerr)
	}
	return nil
}

func (x *execution) done(kr *KindReport, t Target, freed bool) {
	if x.r.DryRun {
		t.Action = ActionWouldDelete
	} else {
		t.Action = ActionDeleted
	}
	kr.Deleted++
	kr.BytesFreed += t.Bytes
	if freed {
		x.r.BytesFreed += t.Bytes
	}
	kr.Targets = append(kr.Targets, t)
}
