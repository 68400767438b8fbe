package loadgen

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// Fan-out targets.
const (
	TargetFilehub    = "filehub"
	TargetCentrifugo = "centrifugo"
)

// FanoutConfig describes one fan-out run: Subscribers WebSocket connections
// subscribed to one event stream, Events events produced through the
// server's HTTP API at Rate, each counted when a subscriber has decoded it.
type FanoutConfig struct {
	// Target is TargetFilehub or TargetCentrifugo.
	Target string
	// URL is the WebSocket endpoint: ws://HOST/v1/ws (filehub) or
	// ws://HOST/connection/websocket (Centrifugo).
	URL string
	// APIURL is the HTTP base the events are produced through: filehub's
	// base URL (http://HOST; default: derived from URL), where each event is
	// a real DELETE /v1/files/{id} or POST /v1/files/{id}/restore; or
	// Centrifugo's server API (http://HOST/api), where each event is a
	// /publish of the same JSON event filehub would send.
	APIURL string
	// Key is filehub's bearer key (read and write scopes).
	Key string
	// APIKey is Centrifugo's HTTP API key.
	APIKey string
	// TokenSecret is Centrifugo's HMAC secret for connection tokens (HS256).
	TokenSecret string
	// Channel is the Centrifugo channel. Default "fanout:events".
	Channel string
	// Subscribers is the number of subscribed connections. Default 1000.
	Subscribers int
	// Events is the number of events produced. Default 2000.
	Events int
	// Rate is the events produced per second; 0 produces as fast as the
	// server takes them. Default 0.
	Rate float64
	// Producers is the number of HTTP requests in flight at once (filehub:
	// one file each, deleted and restored in turn). Default 16.
	Producers int
	// Timeout bounds the wait for the last delivery after the last event
	// was produced. Default 60s.
	Timeout time.Duration
	// ServerPID, if set, is the server process whose CPU time during the
	// run is reported.
	ServerPID int
}

// FanoutResult is the outcome of RunFanout.
type FanoutResult struct {
	Target      string  `json:"target"`
	Subscribers int     `json:"subscribers"`
	Events      int     `json:"events"`
	Rate        float64 `json:"offered_events_per_sec"`
	Deliveries  int64   `json:"deliveries"` // in order, each event once per subscriber
	Seconds     float64 `json:"seconds"`    // first event produced → last delivery
	// ProduceSeconds is how long producing the events took.
	ProduceSeconds  float64 `json:"produce_seconds"`
	DeliveriesPerS  float64 `json:"deliveries_per_sec"`
	P50Millis       float64 `json:"p50_ms"` // produce-to-receive
	P99Millis       float64 `json:"p99_ms"`
	MaxMillis       float64 `json:"max_ms"`
	ProduceFailures int     `json:"produce_failures"`
	// ProduceP50Millis and ProduceP99Millis are the producing HTTP
	// requests' latencies (filehub: they answer after the commit, whose
	// wait is part of a filehub event's produce-to-receive latency, since
	// the event's time is taken in its transaction).
	ProduceP50Millis float64 `json:"produce_p50_ms"`
	ProduceP99Millis float64 `json:"produce_p99_ms"`
	// Exactly-once, per subscriber: events after the last one in id
	// order (filehub: event id; Centrifugo: publication offset), a
	// duplicate or earlier one, and the events never received.
	Duplicates int   `json:"duplicates_or_out_of_order"`
	Missing    int64 `json:"missing"`
	// ServerCPUSeconds is the server's user+system CPU time from the first
	// event to the last delivery.
	ServerCPUSeconds    float64 `json:"server_cpu_seconds,omitempty"`
	ServerCPUMicrosPerK float64 `json:"server_cpu_us_per_1000_deliveries,omitempty"`
	FirstError          string  `json:"first_error,omitempty"`
}

