package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiters keeps one token-bucket limiter per key (an address, an API key
// id), with a bounded number of entries. It is safe for concurrent use.
//
// In a cluster, each of n instances enforces a share of the configured
// limit (SetShare): 1/n of the rate and of the burst, so that the cluster
// as a whole admits the configured rate when a balancer spreads a key's
// requests evenly (docs/decisions.md, "Cluster-wide rate limits").
type Limiters struct {
	// limit and burst are the configured values, for the whole cluster.
	limit rate.Limit
	burst int
	max   int

	mu    sync.Mutex
	share int        // instances the limit is shared by, at least 1
	cur   rate.Limit // limit / share
	curB  int        // burst / share, at least 1
	m     map[string]*rate.Limiter
}

// NewLimiters returns limiters of limit per second with burst, at most max
// of them.
func NewLimiters(limit float64, burst, max int) *Limiters {
	return &Limiters{
		limit: rate.Limit(limit), burst: burst, max: max,
		share: 1, cur: rate.Limit(limit), curB: burst,
		m: make(map[string]*rate.Limiter),
	}
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
	lim := rate.NewLimiter(s.cur, s.curB)
	s.m[k] = lim
	return lim
}

// Share returns the number of instances the configured limit is shared by
// (1 until SetShare is called).
func (s *Limiters) Share() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.share
}

// SetShare makes every limiter, existing and future, enforce 1/n of the
// configured rate and burst (a burst of at least 1): n instances share
// the limit. n below 1 counts as 1.
//
// Existing limiters keep their state. When the share shrinks (instances
// joined), a limiter keeps the same fraction of its bucket: a full one is
// full at the new burst, an empty or indebted one stays so. Keeping its
// tokens instead would let every key spend up to a whole new burst more
// across the cluster at each change. When the share grows (instances
// left), a limiter keeps its tokens and refills at the higher rate up to
// the larger burst: the tokens the departed instances held for the key
// went with them, so the cluster's total never exceeds the configured
// burst.
func (s *Limiters) SetShare(n int) {
	n = max(n, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n == s.share {
		return
	}
	oldB := s.curB
	s.share = n
	s.cur = s.limit / rate.Limit(n)
	s.curB = max(1, s.burst/n)
	now := time.Now()
	for _, lim := range s.m {
		rescale(lim, now, oldB, s.cur, s.curB)
	}
}

// rescale gives lim the limit and burst of a new share at now; see
// SetShare.
func rescale(lim *rate.Limiter, now time.Time, oldBurst int, limit rate.Limit, burst int) {
	tokens := lim.TokensAt(now)
	lim.SetLimitAt(now, limit)
	lim.SetBurstAt(now, burst)
	if burst >= oldBurst || tokens <= 0 {
		return
	}
	// The limiter's next use clamps tokens to the new burst; take away
	// the whole tokens above the same fraction of it (a fraction of a
	// token is refilled in a moment anyway).
	want := tokens * float64(burst) / float64(oldBurst)
	if n := int(min(tokens, float64(burst)) - want); n > 0 {
		lim.AllowN(now, n)
	}
}

// evict makes room. It first drops idle limiters, those whose bucket has
// refilled: a full bucket behaves exactly like a new one, so dropping it
// loses nothing. If every limiter is busy, arbitrary ones are dropped
// (which forgives their debt) down to three quarters of the bound, so that
// the O(n) sweep runs at most once per max/4 insertions.
func (s *Limiters) evict() {
	now := time.Now()
	for k, lim := range s.m {
		if lim.TokensAt(now) >= float64(s.curB) {
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
