package tus

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	started, finished, expired, terminated prometheus.Counter
	bytes, checksumMismatches              prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "filehub", Subsystem: "tus", Name: name, Help: help})
	}
	m := &metrics{
		started:            c("uploads_started_total", "Resumable uploads created (partial and final uploads included)."),
		finished:           c("uploads_finished_total", "Resumable uploads that became files."),
		expired:            c("uploads_expired_total", "Unfinished resumable uploads removed after they expired."),
		terminated:         c("uploads_terminated_total", "Resumable uploads deleted by their client (tus termination)."),
		bytes:              c("bytes_received_total", "Bytes of resumable uploads durably stored."),
		checksumMismatches: c("checksum_mismatches_total", "Chunks refused because they did not match their Upload-Checksum."),
	}
	if reg != nil {
		reg.MustRegister(m.started, m.finished, m.expired, m.terminated, m.bytes, m.checksumMismatches)
	}
	return m
}
