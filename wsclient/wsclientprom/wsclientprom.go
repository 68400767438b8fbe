// Package wsclientprom exports a wsclient.Client's metrics to Prometheus
// (namespace filehub_wsclient). It is a separate package so that programs
// using wsclient without Prometheus do not link it.
package wsclientprom

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub/wsclient"
)

type collectors struct {
	uptime          prometheus.Counter
	downtime        prometheus.Counter
	attempts        prometheus.Counter
	successes       prometheus.Counter
	failedRetries   prometheus.Counter
	delivered       prometheus.Counter
	failed          prometheus.Counter
	outboxFrames    prometheus.Gauge
	outboxBytes     prometheus.Gauge
	ackLatency      prometheus.Histogram
	sessionsLost    prometheus.Counter
	eventsDelivered prometheus.Counter
}

func (m *collectors) hooks() *wsclient.Metrics {
	return &wsclient.Metrics{
		Uptime: m.uptime, Downtime: m.downtime, Attempts: m.attempts, Successes: m.successes,
		FailedRetries: m.failedRetries, Delivered: m.delivered, Failed: m.failed,
		OutboxFrames: m.outboxFrames, OutboxBytes: m.outboxBytes, AckLatency: m.ackLatency,
		SessionsLost: m.sessionsLost, EventsDelivered: m.eventsDelivered,
	}
}

const namespace = "filehub_wsclient"

// New returns the client's metrics as Prometheus collectors registered on
// reg (nil: not registered), for wsclient.Options.Metrics. Clients that
// share a Registerer share the collectors, whose values are then sums.
func New(reg prometheus.Registerer) (*wsclient.Metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
	}
	m := &collectors{
		uptime:        counter("connected_seconds_total", "Time spent with a connected session."),
		downtime:      counter("disconnected_seconds_total", "Time spent connecting or reconnecting."),
		attempts:      counter("reconnect_attempts_total", "Connection attempts after the first one."),
		successes:     counter("reconnect_successes_total", "Reconnection attempts that ended with a welcome."),
		failedRetries: counter("reconnect_failures_total", "Reconnection attempts that failed."),
		delivered:     counter("messages_delivered_total", "Reliable frames (msg, req) the server acknowledged."),
		failed:        counter("messages_failed_total", "Reliable frames (msg, req) that failed: session lost, client closed, permanent error."),
		outboxFrames:  gauge("outbox_frames", "Reliable frames waiting for an acknowledgement."),
		outboxBytes:   gauge("outbox_bytes", "Encoded bytes of the frames waiting for an acknowledgement."),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "ack_latency_seconds",
			Help:    "Time from a frame's first transmission to its acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		sessionsLost:    counter("sessions_lost_total", "Reconnects on which the server no longer knew the session."),
		eventsDelivered: counter("events_delivered_total", "Events handed to a subscriber."),
	}
	if reg == nil {
		return m.hooks(), nil
	}
	var err error
	m.uptime = register(reg, m.uptime, &err)
	m.downtime = register(reg, m.downtime, &err)
	m.attempts = register(reg, m.attempts, &err)
	m.successes = register(reg, m.successes, &err)
	m.failedRetries = register(reg, m.failedRetries, &err)
	m.delivered = register(reg, m.delivered, &err)
	m.failed = register(reg, m.failed, &err)
	m.outboxFrames = register(reg, m.outboxFrames, &err)
	m.outboxBytes = register(reg, m.outboxBytes, &err)
	m.ackLatency = register(reg, m.ackLatency, &err)
	m.sessionsLost = register(reg, m.sessionsLost, &err)
	m.eventsDelivered = register(reg, m.eventsDelivered, &err)
	return m.hooks(), err
}

// register registers c, or returns the identical collector another client
// registered before, so that several clients can share one registry.
func register[T prometheus.Collector](reg prometheus.Registerer, c T, errp *error) T {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing
		}
	}
	*errp = errors.Join(*errp, err)
	return c
}
