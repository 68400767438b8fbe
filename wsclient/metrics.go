package wsclient

// Metrics receives the client's measurements. Every field is optional (nil:
// not measured). The package wsclientprom returns one backed by Prometheus
// collectors; the client itself links no metrics library, so that programs
// using it stay light.
type Metrics struct {
	Uptime        Counter // seconds spent with a connected session
	Downtime      Counter // seconds spent connecting or reconnecting
	Attempts      Counter // connection attempts after the first one
	Successes     Counter // reconnection attempts that ended with a welcome
	FailedRetries Counter // reconnection attempts that failed
	Delivered     Counter // reliable frames (msg, req) the server acknowledged
	Failed        Counter // reliable frames that failed: session lost, client closed, permanent error
	OutboxFrames  Gauge   // reliable frames waiting for an acknowledgement
	OutboxBytes   Gauge   // encoded bytes of those frames
	// AckLatency observes the seconds from a frame's first transmission
	// to its acknowledgement.
	AckLatency      Histogram
	SessionsLost    Counter // reconnects on which the server no longer knew the session
	EventsDelivered Counter // events handed to a subscriber
}

// Counter is a monotonic count; prometheus.Counter implements it.
type Counter interface {
	Inc()
	Add(float64)
}

// Gauge is a value that goes up and down; prometheus.Gauge implements it.
type Gauge interface {
	Inc()
	Dec()
	Add(float64)
	Sub(float64)
}

// Histogram records observations; prometheus.Histogram implements it.
type Histogram interface {
	Observe(float64)
}

// metrics is Metrics with every nil hook replaced by a no-op.
type metrics struct {
	uptime, downtime, attempts, successes, failedRetries, delivered, failed Counter
	outboxFrames, outboxBytes                                               Gauge
	ackLatency                                                              Histogram
	sessionsLost, eventsDelivered                                           Counter
}

type nop struct{}

func (nop) Inc()            {}
func (nop) Dec()            {}
func (nop) Add(float64)     {}
func (nop) Sub(float64)     {}
func (nop) Observe(float64) {}

func newMetrics(h *Metrics) *metrics {
	if h == nil {
		h = &Metrics{}
	}
	c := func(x Counter) Counter {
		if x == nil {
			return nop{}
		}
		return x
	}
	g := func(x Gauge) Gauge {
		if x == nil {
			return nop{}
		}
		return x
	}
	m := &metrics{
		uptime: c(h.Uptime), downtime: c(h.Downtime), attempts: c(h.Attempts), successes: c(h.Successes),
		failedRetries: c(h.FailedRetries), delivered: c(h.Delivered), failed: c(h.Failed),
		outboxFrames: g(h.OutboxFrames), outboxBytes: g(h.OutboxBytes),
		sessionsLost: c(h.SessionsLost), eventsDelivered: c(h.EventsDelivered),
		ackLatency: nop{},
	}
	if h.AckLatency != nil {
		m.ackLatency = h.AckLatency
	}
	return m
}
