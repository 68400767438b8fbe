package wsbench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/loadgen"
	"github.com/filehub/filehub/wsclient"
)

const (
	subscribers = 1000
	producers   = 16 // goroutines writing events through the store
)

// BenchmarkFanout measures event deliveries per second to 1,000
// subscribers (one op = one event delivered to all of them):
//
//   - gorilla-broadcast, the baseline: a plain gorilla/websocket hub (one
//     writer goroutine and queue per connection, queued messages batched
//     into one WebSocket message) broadcasting events encoded in memory as
//     fast as the subscribers take them; the subscribers decode every
//     event as filehub's client does.
//   - filehub-live: 1,000 wsclient sessions subscribed to the event stream
//     while 16 goroutines write events through the real store
//     (files.Service delete/restore on SQLite, each change and its event
//     in one transaction) and call Notify. p99-µs is produce-to-receive:
//     from the event's timestamp, taken in the writing transaction, to the
//     subscriber's handler.
//   - filehub-catchup, the delivery side alone: the events are written
//     first (not timed), then the 1,000 sessions subscribe from before
//     them and receive them all.
//   - sqlite-produce: the producers alone, no subscriber: how fast the
//     store takes events (events/s), the ceiling of filehub-live.
//   - …-paced: the same at a fixed 100 events/s (100,000 deliveries/s),
//     below saturation: produced as fast as possible, events queue up and
//     the latency measures the backlog, not the path.
func BenchmarkFanout(b *testing.B) {
	var base float64
	b.Run(fmt.Sprintf("subscribers=%d/gorilla-broadcast", subscribers), func(b *testing.B) {
		h := newBroadcast(b)
		defer h.close()
		base = h.run(b, 0)
	})
	b.Run(fmt.Sprintf("subscribers=%d/gorilla-broadcast-paced", subscribers), func(b *testing.B) {
		h := newBroadcast(b)
		defer h.close()
		h.run(b, pacedRate)
	})

	srv := startFilehub(b, "")
	defer closeServer(b, srv)
	prod := newProducer(b, srv)
	b.Run("sqlite-produce", func(b *testing.B) {
		b.ResetTimer()
		prod.produce(b, b.N, 0)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})

	clients := dialClients(b, srv, subscribers, wsclient.Options{IgnoreMessages: true})
	defer closeClients(clients)
	f := &fleet{clients: clients, recs: newRecorders(len(clients))}
	b.Run(fmt.Sprintf("subscribers=%d/filehub-live", subscribers), func(b *testing.B) {
		after := prod.latest(b)
		f.subscribe(b, after)
		b.ResetTimer()
		f.expect(int64(b.N) * subscribers)
		prod.produce(b, b.N, 0)
		f.wait(b)
		b.StopTimer()
		f.unsubscribe()
		report(b, float64(b.N)*subscribers, "deliveries/s", p99(f.recs), base)
	})
	b.Run(fmt.Sprintf("subscribers=%d/filehub-live-paced", subscribers), func(b *testing.B) {
		after := prod.latest(b)
		f.subscribe(b, after)
		b.ResetTimer()
		f.expect(int64(b.N) * subscribers)
		prod.produce(b, b.N, pacedRate)
		f.wait(b)
		b.StopTimer()
		f.unsubscribe()
		report(b, float64(b.N)*subscribers, "deliveries/s", p99(f.recs), 0)
	})
	b.Run(fmt.Sprintf("subscribers=%d/filehub-catchup", subscribers), func(b *testing.B) {
		after := prod.latest(b)
		prod.produce(b, b.N, 0)
		b.ResetTimer()
		f.expect(int64(b.N) * subscribers)
		f.subscribe(b, after)
		f.wait(b)
		b.StopTimer()
		f.unsubscribe()
		p99(f.recs) // produce-to-receive means nothing here
		report(b, float64(b.N)*subscribers, "deliveries/s", 0, base)
	})
}

// producer writes events through the file service: each of its files is
// deleted and restored in turn, one event per change.
type producer struct {
	srv     *loadgen.WSServer
	files   []string
	deleted []bool
}

func newProducer(b *testing.B, srv *loadgen.WSServer) *producer {
	p := &producer{srv: srv, deleted: make([]bool, producers)}
	for i := range producers {
		up, err := srv.Files.Upload(context.Background(), strings.NewReader(fmt.Sprintf("fan-out %d", i)), fmt.Sprintf("fanout-%d.txt", i), "k_bench")
		if err != nil {
			b.Fatal(err)
		}
		p.files = append(p.files, up.ID)
	}
	return p
}

