package providers

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
)

// Push results (label "result" of filehub_provider_pushes_total) besides
// the filehub error codes of failed pushes.
const (
	resultUploaded = "uploaded"
	resultReused   = "reused"
)

// unknownProvider labels pushes to a provider that is not configured: the
// name comes from the request, so it must not become a label value.
const unknownProvider = "unknown"

// quotaer is the optional capability of a filehub.Provider that knows its
// account's file quota (openai.Client has it).
type quotaer interface{ FileQuota() int }

// metrics are the service's Prometheus collectors.
type metrics struct {
	pushes   *prometheus.CounterVec
	reuses   *prometheus.CounterVec
	uploaded *prometheus.CounterVec
	files    *prometheus.GaugeVec
	quota    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, providers map[string]filehub.Provider) (*metrics, error) {
	const ns, sub = "filehub", "provider"
	m := &metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "pushes_total",
			Help: "Pushes by provider and result: uploaded, reused, or the error's code (not_found, too_large, unavailable, canceled, ...).",
		}, []string{"provider", "result"}),
		reuses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "reuses_total",
			Help: "Pushes answered with a copy the provider already had, by provider: uploads saved.",
		}, []string{"provider"}),
		uploaded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "uploaded_bytes_total",
			Help: "Bytes of content uploaded to providers, by provider.",
		}, []string{"provider"}),
		files: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "files",
			Help: "Files the provider account holds, by provider, as last counted by a full listing (SetProviderFiles); absent until then.",
		}, []string{"provider"}),
		quota: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "file_quota",
			Help: "The most files the provider keeps per account, by provider; absent when unknown.",
		}, []string{"provider"}),
	}
	for name, p := range providers {
		// Pre-create the common series, so that rates start at zero
		// rather than at a provider's first push.
		m.pushes.WithLabelValues(name, resultUploaded)
		m.pushes.WithLabelValues(name, resultReused)
		m.reuses.WithLabelValues(name)
		m.uploaded.WithLabelValues(name)
		if q, ok := p.(quotaer); ok && q.FileQuota() > 0 {
			m.quota.WithLabelValues(name).Set(float64(q.FileQuota()))
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.pushes, m.reuses, m.uploaded, m.files, m.quota} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// observe counts one push's outcome.
func (m *metrics) observe(provider string, res *Result, size int64, err error) {
	switch {
	case err != nil:
		code := filehub.ErrorCode(err)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			code = "canceled" // the caller gave up: not an internal error
		}
		m.pushes.WithLabelValues(provider, code).Inc()
	case res.Reused:
		m.pushes.WithLabelValues(provider, resultReused).Inc()
		m.reuses.WithLabelValues(provider).Inc()
	default:
		m.pushes.WithLabelValues(provider, resultUploaded).Inc()
		m.uploaded.WithLabelValues(provider).Add(float64(size))
	}
}

// SetProviderFiles records that the account of the provider named
// provider holds n files, as a full listing of it found (the cleanup of
// provider accounts lists them). Unknown providers are ignored.
func (s *Service) SetProviderFiles(provider string, n int) {
	if _, ok := s.providers[provider]; ok {
		s.metrics.files.WithLabelValues(provider).Set(float64(n))
	}
}
