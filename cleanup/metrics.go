package cleanup

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	runs         *prometheus.CounterVec
	deleted      *prometheus.CounterVec
	deletedBytes *prometheus.CounterVec
	found        *prometheus.CounterVec
	duration     prometheus.Histogram
	lastSuccess  prometheus.Gauge
	missing      prometheus.Gauge
}

// Run results, the values of the "result" label of filehub_cleanup_runs_total.
const (
	resultOK       = "ok"
	resultDryRun   = "dry_run"
	resultRefused  = "refused"  // the safety cap
	resultFailed   = "failed"   // an error stopped the run
	resultConflict = "conflict" // another run held the lease
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "filehub", Subsystem: "cleanup", Name: "runs_total",
			Help: "Cleanup runs by result (ok, dry_run, refused, failed, conflict).",
		}, []string{"result"}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "filehub", Subsystem: "cleanup", Name: "deleted_total",
			Help: "Items deleted by cleanup runs, per kind (trash, orphan_object, unreferenced_blob, stale_temp).",
		}, []string{"kind"}),
		deletedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "filehub", Subsystem: "cleanup", Name: "deleted_bytes_total",
			Help: "Bytes deleted by cleanup runs, per kind (for trash: the purged files' sizes).",
		}, []string{"kind"}),
		found: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "filehub", Subsystem: "cleanup", Name: "found_total",
			Help: "Items found by cleanup runs (dry runs included), per kind.",
		}, []string{"kind"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "filehub", Subsystem: "cleanup", Name: "run_duration_seconds",
			Help:    "Duration of cleanup runs.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10), // 10ms … ~44 min
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "filehub", Subsystem: "cleanup", Name: "last_success_timestamp_seconds",
			Help: "Unix time of the start of the last cleanup run that finished without error (dry runs excluded).",
		}),
		missing: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "filehub", Subsystem: "cleanup", Name: "missing_objects",
			Help: "Blob records whose object was missing from the blob store at the last run. Anything above 0 needs an operator.",
		}),
	}
	for _, r := range []string{resultOK, resultDryRun, resultRefused, resultFailed, resultConflict} {
		m.runs.WithLabelValues(r)
	}
	for _, k := range Kinds {
		m.found.WithLabelValues(string(k))
		if k != KindMissingObject {
			m.deleted.WithLabelValues(string(k))
			m.deletedBytes.WithLabelValues(string(k))
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.runs, m.deleted, m.deletedBytes, m.found, m.duration, m.lastSuccess, m.missing} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