func (cfg *FanoutConfig) setDefaults() error {
	switch cfg.Target {
	case TargetFilehub, TargetCentrifugo:
	default:
		return fmt.Errorf("fan-out target must be %q or %q, not %q", TargetFilehub, TargetCentrifugo, cfg.Target)
	}
	if cfg.URL == "" {
		return errors.New("fan-out: need the WebSocket URL")
	}
	if cfg.Subscribers <= 0 {
		cfg.Subscribers = 1000
	}
	if cfg.Events <= 0 {
		cfg.Events = 2000
	}
	if cfg.Producers <= 0 {
		cfg.Producers = 16
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	if cfg.Channel == "" {
		cfg.Channel = "fanout:events"
	}
	if cfg.Rate < 0 {
		return errors.New("fan-out: the rate must not be negative")
	}
	if cfg.APIURL == "" {
		if cfg.Target != TargetFilehub {
			return errors.New("fan-out: need Centrifugo's API URL")
		}
		u := strings.Replace(cfg.URL, "ws://", "http://", 1)
		u = strings.Replace(u, "wss://", "https://", 1)
		u, _ = strings.CutSuffix(u, "/v1/ws")
		cfg.APIURL = u
	}
	cfg.APIURL = strings.TrimSuffix(cfg.APIURL, "/")
	return nil
}

// fanSub is one subscribed connection.
type fanSub struct {
	ws  *websocket.Conn
	wmu sync.Mutex // writes: acks and pongs, from the reader and the ack ticker

	// Owned by the reader.
	last  int64 // last event id (filehub) or offset (Centrifugo)
	seq   int64 // last reliable frame seq (filehub)
	got   int
	dups  int
	lat   []time.Duration
	first int64 // first id expected - 1 (filehub), to count what is missing

	// filehub acks: the reader publishes seq, the ticker sends it.
	recvSeq atomic.Int64
	acked   atomic.Int64
}

type fanRun struct {
	cfg       FanoutConfig
	want      int64
	delivered atomic.Int64
	done      chan struct{}
	errOnce   sync.Once
	firstErr  atomic.Value
}

func (r *fanRun) fail(err error) {
	r.errOnce.Do(func() { r.firstErr.Store(err.Error()) })
}

// RunFanout runs one fan-out measurement against cfg.Target. Failures to
// connect or subscribe are errors; produce failures and missing or
// duplicate deliveries are counted in the result.
func RunFanout(ctx context.Context, cfg FanoutConfig) (*FanoutResult, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	transport := newTransport(cfg.Producers)
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	r := &fanRun{cfg: cfg, want: int64(cfg.Subscribers) * int64(cfg.Events), done: make(chan struct{})}

	var produce func(ctx context.Context, i int) error
	var after int64
	var err error
	switch cfg.Target {
	case TargetFilehub:
		produce, err = filehubProducer(ctx, client, &cfg)
		if err == nil {
			after, err = filehubLatest(ctx, &cfg)
		}
	case TargetCentrifugo:
		produce, err = centrifugoProducer(client, &cfg)
	}
	if err != nil {
		return nil, err
	}

	subs := make([]*fanSub, cfg.Subscribers)
	var readers sync.WaitGroup
	defer func() {
		for _, s := range subs {
			if s != nil {
				s.ws.Close()
			}
		}
		readers.Wait()
	}()
	if err := r.dialAll(ctx, subs, after); err != nil {
		return nil, err
	}
	for _, s := range subs {
		readers.Go(func() { r.read(s) })
	}
	stopAcks := make(chan struct{})
	var acker sync.WaitGroup
	if cfg.Target == TargetFilehub {
		acker.Go(func() { ackLoop(subs, stopAcks) })
	}
	defer func() {
		close(stopAcks)
		acker.Wait()
	}()

	cpu0, _ := cpuSeconds(cfg.ServerPID)
	start := time.Now()
	var tickets, failures atomic.Int64
	var producers sync.WaitGroup
	var prodMu sync.Mutex
	prodLat := make([]time.Duration, 0, cfg.Events)
	for range cfg.Producers {
		producers.Go(func() {
			for ctx.Err() == nil {
				t := tickets.Add(1) - 1
				if t >= int64(cfg.Events) {
					return
				}
				if cfg.Rate > 0 {
					wait(ctx, time.Until(start.Add(time.Duration(float64(t)/cfg.Rate*float64(time.Second)))))
				}
				t0 := time.Now()
				if err := produce(ctx, int(t)); err != nil {
					failures.Add(1)
					r.fail(fmt.Errorf("produce: %w", err))
					continue
				}
				d := time.Since(t0)
				prodMu.Lock()
				prodLat = append(prodLat, d)
				prodMu.Unlock()
			}
		})
	}
	producers.Wait()
	produced := time.Since(start)
	timer := time.NewTimer(cfg.Timeout)
	defer timer.Stop()
	var end time.Time
	select {
	case <-r.done:
		end = time.Now()
	case <-timer.C:
		end = time.Now()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cpu1, _ := cpuSeconds(cfg.ServerPID)
	// Stop the readers before reading what they recorded.
	for _, s := range subs {
		s.ws.Close()
	}
	readers.Wait()

	res := &FanoutResult{
		Target: cfg.Target, Subscribers: cfg.Subscribers, Events: cfg.Events, Rate: cfg.Rate,
		Deliveries: r.delivered.Load(), Seconds: end.Sub(start).Seconds(), ProduceSeconds: produced.Seconds(),
		ProduceFailures: int(failures.Load()),
	}
	res.DeliveriesPerS = float64(res.Deliveries) / res.Seconds
	var lat []time.Duration
	for _, s := range subs {
		lat = append(lat, s.lat...)
		res.Duplicates += s.dups
		res.Missing += int64(cfg.Events - s.got + s.dups)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		res.P50Millis, res.P99Millis, res.MaxMillis = ms(lat[n/2]), ms(lat[n*99/100]), ms(lat[n-1])
	}
	slices.Sort(prodLat)
	if n := len(prodLat); n > 0 {
		res.ProduceP50Millis, res.ProduceP99Millis = ms(prodLat[n/2]), ms(prodLat[n*99/100])
	}
	if cfg.ServerPID > 0 && cpu1 > cpu0 {
		res.ServerCPUSeconds = cpu1 - cpu0
		if res.Deliveries > 0 {
			res.ServerCPUMicrosPerK = res.ServerCPUSeconds * 1e6 / float64(res.Deliveries) * 1000
		}
	}
	if e, ok := r.firstErr.Load().(string); ok {
		res.FirstError = e
	}
	return res, nil
}

// dialAll connects and subscribes every subscriber, 64 at a time.
func (r *fanRun) dialAll(ctx context.Context, subs []*fanSub, after int64) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range min(64, len(subs)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(subs)) {
					return
				}
				var s *fanSub
				var err error
				if r.cfg.Target == TargetFilehub {
					s, err = dialFilehubSub(ctx, &r.cfg, after)
				} else {
					s, err = dialCentrifugoSub(ctx, &r.cfg)
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("subscriber %d: %w", i, err):
					default:
					}
					return
				}
				s.lat = make([]time.Duration, 0, r.cfg.Events)
				s.first = after
				s.last = after
				subs[i] = s
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	return ctx.Err()
}

