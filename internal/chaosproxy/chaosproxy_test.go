package chaosproxy_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub/internal/chaosproxy"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes lines until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go func() {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(line))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, msg string, timeout time.Duration) error {
	t.Helper()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg+"\n" {
		t.Fatalf("echo %q, want %q", got, msg)
	}
	return nil
}

func TestProxyForwardsCutsStallsAndRefuses(t *testing.T) {
	p, err := chaosproxy.New(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if err := roundTrip(t, c, r, "hello", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// The proxy counts a chunk after its write to the server returns, which
	// can be after the server's echo has reached the client: wait for it.
	want := int64(len("hello\n"))
	for deadline := time.Now().Add(5 * time.Second); p.Upstream() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := p.Upstream(); n != want {
		t.Errorf("Upstream() = %d after one line, want %d", n, want)
	}

	// Stalled: nothing comes back, and the connection stays open.
	p.Stall(true)
	if err := roundTrip(t, c, r, "stalled", 200*time.Millisecond); err == nil {
		t.Fatal("got an echo through a stalled proxy")
	}
	if p.Conns() != 1 {
		t.Fatalf("%d connections during a stall, want 1", p.Conns())
	}
	p.Stall(false)
	// The stalled bytes flow again once the stall ends.
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "stalled\n" {
		t.Fatalf("after stall: %q, %v", got, err)
	}

	p.CutAll()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("read succeeded on a cut connection")
	}

	p.Refuse(true)
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		c2.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := bufio.NewReader(c2).ReadString('\n'); err == nil {
			t.Fatal("refused connection delivered data")
		}
		c2.Close()
	}
	p.Refuse(false)
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := roundTrip(t, c3, bufio.NewReader(c3), "again", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// namedServer answers every connection with its name and a newline, then
// echoes lines, until the test ends.
func namedServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			c.Write([]byte(name + "\n"))
			go func() {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(line))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// greeting connects through p and returns the name of the server reached
// ("" if the connection was closed without one).
func greeting(t *testing.T, p *chaosproxy.Proxy) (string, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", c
	}
	c.SetDeadline(time.Time{})
	return strings.TrimSuffix(line, "\n"), c
}

func TestBalancerRoundRobinSkipsDownAndExcludedTargets(t *testing.T) {
	a, b, c := namedServer(t, "a"), namedServer(t, "b"), namedServer(t, "c")
	// A target nobody listens on: its port was free a moment ago.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()

	p, err := chaosproxy.NewBalancer(a, down, b, c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var got []string
	for range 8 {
		name, _ := greeting(t, p)
		got = append(got, name)
	}
	// The down target's turn goes to the next one, b.
	if want := "a b b c a b b c"; strings.Join(got, " ") != want {
		t.Errorf("connections went to %v, want %s", got, want)
	}
	if n := len(p.ConnTargets()); n != 8 {
		t.Errorf("%d open connections, want 8", n)
	}

	p.Exclude(b, true)
	got = got[:0]
	for range 4 {
		name, _ := greeting(t, p)
		got = append(got, name)
	}
	if want := "a c c c"; strings.Join(got, " ") != want {
		t.Errorf("with b excluded, connections went to %v, want %s", got, want)
	}
	p.Exclude(a, true)
	p.Exclude(c, true)
	if name, _ := greeting(t, p); name != "" {
		t.Errorf("every target excluded, yet a connection reached %s", name)
	}
	p.Exclude(b, false)
	if name, _ := greeting(t, p); name != "b" {
		t.Errorf("after b is back, a connection reached %q", name)
	}
}

func TestAbandonKeepsTheServerSideAndRecordsIt(t *testing.T) {
	// The server writes whatever the test tells it to on the connection
	// it accepted, and closes it on demand.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	p, err := chaosproxy.New(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := <-accepted
	defer srv.Close()
	srv.Write([]byte("before\n"))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || line != "before\n" {
		t.Fatalf("before abandoning: %q, %v", line, err)
	}

	orphans := p.Abandon()
	if len(orphans) != 1 || orphans[0].Target != ln.Addr().String() {
		t.Fatalf("Abandon returned %+v, want one orphan of the server", orphans)
	}
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("the client side is still open after Abandon")
	}
	if p.Conns() != 0 {
		t.Errorf("%d connections counted after Abandon, want 0", p.Conns())
	}
	// The server side is open: a write succeeds and is recorded.
	srv.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := srv.Write([]byte("after\n")); err != nil {
		t.Fatalf("server write after Abandon: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for string(orphans[0].Data()) != "after\n" {
		if time.Now().After(deadline) {
			t.Fatalf("orphan recorded %q, want %q", orphans[0].Data(), "after\n")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-orphans[0].Done():
		t.Fatal("orphan done while the server still holds the connection")
	default:
	}
	srv.Close()
	select {
	case <-orphans[0].Done():
	case <-time.After(5 * time.Second):
		t.Fatal("orphan not done after the server closed")
	}
}
