package files

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
)

// Upload results, the values of the "result" label of filehub_uploads_total.
const (
	resultStored       = "stored"
	resultDeduplicated = "deduplicated"
	resultTooLarge     = "too_large"
	resultUnsupported  = "unsupported_type"
	resultStorageFull  = "storage_full"
	resultAborted      = "aborted" // the client went away or stalled
	resultUnavailable  = "unavailable"
	resultError        = "error"
)

type metrics struct {
	uploads       *prometheus.CounterVec
	bytesReceived prometheus.Counter
	duration      prometheus.Histogram
	inFlight      prometheus.Gauge
	dedupHits     prometheus.Counter
	dedupSaved    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "filehub", Name: "uploads_total",
			Help: "Uploads by result (stored, deduplicated, too_large, unsupported_type, storage_full, aborted, unavailable, error).",
		}, []string{"result"}),
		bytesReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "filehub", Name: "upload_bytes_received_total",
			Help: "Bytes of upload bodies read, whatever the upload's result.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "filehub", Name: "upload_duration_seconds",
			Help:    "Time from the first body byte to the committed record, for every upload.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1ms … ~4.4 min
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "filehub", Name: "uploads_in_flight",
			Help: "Uploads being received right now.",
		}),
		dedupHits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "filehub", Name: "dedup_hits_total",
			Help: "Uploads whose content was already stored.",
		}),
		dedupSaved: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "filehub", Name: "dedup_bytes_saved_total",
			Help: "Bytes not stored again thanks to deduplication.",
		}),
	}
	// Pre-create every result so dashboards see zeros rather than gaps.
	for _, r := range []string{resultStored, resultDeduplicated, resultTooLarge, resultUnsupported,
		resultStorageFull, resultAborted, resultUnavailable, resultError} {
		m.uploads.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.uploads, m.bytesReceived, m.duration, m.inFlight, m.dedupHits, m.dedupSaved)
	}
	return m
}

// healthProbeTimeout bounds the store checks a scrape triggers.
const healthProbeTimeout = 5 * time.Second

// registerHealth adds gauges evaluated at scrape time, for alerting
// (deploy/prometheus/alerts.yml): readiness, the same check as GET /readyz,
// and, when the blob store can tell, its free space and the floor below
// which uploads are refused. A scrape costs a ping of each store and a
// statfs; Prometheus scrapes every few seconds at most.
func (s *Service) registerHealth(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "filehub", Name: "ready",
		Help: "1 when the server can take uploads (both stores answer, free space above the floor), else 0: GET /readyz at scrape time.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), healthProbeTimeout)
		defer cancel()
		if s.Ready(ctx) != nil {
			return 0
		}
		return 1
	}))
	fs, ok := s.blobs.(filehub.FreeSpacer)
	if !ok {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "filehub", Name: "storage_free_bytes",
		Help: "Free space of the blob store's file system at scrape time (NaN if it cannot be read).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), healthProbeTimeout)
		defer cancel()
		free, err := fs.FreeSpace(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(free)
	}), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "filehub", Name: "storage_min_free_bytes",
		Help: "The free-space floor: uploads are refused (507) and readiness fails below it; 0 when disabled.",
	}, func() float64 { return float64(max(s.cfg.MinFreeSpace, 0)) }))
}