// read decodes every message of s until the connection ends.
func (r *fanRun) read(s *fanSub) {
	for {
		_, msg, err := s.ws.ReadMessage()
		if err != nil {
			return
		}
		for line := range bytes.SplitSeq(msg, []byte{'\n'}) {
			if len(line) == 0 {
				continue
			}
			var err error
			if r.cfg.Target == TargetFilehub {
				err = r.filehubFrame(s, line)
			} else {
				err = r.centrifugoReply(s, line)
			}
			if err != nil {
				r.fail(err)
				s.ws.Close()
				return
			}
		}
	}
}

// deliver records one decoded event: id is its event id or offset.
func (r *fanRun) deliver(s *fanSub, id int64, t time.Time) {
	s.got++
	if id <= s.last {
		s.dups++
		return
	}
	s.last = id
	s.lat = append(s.lat, time.Since(t))
	if r.delivered.Add(1) == r.want {
		close(r.done)
	}
}

// --- filehub -----------------------------------------------------------

func filehubHeader(cfg *FanoutConfig) http.Header {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+cfg.Key)
	return h
}

func filehubDialer() *websocket.Dialer {
	return &websocket.Dialer{
		Subprotocols: []string{wsproto.Subprotocol}, HandshakeTimeout: 30 * time.Second,
		ReadBufferSize: 4096, WriteBufferSize: 512,
	}
}

