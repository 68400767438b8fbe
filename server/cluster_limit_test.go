package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/sqlite"
)

// gaugeValue returns the value of the unlabelled gauge name in g, or -1 if
// g has none.
func gaugeValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && mf.GetType() == dto.MetricType_GAUGE && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestRateLimitAcrossInstances is issue 16's rate-limit test: three
// daemons on one PostgreSQL schema behind a round-robin proxy, and one key
// sending twice its limit for 10 s. The cluster admits what one daemon
// would — the limit times the time plus the burst — within 10%; without
// the shares each daemon would admit its whole limit, three times as much.
func TestRateLimitAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s of load on three daemons: not in -short")
	}
	db := postgresSchemaURL(t)
	const (
		limit    = 20 // requests/s for the key, cluster-wide
		burst    = 40
		load     = 2 * limit
		duration = 10 * time.Second
	)
	var backends []*url.URL
	var gatherers []prometheus.Gatherer
	for _, name := range []string{"a", "b", "c"} {
		cfg := testConfig(t, t.TempDir())
		cfg.DB = db
		cfg.CleanupInterval = -1
		cfg.InstanceID = name
		cfg.RateLimit = limit
		cfg.RateBurst = burst
		// Short enough for a quick start, long enough that a heartbeat
		// delayed by a loaded machine (-race, 2 cores) does not make
		// an instance look gone (it counts for 3 intervals).
		cfg.HeartbeatInterval = 500 * time.Millisecond
		srv := MustNew(t, cfg)
		ctx, stop := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() { runErr <- srv.Run(ctx) }()
		t.Cleanup(func() {
			stop()
			if err := <-runErr; err != nil {
				t.Errorf("%s: Run: %v", name, err)
			}
		})
		backends = append(backends, &url.URL{Scheme: "http", Host: srv.Addr()})
		gatherers = append(gatherers, cfg.Gatherer)
	}

	// Every instance must count the others before the load starts: a
	// share taken later would let the first seconds through at 3×.
	deadline := time.Now().Add(30 * time.Second)
	for i, g := range gatherers {
		for gaugeValue(t, g, "filehub_cluster_instances") != 3 {
			if time.Now().After(deadline) {
				t.Fatalf("instance %d counts %g instances, want 3", i, gaugeValue(t, g, "filehub_cluster_instances"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	var next atomic.Uint64
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(backends[(next.Add(1)-1)%uint64(len(backends))])
		},
	})
	defer proxy.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	var accepted, limited, other atomic.Int64
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / load)
	start := time.Now()
	var last time.Time
	for sent := 0; sent < int(load*duration/time.Second); sent++ {
		if sent > 0 {
			<-tick.C
		}
		last = time.Now()
		wg.Go(func() {
			req, err := http.NewRequest("GET", proxy.URL+"/v1/files?limit=1", nil)
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+testKey)
			resp, err := hc.Do(req)
			if err != nil {
				other.Add(1)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				accepted.Add(1)
			case http.StatusTooManyRequests:
				limited.Add(1)
			default:
				other.Add(1)
			}
		})
	}
	tick.Stop()
	wg.Wait()

	// The limit is against the time the load actually took, which a
	// loaded machine may stretch: what is asserted is the count.
	elapsed := last.Sub(start)
	want := limit*elapsed.Seconds() + burst
	got := float64(accepted.Load())
	t.Logf("%d accepted, %d limited, %d other in %v; the limit allows %.0f", accepted.Load(), limited.Load(), other.Load(), elapsed, want)
	if other.Load() > 0 {
		t.Errorf("%d requests failed or got neither 200 nor 429", other.Load())
	}
	if got < 0.9*want || got > 1.1*want {
		t.Errorf("the cluster accepted %.0f requests, want %.0f ± 10%% (limit %d/s × %v + burst %d)", got, want, limit, elapsed, burst)
	}
	// The load was twice the limit: at least a third of it must have
	// been refused, or the test did not test the limit.
	if limited.Load() < int64(load*duration/time.Second)/3 {
		t.Errorf("only %d requests were limited: the load did not exceed the limit", limited.Load())
	}
}

// TestHeartbeatWiring: a daemon on SQLite heartbeats (its row is in the
// store, the gauge says 1) and removes its row when it stops; with the
// heartbeats off there is neither row nor gauge.
func TestHeartbeatWiring(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		want     int
	}{{"on", 50 * time.Millisecond, 1}, {"off", -1, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(t, dir)
			cfg.CleanupInterval = -1
			cfg.HeartbeatInterval = tc.interval
			srv := MustNew(t, cfg)
			ctx, stop := context.WithCancel(context.Background())
			runErr := make(chan error, 1)
			go func() { runErr <- srv.Run(ctx) }()
			store := srv.Meta().(filehub.InstanceStore)
			live := func() int {
				n, err := store.LiveInstances(t.Context(), time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			if tc.want > 0 {
				deadline := time.Now().Add(10 * time.Second)
				for live() != 1 || gaugeValue(t, cfg.Gatherer, "filehub_cluster_instances") != 1 {
					if time.Now().After(deadline) {
						t.Fatalf("no heartbeat: %d rows, gauge %g", live(), gaugeValue(t, cfg.Gatherer, "filehub_cluster_instances"))
					}
					time.Sleep(10 * time.Millisecond)
				}
			} else {
				// The API answers, so Run has started everything it
				// would start.
				resp, err := http.Get("http://" + srv.Addr() + "/healthz")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if n, g := live(), gaugeValue(t, cfg.Gatherer, "filehub_cluster_instances"); n != 0 || g != -1 {
					t.Errorf("heartbeats off: %d rows, gauge %g; want none", n, g)
				}
			}
			stop()
			if err := <-runErr; err != nil {
				t.Fatalf("Run: %v", err)
			}
			db, err := sqlite.Open(context.Background(), filepath.Join(dir, "filehub.db"), sqlite.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if n, err := db.LiveInstances(t.Context(), time.Time{}); err != nil || n != 0 {
				t.Errorf("after a graceful stop: %d instances (%v), want the row removed", n, err)
			}
		})
	}
}
