// Package chaosproxy is a TCP proxy for fault tests: it sits between a client
// and a server on 127.0.0.1 and, on command, cuts connections, stalls them
// (bytes stop flowing but nothing is closed — a half-open connection as a
// dead network path looks to both ends), delays them, or refuses new ones.
// Given several targets it is also a round-robin load balancer, and it can
// abandon the client side of its connections while keeping the server side
// open (a partition), recording what the servers go on sending.
// It only ever listens on and dials loopback addresses chosen by the test.
package chaosproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards connections from its own loopback address to a target.
type Proxy struct {
	ln      net.Listener
	targets []string

	mu       sync.Mutex
	next     int             // index of the target the next connection tries first
	excluded map[string]bool // targets new connections skip
	conns    map[*link]struct{}
	orphans  map[*link]struct{} // abandoned links whose server side is still open
	stalled  bool
	delay    time.Duration
	refuse   bool
	unstall  chan struct{} // closed when a stall ends
	closed   bool
	wg       sync.WaitGroup

	upstream atomic.Int64 // bytes forwarded from clients to servers
}

type link struct {
	target         string
	client, server net.Conn

	mu     sync.Mutex
	orphan *Orphan // set when the client side was abandoned
}

func (l *link) close() {
	l.client.Close()
	l.server.Close()
}

func (l *link) orphaned() *Orphan {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.orphan
}

// Orphan is the server side of an abandoned connection: the client is gone,
// but the server, which has not been told, may go on sending. Orphan keeps
// what it sends until it closes the connection.
type Orphan struct {
	// Target is the server the connection went to.
	Target string

	mu   sync.Mutex
	data []byte
	done chan struct{}
}

// Data returns the bytes the server sent after the client side was
// abandoned (and any it sent just before that the client never got).
func (o *Orphan) Data() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]byte(nil), o.data...)
}

// Done is closed once the server side is closed: by the server, or by the
// proxy's Close or CutAll.
func (o *Orphan) Done() <-chan struct{} { return o.done }

func (o *Orphan) write(b []byte) {
	o.mu.Lock()
	o.data = append(o.data, b...)
	o.mu.Unlock()
}

// New starts a proxy on 127.0.0.1 (random port) forwarding to target.
func New(target string) (*Proxy, error) {
	return NewBalancer(target)
}

// NewBalancer starts a proxy on 127.0.0.1 (random port) that sends each new
// connection to the next of targets in turn, as a round-robin load balancer
// does. A target that refuses the connection, or is excluded (Exclude), is
// skipped for the next one; if none can be reached the client's connection
// is closed.
func NewBalancer(targets ...string) (*Proxy, error) {
	if len(targets) == 0 {
		return nil, errors.New("chaosproxy: no target")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, targets: append([]string(nil), targets...), excluded: map[string]bool{},
		conns: map[*link]struct{}{}, orphans: map[*link]struct{}{}, unstall: make(chan struct{})}
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
		target, s := p.dial()
		if s == nil {
			c.Close()
			continue
		}
		l := &link{target: target, client: c, server: s}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.close()
			return
		}
		p.conns[l] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(l, c, s, true)
		go p.pipe(l, s, c, false)
	}
}

// dial connects to the next target that is not excluded and accepts the
// connection, in round-robin order. It returns a nil conn if none does.
func (p *Proxy) dial() (string, net.Conn) {
	p.mu.Lock()
	first := p.next
	p.next = (p.next + 1) % len(p.targets)
	p.mu.Unlock()
	for i := range p.targets {
		target := p.targets[(first+i)%len(p.targets)]
		p.mu.Lock()
		skip := p.excluded[target]
		p.mu.Unlock()
		if skip {
			continue
		}
		s, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err == nil {
			return target, s
		}
	}
	return "", nil
}

// pipe copies src to dst chunk by chunk, obeying stalls and delays, and
// closes the whole link when either side ends — unless the link was
// abandoned: then the server-to-client pipe (toClient) goes on reading the
// server into the orphan until the server ends, and closes the link.
func (p *Proxy) pipe(l *link, dst, src net.Conn, toClient bool) {
	defer p.wg.Done()
	defer func() {
		// The check and the removal are one step under p.mu, which
		// Abandon holds too: a link is either abandoned while listed, or
		// gone before Abandon sees it.
		p.mu.Lock()
		o := l.orphaned()
		if o != nil && !toClient {
			p.mu.Unlock()
			return // the server-to-client pipe owns the server side now
		}
		delete(p.conns, l)
		delete(p.orphans, l)
		p.mu.Unlock()
		l.close()
		if o != nil {
			close(o.done)
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if o := l.orphaned(); o != nil {
				if !toClient {
					return
				}
				o.write(buf[:n])
			} else if _, werr := dst.Write(buf[:n]); werr != nil {
				if o := l.orphaned(); o != nil && toClient {
					o.write(buf[:n]) // the client never got it
					continue
				}
				return
			} else if !toClient {
				p.upstream.Add(int64(n))
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
// failure would, and the server side of abandoned ones. New connections
// are still accepted.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.conns {
		l.close()
	}
	for l := range p.orphans {
		l.close()
	}
}

// Abandon closes the client side of every open connection and leaves the
// server side open, as a partition looks to a server: the client has gone
// elsewhere, and the server learns nothing of it. It returns one Orphan per
// connection, which records what the server sends from then on.
func (p *Proxy) Abandon() []*Orphan {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*Orphan
	for l := range p.conns {
		o := &Orphan{Target: l.target, done: make(chan struct{})}
		l.mu.Lock()
		l.orphan = o
		l.mu.Unlock()
		l.client.Close()
		delete(p.conns, l)
		p.orphans[l] = struct{}{}
		out = append(out, o)
	}
	return out
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

// Exclude takes target out of the rotation for new connections (true), as
// a load balancer does with an instance that fails its health check or is
// being deployed, or puts it back (false). Open connections stay. It
// panics if target is not one of the proxy's.
func (p *Proxy) Exclude(target string, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.targets {
		if t == target {
			p.excluded[target] = on
			return
		}
	}
	panic(fmt.Sprintf("chaosproxy: %s is not a target", target))
}

// Conns returns the number of open proxied connections (abandoned ones not
// counted).
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Upstream returns how many bytes the proxy has forwarded from clients to
// servers: a test waits on it to know that what a client sent has reached
// a server's socket (which a paused server does not read).
func (p *Proxy) Upstream() int64 { return p.upstream.Load() }

// ConnTargets returns the target of each open proxied connection.
func (p *Proxy) ConnTargets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for l := range p.conns {
		out = append(out, l.target)
	}
	return out
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
	for l := range p.orphans {
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
