package wsclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsclient"
	"github.com/filehub/filehub/wsproto"
)

// Against the real server, through a proxy that cuts the connection again
// and again: several senders each send a numbered stream; every echo comes
// back exactly once, and each sender's stream in order.
func TestIntegrationEchoAcrossCuts(t *testing.T) {
	srv := mustStartRealServer(t)
	px := newProxy(t, srv.addr)
	reg := prometheus.NewRegistry()
	rec := newStateRecorder()
	opts := fastOptions(srv.key)
	opts.Metrics = promMetrics(t, reg)
	opts.OnStateChange = rec.hook
	c := mustDial(t, px.URL(), opts)

	const senders, perSender = 8, 250
	stop := make(chan struct{})
	var cutter sync.WaitGroup
	cutter.Add(1)
	go func() {
		defer cutter.Done()
		cutWhileConnected(stop, rec, px.Cut)
	}()
	type msg struct{ G, I int }
	errc := make(chan error, senders)
	for g := range senders {
		go func() {
			for i := range perSender {
				if err := c.Send(context.Background(), msg{g, i}); err != nil {
					errc <- fmt.Errorf("sender %d, message %d: %w", g, i, err)
					return
				}
			}
			errc <- nil
		}()
	}
	got := recvMessages(t, c, senders*perSender)
	close(stop)
	cutter.Wait()
	for range senders {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	next := make([]int, senders)
	for _, raw := range got {
		var m msg
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if m.I != next[m.G] {
			t.Fatalf("sender %d: got message %d, want %d (duplicate or out of order)", m.G, m.I, next[m.G])
		}
		next[m.G]++
	}
	if px.Cuts() < 3 {
		t.Errorf("only %d cuts: the test proves little", px.Cuts())
	}
	t.Logf("%d cuts", px.Cuts())
	if v := testutil.ToFloat64(metric(t, reg, "filehub_wsclient_sessions_lost_total")); v != 0 {
		t.Errorf("sessions_lost_total = %v", v)
	}
	select {
	case m := <-c.Messages():
		t.Fatalf("extra message %s", m)
	case <-time.After(20 * time.Millisecond): // let a stray duplicate show up
	}
}

func TestIntegrationBadKeyStopsRetrying(t *testing.T) {
	srv := mustStartRealServer(t)
	tests := []struct {
		name         string
		tokenInHello bool
		wantStatus   int
		wantClose    int
	}{
		{"header", false, 401, 0},
		{"hello token", true, 0, wsproto.CloseAuthFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			opts := fastOptions("fhk_not_a_key")
			opts.TokenInHello = tt.tokenInHello
			_, err := wsclient.Dial(ctx, srv.URL(), opts)
			var ce *wsclient.ConnError
			if !errors.As(err, &ce) || !ce.Permanent || ctx.Err() != nil {
				t.Fatalf("Dial = %v, want a permanent *ConnError before the deadline", err)
			}
			if ce.Status != tt.wantStatus || ce.CloseCode != tt.wantClose {
				t.Errorf("status %d close %d, want %d %d", ce.Status, ce.CloseCode, tt.wantStatus, tt.wantClose)
			}
			if filehub.ErrorCode(err) != filehub.EUNAUTHORIZED {
				t.Errorf("code %q, want unauthorized (%v)", filehub.ErrorCode(err), err)
			}
		})
	}
}

func TestIntegrationFileCalls(t *testing.T) {
	srv := mustStartRealServer(t)
	f, err := srv.Upload("a.txt")
	if err != nil {
		t.Fatal(err)
	}
	c := mustDial(t, srv.URL(), fastOptions(srv.key))
	ctx := context.Background()
	got, err := c.StatFile(ctx, f.ID)
	if err != nil || got.ID != f.ID || got.SHA256 != f.SHA256 {
		t.Fatalf("StatFile = %+v, %v", got, err)
	}
	if got, err = c.DeleteFile(ctx, f.ID); err != nil || !got.Deleted() {
		t.Fatalf("DeleteFile = %+v, %v", got, err)
	}
	if got, err = c.RestoreFile(ctx, f.ID); err != nil || got.Deleted() {
		t.Fatalf("RestoreFile = %+v, %v", got, err)
	}
	page, err := c.ListFiles(ctx, 10, "")
	if err != nil || len(page.Files) != 1 || page.Files[0].ID != f.ID {
		t.Fatalf("ListFiles = %+v, %v", page, err)
	}
	if _, err := c.StatFile(ctx, "f_missing"); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("StatFile(missing) = %v, want not found", err)
	}
	if err := c.Call(ctx, "no.such.method", nil, nil); !errors.Is(err, wsclient.ErrUnknownMethod) {
		t.Errorf("unknown method = %v", err)
	}
}