// filehubHello dials and completes hello/welcome.
func filehubHello(ctx context.Context, cfg *FanoutConfig) (*websocket.Conn, error) {
	ws, resp, err := filehubDialer().DialContext(ctx, cfg.URL, filehubHeader(cfg))
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello"}`)); err != nil {
		ws.Close()
		return nil, err
	}
	_, msg, err := ws.ReadMessage()
	if err != nil || !bytes.Contains(msg, []byte(`"type":"welcome"`)) {
		ws.Close()
		return nil, fmt.Errorf("no welcome: %v %.200s", err, msg)
	}
	return ws, nil
}

type filehubFrame struct {
	Type   string          `json:"type"`
	Seq    int64           `json:"seq"`
	ID     string          `json:"id"`
	Event  json.RawMessage `json:"event"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// filehubSubscribe sends events.subscribe after `after` and reads up to its
// res, returning the result's latest event id.
func filehubSubscribe(ws *websocket.Conn, after int64) (int64, error) {
	req := fmt.Sprintf(`{"type":"req","seq":1,"id":"sub","method":"events.subscribe","params":{"after":%d}}`, after)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(req)); err != nil {
		return 0, err
	}
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return 0, err
		}
		for line := range bytes.SplitSeq(msg, []byte{'\n'}) {
			var f filehubFrame
			if err := json.Unmarshal(line, &f); err != nil {
				return 0, err
			}
			if f.Type == "res" && f.ID == "sub" {
				if f.Error != nil {
					return 0, fmt.Errorf("events.subscribe: %s", f.Error)
				}
				var res struct{ Latest int64 }
				err := json.Unmarshal(f.Result, &res)
				return res.Latest, err
			}
			if f.Type == "event" && after > 0 {
				return 0, fmt.Errorf("event before the subscription's result: %.200s", line)
			}
		}
	}
}

// filehubLatest asks a probe session for the latest event id, after
// which the subscribers subscribe.
func filehubLatest(ctx context.Context, cfg *FanoutConfig) (int64, error) {
	ws, err := filehubHello(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer ws.Close()
	latest, err := filehubSubscribe(ws, 0)
	if err != nil {
		return 0, err
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return latest, nil
}

func dialFilehubSub(ctx context.Context, cfg *FanoutConfig, after int64) (*fanSub, error) {
	ws, err := filehubHello(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := filehubSubscribe(ws, after); err != nil {
		ws.Close()
		return nil, err
	}
	_ = ws.SetReadDeadline(time.Time{})
	s := &fanSub{ws: ws, seq: 1}
	s.recvSeq.Store(1)
	return s, nil
}

func (r *fanRun) filehubFrame(s *fanSub, line []byte) error {
	var f filehubFrame
	if err := json.Unmarshal(line, &f); err != nil {
		return fmt.Errorf("filehub frame: %w", err)
	}
	switch f.Type {
	case "ack":
		return nil
	case "event":
	default:
		return fmt.Errorf("unexpected frame: %.200s", line)
	}
	if f.Seq != s.seq+1 {
		return fmt.Errorf("frame seq %d after %d", f.Seq, s.seq)
	}
	s.seq = f.Seq
	var ev filehub.Event
	if err := json.Unmarshal(f.Event, &ev); err != nil {
		return fmt.Errorf("event: %w", err)
	}
	r.deliver(s, ev.ID, ev.Time)
	s.recvSeq.Store(f.Seq)
	if f.Seq-s.acked.Load() >= 64 {
		s.sendAck()
	}
	return nil
}

// sendAck acknowledges every frame received so far, if not done yet.
func (s *fanSub) sendAck() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	n := s.recvSeq.Load()
	if n <= s.acked.Load() {
		return
	}
	s.acked.Store(n)
	_ = s.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_ = s.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ack","ack":`+strconv.FormatInt(n, 10)+`}`))
}

