package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	rateLimited     *prometheus.CounterVec
	uploadsRejected *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "filehub", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "filehub", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern and method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10), // 0.5ms … ~2 min
		}, []string{"route", "method"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "filehub", Subsystem: "http", Name: "rate_limited_total",
			Help: "Requests refused with 429: reason key (per-key rate limit) or auth (repeated failed authentication from one address).",
		}, []string{"reason"}),
		uploadsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "filehub", Subsystem: "http", Name: "uploads_rejected_total",
			Help: "Uploads refused before reading the body: reason busy (concurrent upload cap reached).",
		}, []string{"reason"}),
	}
	m.rateLimited.WithLabelValues("key")
	m.rateLimited.WithLabelValues("auth")
	m.uploadsRejected.WithLabelValues("busy")
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.rateLimited, m.uploadsRejected)
	}
	return m
}

func (m *metrics) observe(route, method string, code int, d time.Duration) {
	method = methodLabel(method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// methodLabel bounds the method label: clients can send any token as a
// method, and each distinct label value is a new time series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}