// Events flow while the server is restarted in place several times (each
// restart loses the session): the subscriber sees every event once, in
// order — exactly the log.
func TestIntegrationEventsAcrossServerRestarts(t *testing.T) {
	srv, err := startRealServer(t.TempDir(), "127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	reg := prometheus.NewRegistry()
	opts := fastOptions(srv.key)
	opts.Metrics = promMetrics(t, reg)
	c := mustDial(t, srv.URL(), opts)

	upload := func(n int) {
		t.Helper()
		for range n {
			if _, err := srv.Upload(fmt.Sprintf("f%d", time.Now().UnixNano())); err != nil {
				t.Fatal(err)
			}
		}
	}
	upload(5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan filehub.Event, 1000)
	subErr := make(chan error, 1)
	go func() {
		subErr <- c.Subscribe(ctx, 0, func(ev filehub.Event) error {
			events <- ev
			return nil
		})
	}()
	var got []int64
	waitFor := func(total int) {
		t.Helper()
		timer := time.NewTimer(guard)
		defer timer.Stop()
		for len(got) < total {
			select {
			case ev := <-events:
				got = append(got, ev.ID)
			case err := <-subErr:
				t.Fatalf("Subscribe ended: %v", err)
			case <-timer.C:
				t.Fatalf("events so far: %v", got)
			}
		}
	}
	waitFor(5)
	const restarts = 3
	for r := range restarts {
		upload(3) // some before the restart, perhaps not yet delivered
		srv = srv.restart(t)
		upload(4) // some while the client reconnects
		waitFor(5 + (r+1)*7)
	}
	cancel()
	if err := <-subErr; !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe = %v", err)
	}
	log, err := srv.db.ListEvents(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int64, len(log))
	for i, ev := range log {
		want[i] = ev.ID
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, log has %v", got, want)
	}
	if v := testutil.ToFloat64(metric(t, reg, "filehub_wsclient_sessions_lost_total")); v != restarts {
		t.Errorf("sessions_lost_total = %v, want %d", v, restarts)
	}
}

func TestIntegrationSubscribeGap(t *testing.T) {
	srv := mustStartRealServer(t)
	for i := range 5 {
		if _, err := srv.Upload(fmt.Sprintf("f%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.db.TrimEvents(context.Background(), time.Unix(0, 0), 2); err != nil { // keeps 4 and 5
		t.Fatal(err)
	}
	c := mustDial(t, srv.URL(), fastOptions(srv.key))
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	called := false
	err := c.Subscribe(ctx, 1, func(filehub.Event) error { called = true; return nil })
	if !errors.Is(err, wsclient.ErrGap) {
		t.Fatalf("Subscribe after a trimmed range = %v, want ErrGap", err)
	}
	if called {
		t.Error("the handler saw events despite the gap")
	}
	// From the oldest retained event on there is no gap.
	var got []int64
	err = c.Subscribe(ctx, 3, func(ev filehub.Event) error {
		got = append(got, ev.ID)
		if len(got) == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("Subscribe(3) = %v, events %v", err, got)
	}
}

var errStop = errors.New("stop")

// Delete and restore alternate while the connection is cut: a request
// replayed after a cut must not run twice (a second delete of the same file
// would fail with not_found).
func TestIntegrationCallsRunAtMostOnceAcrossCuts(t *testing.T) {
	srv := mustStartRealServer(t)
	f, err := srv.Upload("x")
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, srv.addr)
	rec := newStateRecorder()
	opts := fastOptions(srv.key)
	opts.OnStateChange = rec.hook
	c := mustDial(t, px.URL(), opts)
	stop := make(chan struct{})
	var cutter sync.WaitGroup
	cutter.Add(1)
	go func() {
		defer cutter.Done()
		cutWhileConnected(stop, rec, px.Cut)
	}()
	defer func() {
		close(stop)
		cutter.Wait()
	}()
	ctx := context.Background()
	for i := range 200 {
		if _, err := c.DeleteFile(ctx, f.ID); err != nil {
			t.Fatalf("round %d: DeleteFile: %v", i, err)
		}
		if _, err := c.RestoreFile(ctx, f.ID); err != nil {
			t.Fatalf("round %d: RestoreFile: %v", i, err)
		}
	}
	if px.Cuts() < 3 {
		t.Errorf("only %d cuts", px.Cuts())
	}
}

// With durable sessions the server can be restarted (gracefully, 4005)
// while a client sends: the client resumes the same session every time,
// no Send fails, and every message is echoed once, in order.
func TestIntegrationDurableSessionSurvivesRestarts(t *testing.T) {
	srv, err := startRealServerFull(t.TempDir(), "127.0.0.1:0", "", nil, true)
	if errors.Is(err, errNoDurable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	reg := prometheus.NewRegistry()
	opts := fastOptions(srv.key)
	opts.Metrics = promMetrics(t, reg)
	c := mustDial(t, srv.URL(), opts)

	const n = 300
	sendErr := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			if err := c.Send(context.Background(), i); err != nil {
				sendErr <- fmt.Errorf("Send %d: %w", i, err)
				return
			}
		}
		sendErr <- nil
	}()
	var got []string
	for range 3 {
		got = append(got, rawStrings(recvMessages(t, c, 50))...)
		srv = srv.restart(t)
	}
	got = append(got, rawStrings(recvMessages(t, c, n-len(got)))...)
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	for i, m := range got {
		if m != strconv.Itoa(i+1) {
			t.Fatalf("echo %d is %s: lost, duplicated or reordered (%v)", i+1, m, got)
		}
	}
	if v := testutil.ToFloat64(metric(t, reg, "filehub_wsclient_sessions_lost_total")); v != 0 {
		t.Errorf("sessions_lost_total = %v, want 0", v)
	}
}

func rawStrings(ms []json.RawMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m)
	}
	return out
}
