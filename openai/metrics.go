package openai

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// statusTransport is the status label of attempts that got no answer
// (connection refused, reset, timed out).
const statusTransport = "transport"

// newAPIErrors returns the counter of failed attempts, registered on reg,
// or the identical counter another client registered there before: every
// provider's client shares one collector, told apart by the provider
// label.
func newAPIErrors(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "filehub", Subsystem: "provider", Name: "api_errors_total",
		Help: "Failed requests to providers' files APIs by provider and HTTP status (\"transport\": no answer), every attempt counted, retried or not; 404s of files the provider no longer has included.",
	}, []string{"provider", "status"})
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	return c, err
}
