package cleanup

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config's zero values.
const (
	DefaultTrashGrace         = 7 * 24 * time.Hour
	DefaultBlobGrace          = 24 * time.Hour
	DefaultUploadExpiry       = 24 * time.Hour
	DefaultWSSessionTTL       = 2 * time.Minute
	DefaultMaxDeleteFraction  = 0.10
	DefaultMinDeleteAllowance = 10
	DefaultInterval           = time.Hour
	DefaultLeaseTTL           = 10 * time.Minute
)

// Config configures a Service. The zero value is ready to use. Durations and
// the cap are only defaults: settings stored with UpdateSettings override
// them without a restart.
type Config struct {
	// TrashGrace is how long a soft-deleted file stays restorable. The
	// cleanup purges files past their purge_after time; this setting is
	// what the file service should use for new deletions (see
	// Service.TrashGrace). Default 7 days.
	TrashGrace time.Duration
	// BlobGrace is how long an unreferenced blob, or an object without a
	// record (by modification time), is kept before it is deleted.
	// Default 24h.
	BlobGrace time.Duration
	// UploadExpiry is how long a staged upload may be inactive (by
	// modification time) before its temp file is removed. Default 24h.
	UploadExpiry time.Duration
	// WSSessionTTL is how long a durable WebSocket session may stay
	// detached before the ws_session kind removes it; the daemon passes
	// its --ws-session-ttl, the TTL it promises clients. Default 2m,
	// wsserver's default.
	WSSessionTTL time.Duration
	// MaxDeleteFraction is the safety cap: a run that would delete more
	// than this fraction of all blobs (records or objects, whichever are
	// more) stops before deleting anything unless RunOptions.Force is set.
	// Default 0.10; values above 1 disable the cap.
	MaxDeleteFraction float64
	// MinDeleteAllowance is how many blob deletions a run may always make
	// whatever the fraction, so that a small store can be cleaned without
	// Force. Default 10; negative means 0.
	MinDeleteAllowance int
	// Interval is the time between scheduled runs (Loop). Default 1h.
	Interval time.Duration
	// Jitter is the most a scheduled run is moved earlier or later at
	// random, so that several instances do not all wake at once. Default
	// Interval/10; negative means none.
	Jitter time.Duration
	// LeaseTTL is how long the cleanup lease is held without renewal; a
	// run renews it in the background (RenewEvery) and at every phase. A
	// process that dies holding it blocks other runs for at most this
	// long. Default 10 minutes.
	LeaseTTL time.Duration
	// RenewEvery is how often a run renews its lease while it lasts.
	// Default LeaseTTL/3, so that two renewals can fail before it expires.
	RenewEvery time.Duration
	// InstanceID names this process as the lease holder. Default: random.
	InstanceID string

	// Now is the clock for grace periods, leases and run times. Default
	// time.Now.
	Now func() time.Time
	// Logger receives the service's logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the cleanup metrics. Default: not registered.
	Registerer prometheus.Registerer

	// Providers, if set, returns the model providers whose accounts runs
	// keep clean (kinds provider_copy and provider_orphan); it is called
	// once per run. Default: none, and those kinds find nothing.
	Providers func() []Provider
	// ProviderFiles, if set, is told how many files each provider account
	// held when a run listed it (kind provider_orphan), so that the number
	// can be exported next to the account's quota. It must not block.
	ProviderFiles func(provider string, files int64)

	// OnEvent, if set, is called with filehub.EventCleanupStarted and
	// EventCleanupFinished and the run's report (also for dry runs, which
	// do not write to the event log). It must not block.
	OnEvent func(event string, r *Report)
	// Changed, if set, is called after a run wrote to the event log, so the
	// WebSocket hub can read the new events at once. It must not block.
	Changed func()

	// BeforePhase is a test hook called before each phase of a run (see
	// the Phase constants). If it returns an error the run stops at once,
	// as if the process had died there: the run stays "running" in the
	// store and the lease is not released.
	BeforePhase func(phase string) error
}

// Phases of a run, in order, as passed to Config.BeforePhase.
const (
	PhasePlan      = "plan"      // scan and compute every kind's candidates
	PhaseTrash     = "trash"     // purge expired trash
	PhaseOrphans   = "orphans"   // delete objects without records
	PhaseMark      = "mark"      // mark unreferenced blobs
	PhaseSweep     = "sweep"     // delete marked blobs still unreferenced
	PhaseMissing   = "missing"   // flag records whose object is missing
	PhaseTemp      = "temp"      // remove stale temp files
	PhaseSessions  = "sessions"  // remove expired WebSocket sessions
	PhaseProviders = "providers" // delete provider copies and orphans
	PhaseFinish    = "finish"    // record the run's result
)

func (c *Config) setDefaults() {
	if c.TrashGrace <= 0 {
		c.TrashGrace = DefaultTrashGrace
	}
	if c.BlobGrace <= 0 {
		c.BlobGrace = DefaultBlobGrace
	}
	if c.UploadExpiry <= 0 {
		c.UploadExpiry = DefaultUploadExpiry
	}
	if c.WSSessionTTL <= 0 {
		c.WSSessionTTL = DefaultWSSessionTTL
	}
	if c.MaxDeleteFraction <= 0 {
		c.MaxDeleteFraction = DefaultMaxDeleteFraction
	}
	switch {
	case c.MinDeleteAllowance == 0:
		c.MinDeleteAllowance = DefaultMinDeleteAllowance
	case c.MinDeleteAllowance < 0:
		c.MinDeleteAllowance = 0
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	switch {
	case c.Jitter == 0:
		c.Jitter = c.Interval / 10
	case c.Jitter < 0:
		c.Jitter = 0
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.RenewEvery <= 0 {
		c.RenewEvery = c.LeaseTTL / 3
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