// ackLoop acknowledges what every subscriber received within 20 ms, as
// the protocol asks (§4; the reader acks at once after 64 frames).
func ackLoop(subs []*fanSub, stop chan struct{}) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		for _, s := range subs {
			if s.recvSeq.Load() > s.acked.Load() {
				s.sendAck()
			}
		}
	}
}

// filehubProducer uploads one file per producer and returns a function
// that deletes or restores one of them: one event each, written by the
// real store.
func filehubProducer(ctx context.Context, client *http.Client, cfg *FanoutConfig) (func(context.Context, int) error, error) {
	ids := make([]string, cfg.Producers)
	for i := range ids {
		body := fmt.Sprintf("fan-out %d %d", i, time.Now().UnixNano())
		req, err := http.NewRequestWithContext(ctx, http.MethodPost,
			cfg.APIURL+"/v1/files?name=fanout-"+strconv.Itoa(i)+".txt", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+cfg.Key)
		var f struct{ ID string }
		if err := doJSON(client, req, http.StatusCreated, &f); err != nil {
			return nil, fmt.Errorf("upload: %w", err)
		}
		ids[i] = f.ID
	}
	// Ticket t touches file t%P for the (t/P)th time: even deletes, odd
	// restores. Tickets are taken in order, so each file's changes are.
	var mu sync.Mutex
	var turns = make([]int, len(ids))
	var locks = make([]sync.Mutex, len(ids))
	return func(ctx context.Context, t int) error {
		i := t % len(ids)
		locks[i].Lock()
		defer locks[i].Unlock()
		mu.Lock()
		turn := turns[i]
		turns[i]++
		mu.Unlock()
		method, path := http.MethodDelete, "/v1/files/"+ids[i]
		if turn%2 == 1 {
			method, path = http.MethodPost, path+"/restore"
		}
		req, err := http.NewRequestWithContext(ctx, method, cfg.APIURL+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+cfg.Key)
		return doJSON(client, req, http.StatusOK, nil)
	}, nil
}

func doJSON(client *http.Client, req *http.Request, status int, v any) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != status {
		return fmt.Errorf("%s %s: HTTP %d: %.200s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	if v != nil {
		return json.Unmarshal(b, v)
	}
	return nil
}

// --- Centrifugo ----------------------------------------------------------

// hs256 signs claims as a JWT with HMAC-SHA256.
func hs256(secret string, claims map[string]any) (string, error) {
	enc := base64.RawURLEncoding
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	s := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(body)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(s))
	return s + "." + enc.EncodeToString(m.Sum(nil)), nil
}

type centrifugoReply struct {
	ID    uint32          `json:"id"`
	Error json.RawMessage `json:"error"`
	Push  *struct {
		Channel string `json:"channel"`
		Pub     *struct {
			Data   json.RawMessage `json:"data"`
			Offset int64           `json:"offset"`
		} `json:"pub"`
	} `json:"push"`
	Subscribe *struct {
		Offset int64 `json:"offset"`
	} `json:"subscribe"`
}

// centrifugoCall sends one command and reads until its reply.
func centrifugoCall(ws *websocket.Conn, id uint32, cmd string) (*centrifugoReply, error) {
	if err := ws.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
		return nil, err
	}
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		for line := range bytes.SplitSeq(msg, []byte{'\n'}) {
			var rep centrifugoReply
			if err := json.Unmarshal(line, &rep); err != nil {
				return nil, fmt.Errorf("centrifugo reply: %w", err)
			}
			if rep.ID == id {
				if rep.Error != nil {
					return nil, fmt.Errorf("centrifugo: %s", rep.Error)
				}
				return &rep, nil
			}
		}
	}
}

