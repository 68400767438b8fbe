package mcpserver

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiterSet keeps one token bucket per API key, with a bounded number of
// entries.
type limiterSet struct {
	limit rate.Limit
	burst int
	max   int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newLimiterSet(limit float64, burst, max int) *limiterSet {
	return &limiterSet{limit: rate.Limit(limit), burst: burst, max: max, m: make(map[string]*rate.Limiter)}
}

// get returns the limiter of k, creating it if needed. When the set is
// full, limiters whose bucket has refilled are dropped first (a full bucket
// behaves like a new one, so nothing is lost), then arbitrary ones down to
// three quarters of the bound.
func (s *limiterSet) get(k string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lim, ok := s.m[k]; ok {
		return lim
	}
	if len(s.m) >= s.max {
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
	lim := rate.NewLimiter(s.limit, s.burst)
	s.m[k] = lim
	return lim
}
