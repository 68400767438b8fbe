package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiters keeps one token-bucket limiter per key (an address, an API key
// id), with a bounded number of entries. It is safe for concurrent use.
type Limiters struct {
	limit rate.Limit
	burst int
	max   int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// NewLimiters returns limiters of limit per second with burst, at most max
// of them.
func NewLimiters(limit float64, burst, max int) *Limiters {
	return &Limiters{limit: rate.Limit(limit), burst: burst, max: max, m: make(map[string]*rate.Limiter)}
}

// Peek returns the limiter for k, or nil if there is none.
func (s *Limiters) Peek(k string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k]
}

// Get returns the limiter for k, creating it if needed.
func (s *Limiters) Get(k string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lim, ok := s.m[k]; ok {
		return lim
	}
	if len(s.m) >= s.max {
		s.evict()
	}
	lim := rate.NewLimiter(s.limit, s.burst)
	s.m[k] = lim
	return lim
}

// evict makes room. It first drops idle limiters, those whose bucket has
// refilled: a full bucket behaves exactly like a new one, so dropping it
// loses nothing. If every limiter is busy, arbitrary ones are dropped
// (which forgives their debt) down to three quarters of the bound, so that
// the O(n) sweep runs at most once per max/4 insertions.
func (s *Limiters) evict() {
	now := time.Now()
	for k, lim := range s.m {
		if lim.TokensAt(now) >= float64(s.burst) {
			delete(s.m, k)
		}
	}
	for k := range s.m {
		if len(s.m) < s.max*3/4 {
			break
		}
		delete(s.m, k)
	}
}