func (p *producer) latest(b *testing.B) int64 {
	_, latest, err := p.srv.DB.EventBounds(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return latest
}

// produce writes n events, rate per second (0: as fast as the store takes
// them), waking the hub after each.
func (p *producer) produce(b *testing.B, n int, rate float64) {
	var tickets atomic.Int64
	var wg sync.WaitGroup
	ctx := context.Background()
	start := time.Now()
	for i, id := range p.files {
		wg.Go(func() {
			for {
				t := tickets.Add(1) - 1
				if t >= int64(n) {
					return
				}
				pace(start, t, rate)
				var err error
				if p.deleted[i] {
					_, err = p.srv.Files.Restore(ctx, id)
				} else {
					_, err = p.srv.Files.Delete(ctx, id)
				}
				if err != nil {
					b.Error(err)
					return
				}
				p.deleted[i] = !p.deleted[i]
				p.srv.WS.Notify()
			}
		})
	}
	wg.Wait()
}

// fleet is the subscribing clients.
type fleet struct {
	clients []*wsclient.Client
	recs    []*recorder

	got    atomic.Int64
	want   int64
	done   chan struct{}
	cancel context.CancelFunc
	subs   sync.WaitGroup
}

func (f *fleet) expect(n int64) {
	f.got.Store(0)
	f.want = n
	f.done = make(chan struct{})
}

// subscribe starts a Subscribe after the event id after on every client.
func (f *fleet) subscribe(b *testing.B, after int64) {
	var ctx context.Context
	ctx, f.cancel = context.WithCancel(context.Background())
	for i, c := range f.clients {
		r := f.recs[i]
		f.subs.Go(func() {
			err := c.Subscribe(ctx, after, func(ev filehub.Event) error {
				r.add(time.Since(ev.Time))
				if f.got.Add(1) == f.want {
					close(f.done)
				}
				return nil
			})
			if !errors.Is(err, context.Canceled) {
				b.Error(err)
			}
		})
	}
}

func (f *fleet) unsubscribe() {
	f.cancel()
	f.subs.Wait()
}

// wait waits for every expected delivery. The bound only keeps a broken
// run from hanging.
func (f *fleet) wait(b *testing.B) {
	select {
	case <-f.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d deliveries", f.got.Load(), f.want)
	}
}

// broadcast is the baseline: a plain gorilla/websocket hub.
type broadcast struct {
	srv   *httptest.Server
	mu    sync.Mutex
	peers []chan []byte // each server connection's queue
	conns []*websocket.Conn
	recs  []*recorder
	got   atomic.Int64
	want  atomic.Int64
	done  chan struct{}
	wg    sync.WaitGroup
}

func newBroadcast(b *testing.B) *broadcast {
	h := &broadcast{recs: newRecorders(subscribers)}
	up := websocket.Upgrader{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		q := make(chan []byte, 256)
		h.mu.Lock()
		h.peers = append(h.peers, q)
		h.mu.Unlock()
		go writePump(ws, q)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}))
	url := "ws" + strings.TrimPrefix(h.srv.URL, "http")
	for i := range subscribers {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			h.close()
			b.Fatal(err)
		}
		h.conns = append(h.conns, ws)
		r := h.recs[i]
		h.wg.Go(func() { h.read(ws, r) })
	}
	for {
		h.mu.Lock()
		n := len(h.peers)
		h.mu.Unlock()
		if n == subscribers {
			return h
		}
		time.Sleep(time.Millisecond)
	}
}

// writePump writes queued messages, batching what is queued into one
// WebSocket message, until q is closed.
func writePump(ws *websocket.Conn, q chan []byte) {
	for m := range q {
		w, err := ws.NextWriter(websocket.TextMessage)
		if err != nil {
			return
		}
		w.Write(m)
		for n := len(q); n > 0; n-- {
			w.Write([]byte{'\n'})
			w.Write(<-q)
		}
		if err := w.Close(); err != nil {
			return
		}
	}
}

// read decodes every event like filehub's client does and records its
// latency.
func (h *broadcast) read(ws *websocket.Conn, r *recorder) {
	for {
		_, m, err := ws.ReadMessage()
		if err != nil {
			return
		}
		for line := range bytes.SplitSeq(m, []byte{'\n'}) {
			var ev filehub.Event
			if err := json.Unmarshal(line, &ev); err != nil {
				panic(err)
			}
			r.add(time.Since(ev.Time))
			if h.got.Add(1) == h.want.Load() {
				close(h.done)
			}
		}
	}
}

// pacedRate is the event rate of the paced runs.
const pacedRate = 100

// pace waits until event number i is due at rate events/s after start.
func pace(start time.Time, i int64, rate float64) {
	if rate > 0 {
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
	}
}

func (h *broadcast) run(b *testing.B, rate float64) float64 {
	h.got.Store(0)
	h.want.Store(int64(b.N) * subscribers)
	h.done = make(chan struct{})
	now := time.Now().UTC()
	file := &filehub.File{
		ID: filehub.NewID("f_"), Name: "fanout-0.txt", Size: 9, ContentType: "text/plain; charset=utf-8",
		SHA256: strings.Repeat("ab", 32), CreatedAt: now, DeletedAt: &now, PurgeAfter: &now, OwnerKeyID: filehub.NewID("k_"),
	}
	h.mu.Lock()
	peers := h.peers
	h.mu.Unlock()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		pace(start, int64(i), rate)
		m, err := json.Marshal(&filehub.Event{ID: int64(i + 1), Type: filehub.EventFileDeleted, Time: time.Now(), File: file})
		if err != nil {
			b.Fatal(err)
		}
		for _, q := range peers {
			q <- m
		}
	}
	select {
	case <-h.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d deliveries", h.got.Load(), h.want.Load())
	}
	b.StopTimer()
	return report(b, float64(b.N)*subscribers, "deliveries/s", p99(h.recs), 0)
}

func (h *broadcast) close() {
	for _, ws := range h.conns {
		ws.Close()
	}
	h.wg.Wait()
	h.srv.CloseClientConnections()
	h.srv.Close()
	h.mu.Lock()
	for _, q := range h.peers {
		close(q)
	}
	h.peers = nil
	h.mu.Unlock()
}
