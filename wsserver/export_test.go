package wsserver

// Crash makes s behave as if its process died at once: nothing more is
// saved (a save in flight may commit, but nobody learns of it), waits for
// saves give up, and every connection is cut without a close frame. The
// test then shuts s down to release its goroutines; the store is left as
// the crash left it.
func (s *Server) Crash() {
	s.commit.crashed.Store(true)
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.mu.Lock()
		ss.fenced = true
		ss.mu.Unlock()
		s.commit.mark(ss) // a round, so that waiters look again
	}
	for _, c := range conns {
		_ = c.ws.NetConn().Close()
	}
}

// HubRing reports the hub's latest event id and how many events its ring
// holds.
func (s *Server) HubRing() (latest int64, held int) {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	return s.hub.latest.Load(), s.hub.n
}

// ReadBuffers returns how many pooled read buffers connections hold now
// and how many times one was borrowed.
func ReadBuffers() (lent, borrowed int64) {
	return readBuffersLent.Load(), readBuffersBorrowed.Load()
}
