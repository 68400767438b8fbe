// Package chaosproxy is a TCP proxy for fault tests: it sits between a client
// and a server on 127.0.0.1 and, on command, cuts connections, stalls them
// (bytes stop flowing but nothing is closed — a half-open connection as a
// dead network path looks to both ends), delays them, or refuses new ones.
// It only ever listens on and dials loopback addresses chosen by the test.
package chaosproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections from its own loopback address to a target.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   map[*link]struct{}
	stalled bool
	delay   time.Duration
	refuse  bool
	unstall chan struct{} // closed when a stall ends
	closed  bool
	wg      sync.WaitGroup
}

type link struct {
	client, server net.Conn
}

func (l *link) close() {
	l.client.Close()
	l.server.Close()
}

// New starts a proxy on 127.0.0.1 (random port) forwarding to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[*link]struct{}{}, unstall: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse || p.closed
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		l := &link{client: c, server: s}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.close()
			return
		}
		p.conns[l] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(l, c, s)
		go p.pipe(l, s, c)
	}
}

// pipe copies src to dst chunk by chunk, obeying stalls and delays, and
// closes the whole link when either side ends.
func (p *Proxy) pipe(l *link, dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.conns, l)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// wait blocks while the proxy is stalled and sleeps the configured delay.
// It returns false if the proxy closed meanwhile.
func (p *Proxy) wait() bool {
	for {
		p.mu.Lock()
		stalled, unstall, delay, closed := p.stalled, p.unstall, p.delay, p.closed
		p.mu.Unlock()
		if closed {
			return false
		}
		if !stalled {
			if delay > 0 {
				time.Sleep(delay)
			}
			return true
		}
		<-unstall
	}
}

// CutAll closes every open connection at once, on both sides, as a network
// failure would. New connections are still accepted.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.conns {
		l.close()
	}
}

// Stall stops (true) or resumes (false) the flow of bytes on every
// connection without closing any: both ends see a silent, half-open path.
func (p *Proxy) Stall(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.stalled {
		return
	}
	p.stalled = on
	if !on {
		close(p.unstall)
		p.unstall = make(chan struct{})
	}
}

// SetDelay delays every forwarded chunk by d (0 for none).
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Refuse makes the proxy close (true) new connections right after accepting
// them, like a server that is down, or accept them again (false).
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// Conns returns the number of open proxied connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops the proxy, closes every connection and waits for its
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	for l := range p.conns {
		l.close()
	}
	if p.stalled {
		close(p.unstall)
		p.stalled = false
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

var _ io.Closer = (*Proxy)(nil)
