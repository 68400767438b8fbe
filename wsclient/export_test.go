package wsclient

import "time"

// NextBackoffs exposes the jitter policy to the external tests: the first n
// waits drawn with rnd as the random source.
func NextBackoffs(p Backoff, rnd func() float64, n int) []time.Duration {
	j := newJitter(p, rnd)
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = j.next()
	}
	return out
}
