package cleanup

import (
	"context"
	"time"

	"github.com/filehub/filehub"
)

func init() { registerKind(KindStaleTemp, func() kind { return &staleTempKind{} }) }

// staleTempKind removes staged uploads inactive (by modification time) for
// longer than the upload expiry, if the blob store stages them in temp
// files it can list (filehub.TempCleaner).
type staleTempKind struct {
	tc    filehub.TempCleaner // nil if the blob store is none
	temps []tempFile
}

type tempFile struct {
	name string
	size int64
}

func (*staleTempKind) name() Kind         { return KindStaleTemp }
func (*staleTempKind) phases() []string   { return []string{PhaseTemp} }
func (*staleTempKind) refuse(*KindReport) {}

// deletions: a temp file is no blob; the cap does not count it.
func (*staleTempKind) deletions() (capBase, int64) { return capNone, 0 }

func (k *staleTempKind) plan(ctx context.Context, x *execution, kr *KindReport) error {
	tc, ok := x.s.blobs.(filehub.TempCleaner)
	if !ok {
		kr.Unsupported = true
		return nil
	}
	k.tc = tc
	cutoff := x.now.Add(-time.Duration(x.st.UploadExpiry))
	err := tc.WalkTemp(ctx, func(name string, mod time.Time, size int64) error {
		kr.Scanned++
		if !mod.After(cutoff) {
			k.temps = append(k.temps, tempFile{name, size})
		}
		return nil
	})
	if err != nil {
		return err
	}
	kr.Found = int64(len(k.temps))
	return nil
}

func (k *staleTempKind) apply(ctx context.Context, x *execution, _ string, kr *KindReport) error {
	if len(k.temps) == 0 {
		return nil
	}
	var audits []filehub.AuditEntry
	for _, f := range k.temps {
		t := Target{Name: f.name, Bytes: f.size}
		if x.r.DryRun {
			x.done(kr, t, true)
			continue
		}
		err := x.s.store.Fenced(ctx, x.fence, func(ctx context.Context) error { return k.tc.RemoveTemp(ctx, f.name) })
		if err != nil {
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
		return filehub.WrapError(filehub.EUNAVAILABLE, "audit removed temp files", err)
	}
	return nil
}
