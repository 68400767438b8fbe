package cleanup

import (
	"context"
	"fmt"

	"github.com/filehub/filehub"
)

// kind is one cleanup kind as a unit: what a run looks for, how it deletes
// (or flags) what it found, and how that is reported. Each kind lives in a
// file of its own (kind_*.go) and registers itself with registerKind; a
// run builds a fresh unit per kind (a unit holds one run's plan).
//
// A run plans every selected kind in filehub.CleanupKinds order, checks
// the safety cap over all of their planned deletions, then goes through
// every kind's phases in that order. docs/cleanup.md ("Adding a cleanup
// kind") says how to add one.
type kind interface {
	// name is the kind's name, one of filehub.CleanupKinds.
	name() Kind

	// phases are the phases (Phase constants) apply runs in, in order.
	// The run calls Config.BeforePhase and renews the lease before each
	// phase, once if consecutive kinds share it.
	phases() []string

	// plan finds the kind's candidates and reports them in kr (Scanned,
	// Found, Unsupported). It changes nothing, so that a dry run plans
	// exactly as a real run.
	plan(ctx context.Context, x *execution, kr *KindReport) error

	// deletions returns which safety cap the plan's deletions count
	// against and how many it plans (0 for a kind that deletes nothing
	// the cap guards).
	deletions() (capBase, int64)

	// refuse lists, in kr, every target the plan would delete, for the
	// report of a run refused by the safety cap.
	refuse(kr *KindReport)

	// apply carries out the plan's part of phase (one of phases()),
	// reporting each target in kr (see execution.done, skip and fail),
	// or only reports it in a dry run. It returns an error only when the
	// run must stop.
	apply(ctx context.Context, x *execution, phase string, kr *KindReport) error
}

// capBase is what a safety cap counts: blobs (records or objects) or files
// at the providers. The two are capped apart.
type capBase int

const (
	capNone capBase = iota
	capBlobs
	capProviderFiles
)

// kindUnits holds each kind's constructor, by name; see registerKind.
var kindUnits = make(map[Kind]func() kind)

// registerKind makes the kind built by newKind part of every run. It is
// called from the init function of the kind's file; a kind must be listed
// in filehub.CleanupKinds, which gives the run order.
func registerKind(name Kind, newKind func() kind) {
	if _, dup := kindUnits[name]; dup {
		panic(fmt.Sprintf("cleanup: kind %s registered twice", name))
	}
	kindUnits[name] = newKind
}

// newKinds returns a fresh unit of every kind, in run order. A listed kind
// without a unit is a bug (TestEveryKindHasAUnit); it fails the run rather
// than the process.
func newKinds() ([]kind, error) {
	kinds := make([]kind, 0, len(Kinds))
	for _, k := range Kinds {
		newKind := kindUnits[k]
		if newKind == nil {
			return nil, filehub.Errorf(filehub.EINTERNAL, "cleanup kind %s has no implementation", k)
		}
		kinds = append(kinds, newKind())
	}
	return kinds, nil
}
