package cleanup

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/filehub/filehub"
)

// scanPage is how many blob records a scan reads per query: large enough
// that query overhead vanishes, small enough to keep memory bounded (a few
// MB) whatever the number of blobs.
const scanPage = 10_000

// execution is the state of one run.
type execution struct {
	s    *Service
	r    *Report
	opts RunOptions
	st   Settings
	now  time.Time
	log  *slog.Logger

	refused bool // the safety cap tripped

	// The plan.
	trash       []*filehub.File
	orphans     []filehub.BlobInfo
	unref       []*filehub.Blob
	missing     []*filehub.Blob // records whose object is gone
	returned    []*filehub.Blob // records flagged missing whose object is back
	temps       []tempFile
	provCopies  []providerCopy
	provOrphans []providerOrphan
	changed     bool // something was written to the event log

	unrefMerged bool // scanObjects planned x.unref from the records it read

	// scanned is set when scanObjects read every record and object;
	// scannedRecords is how many records it read.
	scanned        bool
	scannedRecords int64
}

type tempFile struct {
	name string
	size int64
}

// phase is the checkpoint before each phase: the crash hook, ctx, and a
// renewal of the lease (a run that lost it stops: another may be running).
func (x *execution) phase(ctx context.Context, name string) error {
	if h := x.s.cfg.BeforePhase; h != nil {
		if err := h(name); err != nil {
			return &crashError{err}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ok, holder, err := x.s.store.AcquireLease(ctx, leaseName, x.s.id, x.s.cfg.Now(), x.s.cfg.LeaseTTL)
	if err != nil {
		return err
	}
	if !ok {
		return filehub.Errorf(filehub.ECONFLICT, "the cleanup lease was lost to %s", holder)
	}
	return nil
}

func (x *execution) run(ctx context.Context) error {
	defer func() {
		if x.changed && x.s.cfg.Changed != nil {
			x.s.cfg.Changed()
		}
	}()
	if err := x.phase(ctx, PhasePlan); err != nil {
		return err
	}
	if err := x.plan(ctx); err != nil {
		return err
	}
	if err := x.checkCap(); err != nil {
		return err
	}
	steps := []struct {
		phase string
		fn    func(context.Context) error
	}{
		{PhaseTrash, x.purgeTrash},
		{PhaseOrphans, x.deleteOrphans},
		{PhaseMark, x.mark},
		{PhaseSweep, x.sweep},
		{PhaseMissing, x.flagMissing},
		{PhaseTemp, x.removeTemp},
		{PhaseProviders, x.deleteProviderFiles},
	}
	for _, step := range steps {
		if err := x.phase(ctx, step.phase); err != nil {
			return err
		}
		if err := step.fn(ctx); err != nil {
			return err
		}
	}
	if h := x.s.cfg.BeforePhase; h != nil {
		if err := h(PhaseFinish); err != nil {
			return &crashError{err}
		}
	}
	return nil
}

// plan scans and computes every selected kind's candidates. It changes
// nothing, so a dry run and a real run plan alike.
func (x *execution) plan(ctx context.Context) error {
	s, o := x.s, &x.opts
	if o.wants(KindTrash) {
		files, err := s.store.ListExpiredTrash(ctx, x.now, 0)
		if err != nil {
			return err
		}
		x.trash = files
		kr := x.r.kind(KindTrash)
		kr.Scanned, kr.Found = int64(len(files)), int64(len(files))
	}

	if o.wants(KindOrphanObject) || o.wants(KindMissingObject) {
		if err := x.scanObjects(ctx); err != nil {
			return err
		}
	}
	// The scan counted the records it read; counting them again would be
	// one more pass over the whole table.
	records := x.scannedRecords
	if !x.scanned {
		var err error
		if records, err = s.store.CountBlobs(ctx); err != nil {
			return err
		}
	}
	x.r.TotalBlobs = max(records, x.r.TotalBlobs)

	if o.wants(KindUnreferencedBlob) {
		kr := x.r.kind(KindUnreferencedBlob)
		kr.Scanned = records
		cutoff := x.now.Add(-time.Duration(x.st.BlobGrace))
		after := ""
		for !x.unrefMerged {
			page, err := s.store.ListUnreferencedBlobs(ctx, cutoff, after, scanPage)
			if err != nil {
				return err
			}
			x.unref = append(x.unref, page...)
			if len(page) < scanPage {
				break
			}
			after = page[len(page)-1].SHA256
		}
		kr.Found = int64(len(x.unref))
	}

	if o.wants(KindStaleTemp) {
		kr := x.r.kind(KindStaleTemp)
		tc, ok := s.blobs.(filehub.TempCleaner)
		if !ok {
			kr.Unsupported = true
		} else {
			cutoff := x.now.Add(-time.Duration(x.st.UploadExpiry))
			err := tc.WalkTemp(ctx, func(name string, mod time.Time, size int64) error {
				kr.Scanned++
				if !mod.After(cutoff) {
					x.temps = append(x.temps, tempFile{name, size})
				}
				return nil
			})
			if err != nil {
				return err
			}
			kr.Found = int64(len(x.temps))
		}
	}
	return x.planProviders(ctx)
}

// scanObjects merges the object listing (in sum order) with the blob records
// (in sum order, a page at a time), so that memory stays bounded whatever
// the number of blobs: an object without a record is an orphan candidate, a
// record without an object a missing one. It also plans the unreferenced
// blobs from the records it reads, which spares plan a second pass over
// them.
func (x *execution) scanObjects(ctx context.Context) error {
	s := x.s
	wantOrphans, wantMissing := x.opts.wants(KindOrphanObject), x.opts.wants(KindMissingObject)
	wantUnref := x.opts.wants(KindUnreferencedBlob)
	cutoff := x.now.Add(-time.Duration(x.st.BlobGrace))
	var orphanKR, missingKR *KindReport
	if wantOrphans {
		orphanKR = x.r.kind(KindOrphanObject)
	}
	if wantMissing {
		missingKR = x.r.kind(KindMissingObject)
	}
	sumWalker, _ := s.blobs.(filehub.SumWalker)
	walker, _ := s.blobs.(filehub.BlobWalker)
	if sumWalker == nil && walker == nil {
		for _, kr := range []*KindReport{orphanKR, missingKR} {
			if kr != nil {
				kr.Unsupported = true
			}
		}
		return nil
	}

	// The records are read a page ahead, in a goroutine of their own, so
	// that reading them overlaps with the walk instead of adding to it
	// (each is about half of a scan's time). Memory stays bounded: at most
	// the page being merged, one waiting and one being read.
	pages := make(chan []*filehub.Blob, 1)
	var listErr error // set before pages is closed
	lctx, stopList := context.WithCancel(ctx)
	var lister sync.WaitGroup
	lister.Go(func() {
		defer close(pages)
		after := ""
		for {
			page, err := s.store.ListBlobs(lctx, after, scanPage)
			if err != nil {
				listErr = err
				return
			}
			if len(page) > 0 {
				select {
				case pages <- page:
				case <-lctx.Done():
					listErr = lctx.Err()
					return
				}
			}
			if len(page) < scanPage {
				return
			}
			after = page[len(page)-1].SHA256
		}
	})
	defer func() {
		stopList()
		lister.Wait()
	}()

	var (
		page    []*filehub.Blob
		idx     int
		records int64
		objects int64
	)
	next := func() (*filehub.Blob, error) {
		if idx == len(page) {
			var ok bool
			if page, ok = <-pages; !ok {
				page = nil
				return nil, listErr
			}
			idx = 0
		}
		b := page[idx]
		page[idx] = nil // let planned-over records be collected
		idx++
		records++
		// As ListUnreferencedBlobs selects them.
		if wantUnref && b.RefCount == 0 && b.UnreferencedSince != nil && !b.UnreferencedSince.After(cutoff) {
			x.unref = append(x.unref, b)
		}
		return b, nil
	}
	noObject := func(b *filehub.Blob) error {
		if !wantMissing {
			return nil
		}
		// The listing may have passed the sum before the object was
		// written (a record committed during the scan): look again.
		_, err := s.blobs.Stat(ctx, b.SHA256)
		switch filehub.ErrorCode(err) {
		case "":
			if b.MissingSince != nil {
				x.returned = append(x.returned, b)
			}
			return nil
		case filehub.ENOTFOUND:
			x.missing = append(x.missing, b)
			return nil
		}
		return err
	}

	cur, err := next()
	if err != nil {
		return err
	}
	// visit merges the object sum into the records. info is the object's
	// size and time if the listing has them, nil if not: then only an
	// orphan candidate is stat'ed, which spares a stat of every object
	// with a record (nearly all of them).
	visit := func(sum string, info *filehub.BlobInfo) error {
		objects++
		for cur != nil && cur.SHA256 < sum {
			if err := noObject(cur); err != nil {
				return err
			}
			var err error
			if cur, err = next(); err != nil {
				return err
			}
		}
		if cur != nil && cur.SHA256 == sum {
			if wantMissing && cur.MissingSince != nil {
				x.returned = append(x.returned, cur)
			}
			var err error
			cur, err = next()
			return err
		}
		if !wantOrphans {
			return nil
		}
		if info == nil {
			obj, err := s.blobs.Stat(ctx, sum)
			if filehub.ErrorCode(err) == filehub.ENOTFOUND {
				return nil // deleted since it was listed
			}
			if err != nil {
				return err
			}
			info = &obj
		}
		if !info.ModTime.After(cutoff) {
			x.orphans = append(x.orphans, *info)
		}
		return nil
	}
	if sumWalker != nil {
		err = sumWalker.WalkSums(ctx, func(sum string) error { return visit(sum, nil) })
	} else {
		err = walker.Walk(ctx, func(obj filehub.BlobInfo) error { return visit(obj.SHA256, &obj) })
	}
	if err != nil {
		return err
	}
	for cur != nil {
		if err := noObject(cur); err != nil {
			return err
		}
		if cur, err = next(); err != nil {
			return err
		}
	}
	x.unrefMerged = wantUnref
	x.scanned, x.scannedRecords = true, records
	x.r.TotalBlobs = max(x.r.TotalBlobs, objects)
	if orphanKR != nil {
		orphanKR.Scanned, orphanKR.Found = objects, int64(len(x.orphans))
	}
	if missingKR != nil {
		missingKR.Scanned, missingKR.Found = records, int64(len(x.missing))
	}
	return nil
}

// checkCap refuses the run, before anything is deleted, if it would delete
// more blobs than the safety cap allows. The refused report lists every
// target the run would have deleted.
func (x *execution) checkCap() error {
	planned := int64(len(x.orphans) + len(x.unref))
	x.r.PlannedBlobDeletions = planned
	provPlanned := x.plannedProviderDeletions()
	x.r.PlannedProviderDeletions = provPlanned
	within := func(planned, total int64) bool {
		return planned <= int64(x.s.cfg.MinDeleteAllowance) || float64(planned) <= x.st.MaxDeleteFraction*float64(total)
	}
	if x.opts.Force || within(planned, x.r.TotalBlobs) && within(provPlanned, x.r.TotalProviderFiles) {
		return nil
	}
	x.refused = true
	if !within(provPlanned, x.r.TotalProviderFiles) {
		for _, c := range x.provCopies {
			kr := x.r.kind(KindProviderCopy)
			kr.Targets = append(kr.Targets, Target{SHA256: c.m.SHA256, Provider: c.p.Name(), ProviderFileID: c.m.ProviderFileID, Bytes: c.m.Size, Action: ActionWouldDelete, Reason: "refused by the safety cap"})
		}
		for _, o := range x.provOrphans {
			if o.delete {
				kr := x.r.kind(KindProviderOrphan)
				kr.Targets = append(kr.Targets, Target{Provider: o.p.Name(), ProviderFileID: o.f.ID, Name: o.f.Filename, Bytes: o.f.Bytes, Action: ActionWouldDelete, Reason: "refused by the safety cap"})
			}
		}
		if within(planned, x.r.TotalBlobs) {
			return filehub.Errorf(filehub.ECONFLICT,
				"cleanup would delete %d of %d provider files, more than the safety cap of %g%%; nothing was deleted; run again with force to proceed",
				provPlanned, x.r.TotalProviderFiles, x.st.MaxDeleteFraction*100)
		}
	}
	for _, o := range x.orphans {
		kr := x.r.kind(KindOrphanObject)
		kr.Targets = append(kr.Targets, Target{SHA256: o.SHA256, Bytes: o.Size, Action: ActionWouldDelete, Reason: "refused by the safety cap"})
	}
	for _, b := range x.unref {
		kr := x.r.kind(KindUnreferencedBlob)
		kr.Targets = append(kr.Targets, Target{SHA256: b.SHA256, Bytes: b.Size, Action: ActionWouldDelete, Reason: "refused by the safety cap"})
	}
	return filehub.Errorf(filehub.ECONFLICT,
		"cleanup would delete %d of %d blobs, more than the safety cap of %g%%; nothing was deleted; run again with force to proceed",
		planned, x.r.TotalBlobs, x.st.MaxDeleteFraction*100)
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
	if ctx.Err() != nil || filehub.ErrorCode(err) == filehub.EUNAVAILABLE {
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

func (x *execution) purgeTrash(ctx context.Context) error {
	if len(x.trash) == 0 {
		return nil
	}
	kr := x.r.kind(KindTrash)
	for _, f := range x.trash {
		t := Target{FileID: f.ID, SHA256: f.SHA256, Bytes: f.Size}
		if x.r.DryRun {
			x.done(kr, t, false)
			continue
		}
		_, err := x.s.store.PurgeExpiredFile(ctx, f.ID, x.now,
			x.audit(filehub.AuditFilePurged, "trash grace expired"))
		switch filehub.ErrorCode(err) {
		case "":
			x.changed = true
			x.done(kr, t, false)
		case filehub.ECONFLICT:
			x.skip(ctx, kr, t, filehub.TargetFile, f.ID, "restored (or its purge time moved) since the scan")
		case filehub.ENOTFOUND:
			x.skip(ctx, kr, t, filehub.TargetFile, f.ID, "already purged")
		default:
			if err := x.fail(ctx, kr, t, filehub.TargetFile, f.ID, err); err != nil {
				return err
			}
		}
	}
	return nil
}

func (x *execution) deleteOrphans(ctx context.Context) error {
	if len(x.orphans) == 0 {
		return nil
	}
	kr := x.r.kind(KindOrphanObject)
	for _, o := range x.orphans {
		t := Target{SHA256: o.SHA256, Bytes: o.Size}
		if x.r.DryRun {
			x.done(kr, t, true)
			continue
		}
		a := x.audit(filehub.AuditObjectDeleted, "object without a blob record, older than the blob grace")
		a.Bytes = o.Size
		deleted, err := x.s.store.DeleteOrphanObject(ctx, o.SHA256, func(ctx context.Context) error {
			return x.s.blobs.Delete(ctx, o.SHA256)
		}, a)
		switch {
		case err != nil:
			if err := x.fail(ctx, kr, t, filehub.TargetBlob, o.SHA256, err); err != nil {
				return err
			}
		case deleted:
			x.done(kr, t, true)
		default:
			x.skip(ctx, kr, t, filehub.TargetBlob, o.SHA256, "a blob record appeared since the scan (an upload of the same content)")
		}
	}
	return nil
}

func (x *execution) mark(ctx context.Context) error {
	if len(x.unref) == 0 || x.r.DryRun {
		return nil
	}
	sums := make([]string, 0, min(len(x.unref), 1000))
	for i, b := range x.unref {
		sums = append(sums, b.SHA256)
		if len(sums) == cap(sums) || i == len(x.unref)-1 {
			if _, err := x.s.store.MarkBlobs(ctx, sums, x.s.cfg.Now()); err != nil {
				return err
			}
			sums = sums[:0]
		}
	}
	return nil
}

func (x *execution) sweep(ctx context.Context) error {
	if len(x.unref) == 0 {
		return nil
	}
	kr := x.r.kind(KindUnreferencedBlob)
	cutoff := x.now.Add(-time.Duration(x.st.BlobGrace))
	for _, b := range x.unref {
		t := Target{SHA256: b.SHA256, Bytes: b.Size}
		if x.r.DryRun {
			x.done(kr, t, true)
			continue
		}
		swept, err := x.s.store.SweepBlob(ctx, b.SHA256, cutoff, func(ctx context.Context) error {
			return x.s.blobs.Delete(ctx, b.SHA256)
		}, x.audit(filehub.AuditBlobSwept, "unreferenced for longer than the blob grace"))
		switch {
		case err != nil:
			if err := x.fail(ctx, kr, t, filehub.TargetBlob, b.SHA256, err); err != nil {
				return err
			}
		case swept:
			x.done(kr, t, true)
		default:
			x.skip(ctx, kr, t, filehub.TargetBlob, b.SHA256, "referenced again since it was marked (revived by an upload)")
		}
	}
	return nil
}

func (x *execution) flagMissing(ctx context.Context) error {
	kr := x.r.Kinds[KindMissingObject]
	if kr == nil {
		return nil
	}
	for _, b := range x.missing {
		t := Target{SHA256: b.SHA256, Bytes: b.Size, Action: ActionFlagged,
			Reason: "the blob record exists but its object is missing; restore it from a backup"}
		if x.r.DryRun {
			t.Action = ActionWouldFlag
			kr.Targets = append(kr.Targets, t)
			continue
		}
		x.log.ErrorContext(ctx, "cleanup: object missing for blob record", "sha256", b.SHA256, "ref_count", b.RefCount)
		_, err := x.s.store.SetBlobMissing(ctx, b.SHA256, x.now, x.audit(filehub.AuditObjectMissing, t.Reason))
		if err != nil && filehub.ErrorCode(err) != filehub.ENOTFOUND {
			if err := x.fail(ctx, kr, t, filehub.TargetBlob, b.SHA256, err); err != nil {
				return err
			}
			continue
		}
		kr.Targets = append(kr.Targets, t)
	}
	for _, b := range x.returned {
		t := Target{SHA256: b.SHA256, Bytes: b.Size, Action: ActionUnflagged, Reason: "the object is back"}
		if x.r.DryRun {
			continue
		}
		_, err := x.s.store.SetBlobMissing(ctx, b.SHA256, time.Time{}, x.audit(filehub.AuditObjectFound, t.Reason))
		if err != nil && filehub.ErrorCode(err) != filehub.ENOTFOUND {
			if err := x.fail(ctx, kr, t, filehub.TargetBlob, b.SHA256, err); err != nil {
				return err
			}
			continue
		}
		kr.Targets = append(kr.Targets, t)
	}
	return nil
}

func (x *execution) removeTemp(ctx context.Context) error {
	if len(x.temps) == 0 {
		return nil
	}
	kr := x.r.kind(KindStaleTemp)
	tc := x.s.blobs.(filehub.TempCleaner) // planned only if implemented
	var audits []filehub.AuditEntry
	for _, f := range x.temps {
		t := Target{Name: f.name, Bytes: f.size}
		if x.r.DryRun {
			x.done(kr, t, true)
			continue
		}
		if err := tc.RemoveTemp(ctx, f.name); err != nil {
			if err := x.fail(ctx, kr, t, filehub.TargetTemp, f.name, err); err != nil {
				return err
			}
			continue
		}
		x.done(kr, t, true)
		a := x.audit(filehub.AuditTempRemoved, "staged upload inactive for longer than the upload expiry")
		a.TargetKind, a.Target, a.Bytes = filehub.TargetTemp, f.name, f.size
		audits = append(audits, a)
	}
	// The files are gone whether or not this succeeds; a failure to audit
	// them is an error of the run.
	if err := x.s.store.AppendAudit(ctx, audits...); err != nil {
		return errors.Join(filehub.WrapError(filehub.EUNAVAILABLE, "audit removed temp files", err))
	}
	return nil
}
