package mcpserver

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus collectors.
type metrics struct {
	calls         *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	notifications *prometheus.CounterVec
	refused       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, sessions, large func() int) (*metrics, error) {
	const ns, sub = "filehub", "mcp"
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "tool_calls_total",
			Help: "MCP tool calls by tool and result: ok, or the error's code (not_found, invalid, forbidden, rate_limited, ...).",
		}, []string{"tool", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "tool_call_duration_seconds",
			Help:    "Time spent in MCP tool calls that passed the scope and rate checks, by tool.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"tool"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "events_total",
			Help: "File events turned into MCP resource notifications, by event type.",
		}, []string{"type"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "refused_requests_total",
			Help: "Streamable HTTP requests refused before MCP, by reason (unauthorized, forbidden, sessions, large_requests).",
		}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.calls, m.duration, m.notifications, m.refused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "sessions",
			Help: "MCP sessions open now.",
		}, func() float64 { return float64(sessions()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "large_requests",
			Help: "Streamable HTTP requests with a large body being handled now (bounded by MaxLargeRequests).",
		}, func() float64 { return float64(large()) }),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
