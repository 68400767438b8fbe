package wsbench_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/filehub/filehub/internal/loadgen"
	"github.com/filehub/filehub/wsclient"
)

// startFilehub starts the daemon on real stores in a temp dir of b, with
// WebSocket sessions where sessions says (server.WSSessionsDurable or
// server.WSSessionsMemory; "" is the daemon's default, durable). The caller
// closes it.
func startFilehub(b *testing.B, sessions string) *loadgen.WSServer {
	b.Helper()
	srv, err := loadgen.StartWSServer(context.Background(), loadgen.WSServerConfig{Dir: b.TempDir(), MaxConnsPerKey: 5000, Sessions: sessions})
	if err != nil {
		b.Fatal(err)
	}
	return srv
}

// dialClients opens n wsclient sessions, a few at a time.
func dialClients(b *testing.B, srv *loadgen.WSServer, n int, opts wsclient.Options) []*wsclient.Client {
	b.Helper()
	opts.Key = srv.Key
	clients := make([]*wsclient.Client, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range clients {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			clients[i], errs[i] = wsclient.Dial(ctx, srv.URL, opts)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			closeClients(clients)
			b.Fatal(err)
		}
	}
	return clients
}

// closeClients closes clients in parallel: each Close waits for the
// server's answer to its close frame.
func closeClients(clients []*wsclient.Client) {
	var wg sync.WaitGroup
	for _, c := range clients {
		if c != nil {
			wg.Go(func() { c.Close() })
		}
	}
	wg.Wait()
}

func closeServer(b *testing.B, srv *loadgen.WSServer) {
	if err := srv.Close(); err != nil {
		b.Errorf("closing the server: %v", err)
	}
}

// recorder collects latencies from one goroutine at a time; merge them with
// p99.
type recorder struct {
	mu  sync.Mutex
	lat []time.Duration
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.lat = append(r.lat, d)
	r.mu.Unlock()
}

func (r *recorder) take() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.lat
	r.lat = nil
	return l
}

// p99 returns the 99th percentile of the latencies of every recorder,
// emptying them.
func p99(rs []*recorder) time.Duration {
	var all []time.Duration
	for _, r := range rs {
		all = append(all, r.take()...)
	}
	if len(all) == 0 {
		return 0
	}
	slices.Sort(all)
	return all[len(all)*99/100]
}

func newRecorders(n int) []*recorder {
	rs := make([]*recorder, n)
	for i := range rs {
		rs[i] = &recorder{}
	}
	return rs
}

// report adds the rate, the p99 latency and, if the baseline was measured
// in this run, the ratio to it.
func report(b *testing.B, count float64, unit string, lat time.Duration, baseline float64) float64 {
	rate := count / b.Elapsed().Seconds()
	b.ReportMetric(rate, unit)
	if lat > 0 {
		b.ReportMetric(float64(lat.Microseconds()), "p99-µs")
	}
	if baseline > 0 {
		b.ReportMetric(rate/baseline, "x-baseline")
	}
	return rate
}