func dialCentrifugoSub(ctx context.Context, cfg *FanoutConfig) (*fanSub, error) {
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 512}
	ws, resp, err := d.DialContext(ctx, cfg.URL, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	token, err := hs256(cfg.TokenSecret, map[string]any{"sub": "load", "exp": time.Now().Add(24 * time.Hour).Unix()})
	if err != nil {
		ws.Close()
		return nil, err
	}
	if _, err := centrifugoCall(ws, 1, `{"id":1,"connect":{"token":"`+token+`","name":"filehub-load"}}`); err != nil {
		ws.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	rep, err := centrifugoCall(ws, 2, `{"id":2,"subscribe":{"channel":"`+cfg.Channel+`"}}`)
	if err != nil || rep.Subscribe == nil {
		ws.Close()
		return nil, fmt.Errorf("subscribe: %v", err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	return &fanSub{ws: ws, last: rep.Subscribe.Offset}, nil
}

func (r *fanRun) centrifugoReply(s *fanSub, line []byte) error {
	if bytes.Equal(line, []byte("{}")) {
		// A ping: answer with a pong.
		s.wmu.Lock()
		_ = s.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		err := s.ws.WriteMessage(websocket.TextMessage, []byte("{}"))
		s.wmu.Unlock()
		return err
	}
	var rep centrifugoReply
	if err := json.Unmarshal(line, &rep); err != nil {
		return fmt.Errorf("centrifugo reply: %w", err)
	}
	if rep.Push == nil || rep.Push.Pub == nil {
		return nil
	}
	var ev filehub.Event
	if err := json.Unmarshal(rep.Push.Pub.Data, &ev); err != nil {
		return fmt.Errorf("publication: %w", err)
	}
	r.deliver(s, rep.Push.Pub.Offset, ev.Time)
	return nil
}

// centrifugoProducer returns a function that publishes event t through
// Centrifugo's server API: the JSON of a filehub event as filehub's store
// would write it (file.deleted or file.restored, with the file record).
func centrifugoProducer(client *http.Client, cfg *FanoutConfig) (func(context.Context, int) error, error) {
	if cfg.APIKey == "" || cfg.TokenSecret == "" {
		return nil, errors.New("fan-out: Centrifugo needs the API key and the token secret")
	}
	created := time.Now().UTC()
	files := make([]filehub.File, cfg.Producers)
	for i := range files {
		files[i] = filehub.File{
			ID: filehub.NewID("f_"), Name: "fanout-" + strconv.Itoa(i) + ".txt", Size: 28,
			ContentType: "text/plain; charset=utf-8", SHA256: strings.Repeat("ab", 32),
			CreatedAt: created, OwnerKeyID: filehub.NewID("k_"),
		}
	}
	return func(ctx context.Context, t int) error {
		f := files[t%len(files)]
		now := time.Now().UTC()
		typ := filehub.EventFileRestored
		if (t/len(files))%2 == 0 {
			typ = filehub.EventFileDeleted
			purge := now.Add(7 * 24 * time.Hour)
			f.DeletedAt, f.PurgeAfter = &now, &purge
		}
		ev, err := json.Marshal(&filehub.Event{ID: int64(t + 1), Type: typ, Time: now, File: &f})
		if err != nil {
			return err
		}
		body := append([]byte(`{"channel":"`+cfg.Channel+`","data":`), ev...)
		body = append(body, '}')
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.APIURL+"/publish", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("X-API-Key", cfg.APIKey)
		req.Header.Set("Content-Type", "application/json")
		var rep struct{ Error json.RawMessage }
		if err := doJSON(client, req, http.StatusOK, &rep); err != nil {
			return err
		}
		if rep.Error != nil {
			return fmt.Errorf("publish: %s", rep.Error)
		}
		return nil
	}, nil
}

// cpuSeconds returns a process's user+system CPU time (Linux), 0 for pid 0.
func cpuSeconds(pid int) (float64, error) {
	if pid <= 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command (which may hold spaces) in parentheses.
	_, rest, ok := bytes.Cut(b, []byte(") "))
	if !ok {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticks = 100 // USER_HZ on Linux
	return float64(utime+stime) / ticks, nil
}
