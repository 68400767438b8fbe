package main_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsclient"
)

// TestEventLatencyAcrossProcesses measures how long an event committed by
// one real filehub process takes to reach a WebSocket subscriber of
// another process on the same PostgreSQL schema, over loopback, with a
// subscriber of the committing process itself as the baseline of the same
// run. It is a measurement, not a check: it runs only with
// FILEHUB_BENCH_EVENT_LATENCY=N (N uploads, one at a time) and
// FILEHUB_TEST_POSTGRES set, and logs p50/p90/p99/max; see
// docs/benchmarks.md. The event hubs keep their default 250ms poll.
//
// Latency is counted from the event's Time, which the committing process
// takes just before the insert, to the moment the subscriber's callback
// runs: it includes the commit, the NOTIFY, the wake-up of the hub, its
// read of the log and the WebSocket frame. Both processes share this
// machine's clock.
func TestEventLatencyAcrossProcesses(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FILEHUB_BENCH_EVENT_LATENCY"))
	if n <= 0 {
		t.Skip("set FILEHUB_BENCH_EVENT_LATENCY=N to measure the cross-process event latency")
	}
	db := mustPostgresSchema(t)
	// FILEHUB_BENCH_BIN runs another build (e.g. one from before LISTEN/
	// NOTIFY) for comparison.
	bin := os.Getenv("FILEHUB_BENCH_BIN")
	if bin == "" {
		bin = buildBinary(t)
	}
	a := StartProcess(t, bin, t.TempDir(), "--db", db, "--cleanup-interval", "0")
	b := StartProcess(t, bin, t.TempDir(), "--db", db, "--cleanup-interval", "0")
	ctx := t.Context()

	type arrival struct {
		id string
		at time.Time
		ev time.Time
	}
	subscribe := func(url string) (<-chan arrival, func()) {
		ws, err := wsclient.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/v1/ws", wsclient.Options{Key: testKey, IgnoreMessages: true})
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan arrival, n+16)
		sctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			_ = ws.Subscribe(sctx, 0, func(ev filehub.Event) error {
				if ev.Type == filehub.EventFileCreated && ev.File != nil {
					ch <- arrival{ev.File.ID, time.Now(), ev.Time}
				}
				return nil
			})
		})
		return ch, func() { cancel(); wg.Wait(); ws.Close() }
	}
	onB, stopB := subscribe(b.URL)
	defer stopB()
	onA, stopA := subscribe(a.URL)
	defer stopA()

	c := NewClient(t, a.URL, testKey)
	wait := func(ch <-chan arrival, id string) arrival {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case got := <-ch:
				if got.id == id {
					return got
				}
			case <-deadline:
				t.Fatalf("event of %s not delivered within 30s", id)
			}
		}
	}
	var cross, local, afterResp []time.Duration
	for i := range n + 10 {
		up, err := c.Upload(ctx, fmt.Sprintf("latency-%05d.txt", i), strings.NewReader(fmt.Sprintf("event latency %d", i)), -1)
		if err != nil {
			t.Fatal(err)
		}
		resp := time.Now()
		gb, ga := wait(onB, up.ID), wait(onA, up.ID)
		if i < 10 {
			continue // warm-up: connections, prepared statements
		}
		cross = append(cross, gb.at.Sub(gb.ev))
		local = append(local, ga.at.Sub(ga.ev))
		afterResp = append(afterResp, max(0, gb.at.Sub(resp)))
	}
	t.Logf("%d events, commit→delivery:", n)
	t.Logf("  other process (B):           %s", quantiles(cross))
	t.Logf("  committing process (A):      %s", quantiles(local))
	t.Logf("  B after A's upload response: %s", quantiles(afterResp))
}

func quantiles(d []time.Duration) string {
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	r := func(x time.Duration) string { return x.Round(10 * time.Microsecond).String() }
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s", r(q(0.5)), r(q(0.9)), r(q(0.99)), r(d[len(d)-1]))
}
