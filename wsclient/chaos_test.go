package wsclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub/internal/chaosproxy"
	"github.com/filehub/filehub/wsclient"
	"github.com/filehub/filehub/wsserver"
)

// TestChaosEveryMessageExactlyOnce runs thousands of messages both ways
// (client msgs and their echoes) through a proxy that, at random, cuts every
// connection, stalls the path silently (a half-open connection both ends
// must detect by heartbeat), or delays it. Every message must arrive exactly
// once and, per sender, in order.
func TestChaosEveryMessageExactlyOnce(t *testing.T) {
	srv := mustStartTunedServer(t, func(c *wsserver.Config) {
		c.PingInterval = 100 * time.Millisecond
		c.PongTimeout = 150 * time.Millisecond
	})
	px, err := chaosproxy.New(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	opts := fastOptions(srv.key)
	opts.PongTimeout = 150 * time.Millisecond
	opts.HandshakeTimeout = 500 * time.Millisecond
	opts.WriteTimeout = 500 * time.Millisecond
	c := mustDial(t, "ws://"+px.Addr()+"/v1/ws", opts)

	// The senders keep going until the proxy has done each kind of fault
	// at least minFaults times, however fast the messages flow: a test
	// that ends before the faults begin would prove nothing.
	const senders, perSender, minFaults = 4, 600, 2
	enough := make(chan struct{}) // closed after minFaults faults of each kind
	stop := make(chan struct{})
	var faults sync.WaitGroup
	var cuts, stalls, delays atomic.Int64
	faults.Add(1)
	go func() {
		defer faults.Done()
		rng := rand.New(rand.NewPCG(7, 11))
		for signalled := false; ; {
			if !signalled && min(cuts.Load(), stalls.Load(), delays.Load()) >= minFaults {
				close(enough)
				signalled = true
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(40+rng.IntN(120)) * time.Millisecond):
			}
			switch rng.IntN(3) {
			case 0:
				px.CutAll()
				cuts.Add(1)
			case 1:
				// Long enough for both heartbeats to give up on the
				// connection (ping interval + pong timeout = 250ms).
				px.Stall(true)
				stalls.Add(1)
				select {
				case <-stop:
				case <-time.After(time.Duration(300+rng.IntN(200)) * time.Millisecond):
				}
				px.Stall(false)
			case 2:
				px.SetDelay(time.Duration(1+rng.IntN(5)) * time.Millisecond)
				delays.Add(1)
				select {
				case <-stop:
				case <-time.After(time.Duration(50+rng.IntN(100)) * time.Millisecond):
				}
				px.SetDelay(0)
			}
		}
	}()

	type msg struct{ G, I int }
	type result struct {
		sent int
		err  error
	}
	results := make(chan result, senders)
	for g := range senders {
		go func() {
			for i := 0; ; i++ {
				if i >= perSender {
					select {
					case <-enough:
						results <- result{sent: i}
						return
					default:
					}
				}
				if err := c.Send(context.Background(), msg{g, i}); err != nil {
					results <- result{err: fmt.Errorf("sender %d, message %d: %w", g, i, err)}
					return
				}
			}
		}()
	}
	var got []json.RawMessage
	sent, finished := 0, 0
	timer := time.NewTimer(guard)
	defer timer.Stop()
	for finished < senders || len(got) < sent {
		select {
		case r := <-results:
			if r.err != nil {
				t.Fatal(r.err)
			}
			sent += r.sent
			finished++
		case m, ok := <-c.Messages():
			if !ok {
				t.Fatalf("Messages closed after %d: %v", len(got), c.Err())
			}
			got = append(got, m)
		case <-timer.C:
			t.Fatalf("got %d messages; %d of %d senders done, having sent %d", len(got), finished, senders, sent)
		}
	}
	close(stop)
	faults.Wait()
	next := make([]int, senders)
	for _, raw := range got {
		var m msg
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if m.I != next[m.G] {
			t.Fatalf("sender %d: got echo %d, want %d (duplicate, loss or reordering)", m.G, m.I, next[m.G])
		}
		next[m.G]++
	}
	t.Logf("%d messages each way; faults: %d cuts, %d stalls, %d delay periods", sent, cuts.Load(), stalls.Load(), delays.Load())
	select {
	case m := <-c.Messages():
		t.Fatalf("extra message %s", m)
	case <-time.After(50 * time.Millisecond): // let a stray duplicate show up
	}
}

