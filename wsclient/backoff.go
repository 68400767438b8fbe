package wsclient

import (
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Backoff is the reconnection policy: exponential backoff with full jitter
// (spec §10). Before attempt n the client waits a uniformly random duration
// in [0, min(Max, Initial × Multiplier^n)]. Full jitter, rather than a
// fixed or ±50% randomized delay, spreads the reconnects of many clients
// after a server restart instead of having them arrive in synchronized waves.
// The policy starts over at Initial once a connection has lasted at least
// Max, so a server that accepts and at once drops connections is not
// hammered at the initial rate.
type Backoff struct {
	// Initial is the first interval. Default 250ms.
	Initial time.Duration
	// Max caps the interval. Default 30s.
	Max time.Duration
	// Multiplier is the growth factor per attempt. Default 2; values below 1
	// are replaced by the default.
	Multiplier float64
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 250 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Multiplier < 1 {
		b.Multiplier = 2
	}
	return b
}

// jitter is full jitter on top of the library's exponential policy: the
// library computes the (un-randomized) ceiling, we draw below it.
type jitter struct {
	exp  *backoff.ExponentialBackOff
	rand func() float64 // in [0, 1)
}

func newJitter(p Backoff, rnd func() float64) *jitter {
	p = p.withDefaults()
	if rnd == nil {
		rnd = rand.Float64 //nolint:gosec // jitter spreads load; it needs no unpredictability
	}
	exp := &backoff.ExponentialBackOff{
		InitialInterval:     p.Initial,
		RandomizationFactor: 0, // the ceiling itself; the jitter is ours
		Multiplier:          p.Multiplier,
		MaxInterval:         p.Max,
	}
	exp.Reset()
	return &jitter{exp: exp, rand: rnd}
}

// next returns the wait before the next attempt and advances the policy.
func (j *jitter) next() time.Duration {
	ceil := j.exp.NextBackOff()
	return time.Duration(j.rand() * float64(ceil+1))
}

// reset starts over at Initial, after a successful connection.
func (j *jitter) reset() { j.exp.Reset() }
