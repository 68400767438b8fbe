package wsserver

import (
	"math"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub/wsproto"
)

// metrics are the server's Prometheus collectors. Hot counters (frames,
// deliveries, outbox depth) are plain atomics read by collector functions
// or added in batches, so that the fan-out path does not contend on
// Prometheus internals.
type metrics struct {
	sessions        atomic.Int64 // sessions in the registry
	connected       atomic.Int64 // sessions with a connection
	outboxDepth     atomic.Int64 // unacknowledged server frames, all sessions
	resultBytes     atomic.Int64 // bytes in the result store, all sessions
	connections     *prometheus.CounterVec
	resumes         *prometheus.CounterVec
	slowConsumers   prometheus.Counter
	pingRTT         prometheus.Histogram
	framesIn        map[string]prometheus.Counter
	framesOut       map[string]prometheus.Counter
	ackLatency      prometheus.Histogram
	eventDeliveries prometheus.Counter
	rpcs            *prometheus.CounterVec
	saveSeconds     prometheus.Histogram // durable sessions: one group commit
	saveBatch       prometheus.Histogram
	fenced          prometheus.Counter
	// hub measures filehub_events_lag_seconds; set by newHub, which runs
	// after newMetrics.
	hub atomic.Pointer[hub]
}

// Connection results (label of filehub_ws_connections_total).
const (
	connAccepted     = "accepted"
	connUnauthorized = "unauthorized"
	connForbidden    = "forbidden"
	connBadProtocol  = "bad_protocol"
	connTooMany      = "too_many"
	connShutdown     = "shutting_down"
	connHelloTimeout = "hello_timeout"
	connUnavailable  = "unavailable"
)

// Resume results (label of filehub_ws_resumes_total).
const (
	resumeResumed  = "resumed"
	resumeExpired  = "expired"
	resumeBadToken = "bad_token"
	resumeUnknown  = "unknown"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "filehub", "ws"
	m := &metrics{
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "connections_total",
			Help: "WebSocket upgrade attempts by result (accepted, unauthorized, forbidden, bad_protocol, too_many, shutting_down, hello_timeout, unavailable).",
		}, []string{"result"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "resumes_total",
			Help: "Session resume attempts by result (resumed, expired, bad_token, unknown).",
		}, []string{"result"}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "slow_consumer_disconnects_total",
			Help: "Connections closed with 4008 because the client did not acknowledge in time.",
		}),
		pingRTT: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "ping_rtt_seconds",
			Help:    "Round-trip time of server WebSocket pings.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "ack_latency_seconds",
			Help:    "Time from writing a reliable server frame until the client acknowledged it (observed once per ack, for the newest frame it covers).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		eventDeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "event_deliveries_total",
			Help: "Event frames written to clients (first transmissions only).",
		}),
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "rpcs_total",
			Help: "Requests executed, by method and result (ok or an error code; cached for a re-sent request id; gone for a re-sent id whose result was dropped by the byte budget).",
		}, []string{"method", "result"}),
		saveSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "session_save_seconds",
			Help:    "Duration of one group commit of durable session state.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		saveBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "session_save_batch_sessions",
			Help:    "Sessions saved by one group commit of durable session state.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "sessions_fenced_total",
			Help: "Durable sessions dropped here because another instance claimed them (their connection closed with 4007).",
		}),
		framesIn:  make(map[string]prometheus.Counter),
		framesOut: make(map[string]prometheus.Counter),
	}
	in := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "frames_received_total",
		Help: "Frames received from clients, by type.",
	}, []string{"type"})
	out := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "frames_sent_total",
		Help: "Frames written to clients, by type (replays included).",
	}, []string{"type"})
	for _, t := range []string{wsproto.TypeHello, wsproto.TypeMsg, wsproto.TypeReq, wsproto.TypeAck} {
		m.framesIn[t] = in.WithLabelValues(t)
	}
	for _, t := range []string{wsproto.TypeWelcome, wsproto.TypeMsg, wsproto.TypeRes, wsproto.TypeEvent, wsproto.TypeAck, wsproto.TypeError} {
		m.framesOut[t] = out.WithLabelValues(t)
	}
	if reg == nil {
		return m
	}
	gauge := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	for _, c := range []prometheus.Collector{
		gauge("sessions_active", "Sessions held by the server, connected or waiting for a resume.", &m.sessions),
		gauge("sessions_connected", "Sessions with a live connection.", &m.connected),
		gauge("outbox_frames", "Unacknowledged server frames, summed over sessions.", &m.outboxDepth),
		gauge("result_cache_bytes", "Bytes of request results kept for re-sent requests, summed over sessions.", &m.resultBytes),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Name: "events_lag_seconds",
			Help: "Age of the oldest event in the store that the WebSocket event hub has not read and fanned out yet, 0 when caught up; measured at scrape time (NaN when the store cannot be read).",
		}, func() float64 {
			if h := m.hub.Load(); h != nil {
				return h.lagSeconds()
			}
			return math.NaN()
		}),
		m.connections, m.resumes, m.slowConsumers, m.pingRTT, in, out, m.ackLatency, m.eventDeliveries, m.rpcs,
		m.saveSeconds, m.saveBatch, m.fenced,
	} {
		// A second server on the same registry (tests) would collide;
		// that is a wiring bug worth failing loudly on.
		reg.MustRegister(c)
	}
	return m
}

// frameIn counts a received frame.
func (m *metrics) frameIn(typ string) {
	if c, ok := m.framesIn[typ]; ok {
		c.Inc()
	}
}

// frameOut counts n written frames of one type.
func (m *metrics) frameOut(typ string, n int) {
	if c, ok := m.framesOut[typ]; ok && n > 0 {
		c.Add(float64(n))
	}
}