// TestReconnectStormIsSpreadByJitter connects 1,000 clients, restarts the
// server under them, and checks that (a) every client gets back to a
// working session and (b) their first reconnection attempts are spread over
// the backoff window by full jitter instead of arriving together. The
// spread is judged on when each client *starts* dialing, which its own
// timer decides, not on how fast the server answers.
func TestReconnectStormIsSpreadByJitter(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 clients")
	}
	const clients = 1000
	const window = 400 * time.Millisecond // Backoff.Initial: first retry in [0, window]
	srv := mustStartTunedServer(t, func(c *wsserver.Config) { c.MaxConnsPerKey, c.MaxSessionsPerKey = clients+10, clients+10 })

	var (
		mu         sync.Mutex
		restarted  bool
		firstDials = make([]time.Time, 0, clients)
		dialed     = make(map[int]bool)
		down       time.Time
	)
	cs := make([]*wsclient.Client, clients)
	connected := make(chan int, clients*4)
	for i := range clients {
		opts := wsclient.Options{
			Key:     srv.key,
			Backoff: wsclient.Backoff{Initial: window, Max: window, Multiplier: 2},
			Dialer: &websocket.Dialer{
				HandshakeTimeout: 10 * time.Second,
				NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					mu.Lock()
					if restarted && !dialed[i] {
						dialed[i] = true
						firstDials = append(firstDials, time.Now())
					}
					mu.Unlock()
					return (&net.Dialer{}).DialContext(ctx, network, addr)
				},
			},
			IgnoreMessages: true,
			OnStateChange: func(_, s wsclient.State) {
				if s == wsclient.StateConnected {
					connected <- i
				}
			},
		}
		cs[i] = mustDial(t, srv.URL(), opts)
	}
	for range clients {
		<-connected // the initial connections
	}

	mu.Lock()
	restarted = true
	down = time.Now()
	mu.Unlock()
	srv.restartTuned(t, func(c *wsserver.Config) { c.MaxConnsPerKey, c.MaxSessionsPerKey = clients+10, clients+10 }) // its cleanup stops it

	back := map[int]bool{}
	deadline := time.After(60 * time.Second)
	for len(back) < clients {
		select {
		case i := <-connected:
			back[i] = true
		case <-deadline:
			t.Fatalf("only %d of %d clients reconnected", len(back), clients)
		}
	}
	// Every client has a working session again: one call each.
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := c.ListFiles(ctx, 1, ""); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("call after the restart: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(firstDials) != clients {
		t.Fatalf("%d clients dialed after the restart, want %d", len(firstDials), clients)
	}
	offsets := make([]time.Duration, len(firstDials))
	for i, d := range firstDials {
		offsets[i] = d.Sub(down)
	}
	sort.Slice(offsets, func(a, b int) bool { return offsets[a] < offsets[b] })
	// Synchronized clients would dial within a few milliseconds of each
	// other. With full jitter over the window, the middle 80% spans about
	// 0.8 × window; ask for a third of that to stay robust on a busy
	// machine (late timers only spread dials further).
	p10, p90 := offsets[clients/10], offsets[clients*9/10]
	t.Logf("first reconnection dials after the restart: p10 %v, p50 %v, p90 %v", p10, offsets[clients/2], p90)
	if p90-p10 < window*8/10/3 {
		t.Errorf("reconnections are bunched: p10 %v, p90 %v (window %v)", p10, p90, window)
	}
	// And no 10%-of-window slice holds more than a quarter of the dials.
	buckets := map[int]int{}
	for _, o := range offsets {
		buckets[int(o/(window/10))]++
	}
	for b, n := range buckets {
		if n > clients/4 {
			t.Errorf("%d of %d dials in slice %d of the window", n, clients, b)
		}
	}
}

func mustStartTunedServer(tb testing.TB, tune func(*wsserver.Config)) *realServer {
	tb.Helper()
	s, err := startRealServerWith(tb.TempDir(), "127.0.0.1:0", "", tune)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Stop() })
	return s
}

// restartTuned stops s and starts a tuned server on the same directory and
// port. The caller's cleanup stops the new one.
func (s *realServer) restartTuned(tb testing.TB, tune func(*wsserver.Config)) *realServer {
	tb.Helper()
	if err := s.Stop(); err != nil {
		tb.Fatalf("stop server: %v", err)
	}
	s2, err := startRealServerWith(s.dir, s.addr, s.key, tune)
	if err != nil {
		tb.Fatalf("restart server: %v", err)
	}
	tb.Cleanup(func() { s2.Stop() })
	return s2
}
