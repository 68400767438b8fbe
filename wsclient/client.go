package wsclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/wsproto"
)

// State is the connection state of a Client.
type State int32

// The states. A client starts Connecting, is Connected while it holds a
// session on a live connection, Reconnecting after losing the connection,
// and ends Closed (after Close or a permanent failure), never to leave it.
const (
	StateConnecting State = iota
	StateConnected
	StateReconnecting
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Defaults of Options.
const (
	DefaultOutboxMaxFrames  = 1024
	DefaultOutboxMaxBytes   = 8 << 20
	DefaultMessageBuffer    = 256
	DefaultPongTimeout      = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	defaultHeartbeat        = 25 * time.Second
	closeWait               = time.Second
)

// Options configure a Client. The zero value is usable: every field says its
// default.
type Options struct {
	// Key is the API key. It is sent as "Authorization: Bearer <key>" on the
	// upgrade request, or in the hello frame if TokenInHello is set.
	Key string
	// TokenInHello sends Key in the hello frame instead of a header, as
	// browsers must.
	TokenInHello bool
	// Header holds extra headers for the upgrade request.
	Header http.Header
	// Dialer dials the connections. Default: a copy of
	// websocket.DefaultDialer with a 64 KiB write buffer taken from a pool
	// only while a message is written. Its Subprotocols are always
	// replaced by filehub.v1.
	Dialer *websocket.Dialer
	// TLSConfig is used for wss:// servers (for example with RootCAs for
	// a private CA), replacing the Dialer's. Default: the Dialer's, or the
	// system's roots.
	TLSConfig *tls.Config

	// Backoff is the reconnection policy. Default: 250ms initial, ×2 per
	// attempt, at most 30s, full jitter.
	Backoff Backoff

	// OutboxMaxFrames and OutboxMaxBytes bound the frames (msg and req)
	// kept until the server acknowledges them, including those buffered
	// while disconnected. Defaults 1024 frames and 8 MiB.
	OutboxMaxFrames int
	OutboxMaxBytes  int64
	// FailWhenFull makes Send and Call fail at once with ErrOutboxFull when
	// the outbox is full. By default they wait for room until their context
	// ends.
	FailWhenFull bool

	// MessageBuffer is the capacity of the Messages channel. Default 256.
	MessageBuffer int
	// IgnoreMessages drops (and acknowledges) the server's msg frames, for
	// applications that never read Messages. Messages then returns nil.
	IgnoreMessages bool

	// PongTimeout is added to the server's heartbeat interval to decide that
	// a connection on which nothing arrived is dead (spec §6). Default 10s.
	PongTimeout time.Duration
	// WriteTimeout bounds every write to the network. Default 10s.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds one connection attempt: the upgrade and the
	// hello/welcome exchange. Default 10s.
	HandshakeTimeout time.Duration

	// DialInBackground makes Dial return at once, without waiting for the
	// first connection; sends are buffered until it exists. A permanent
	// failure is then reported by Err, Done and the pending operations.
	DialInBackground bool

	// OnStateChange, if set, is called on every state change, in order, from
	// the client's connection goroutine. It must return quickly and must not
	// call Close (Close waits for that goroutine).
	OnStateChange func(old, new State)
	// Logger receives connection events. Default: discard.
	Logger *slog.Logger
	// Metrics receives the client's measurements; wsclientprom.New
	// returns Prometheus collectors for it. Default: none.
	Metrics *Metrics
}

// writeBufferSize is the default Dialer's write buffer, lent by
// writeBufferPool to a connection only while it writes a message.
const writeBufferSize = 64 << 10

var writeBufferPool sync.Pool

// Client is a reliable session with a filehub server (docs/protocol.md).
// It reconnects and resumes by itself; its methods are safe for concurrent
// use.
type Client struct {
	url    string
	opts   Options
	log    *slog.Logger
	m      *metrics
	dialer websocket.Dialer
	header http.Header
	jitter *jitter

	ctx    context.Context // ends on Close or a permanent failure
	cancel context.CancelFunc
	done   chan struct{} // closed when every goroutine has stopped
	first  chan error    // the outcome of the first connection, then closed

	wake      chan struct{} // the writer has something to send
	inboxWake chan struct{} // the deliverer has something to deliver
	messages  chan json.RawMessage
	nextID    atomic.Uint64

	mu          sync.Mutex
	state       State
	stateSince  time.Time
	err         error // why the client stopped; nil while it runs
	lastErr     error // the last transient connection failure, for Dial's error
	sessionID   string
	resumeToken string
	epoch       int // counts sessions; tags received frames
	heartbeat   time.Duration
	maxMessage  int64

	sendSeq     int64 // last seq given to an outgoing reliable frame
	ackedSeq    int64 // highest ack from the server (this session)
	outbox      []*outFrame
	outboxBytes int64
	room        chan struct{} // closed when outbox room frees up
	calls       map[string]*call

	recvSeq   int64 // last server seq received in order
	delivered int64 // last server seq handed to the application (this session)
	ackSent   int64
	ackNeeded bool // a duplicate arrived: repeat the ack
	inbox     []inItem
	sub       *subscription
}

// outFrame is a reliable frame in the outbox.
type outFrame struct {
	f         *wsproto.Frame
	b         []byte // encoded
	sent      bool   // written to a connection at least once
	firstSent time.Time
	done      chan error // msg: the outcome; nil for req
	call      *call      // req
}

type call struct {
	id  string
	res chan callResult // capacity 1, written once
}

type callResult struct {
	result json.RawMessage
	err    error
}

type inItem struct {
	epoch int
	f     *wsproto.Frame
}

// Dial connects to the filehub WebSocket endpoint at url (for example
// "ws://127.0.0.1:8080/v1/ws"), opens a session and returns a Client that
// keeps it alive: it reconnects with backoff and resumes the session by
// itself until Close is called or a permanent failure happens.
//
// Dial waits for the first session. Transient failures (refused
// connections, HTTP 429 or 503, a close with 1001 or 4005) are retried with
// backoff until ctx ends; Dial then returns an error wrapping ctx.Err() and
// naming the last failure. A permanent failure — HTTP 401, 403 or 426 on the
// upgrade, close 4001, 4002 or 1009 — is returned at once as a *ConnError.
// With Options.DialInBackground, Dial returns at once and ctx only bounds
// that call.
//
// ctx is not used after Dial returns.
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	c, err := newClient(url, opts)
	if err != nil {
		return nil, err
	}
	go c.run()
	if opts.DialInBackground {
		return c, nil
	}
	select {
	case err := <-c.first:
		if err != nil {
			<-c.done
			return nil, fmt.Errorf("wsclient: dial %s: %w", url, err)
		}
		return c, nil
	case <-ctx.Done():
		c.mu.Lock()
		last := c.lastErr
		c.mu.Unlock()
		_ = c.Close()
		if last != nil {
			return nil, fmt.Errorf("wsclient: dial %s: %w (last attempt: %v)", url, ctx.Err(), last)
		}
		return nil, fmt.Errorf("wsclient: dial %s: %w", url, ctx.Err())
	}
}

func newClient(url string, opts Options) (*Client, error) {
	if opts.OutboxMaxFrames <= 0 {
		opts.OutboxMaxFrames = DefaultOutboxMaxFrames
	}
	if opts.OutboxMaxBytes <= 0 {
		opts.OutboxMaxBytes = DefaultOutboxMaxBytes
	}
	if opts.MessageBuffer <= 0 {
		opts.MessageBuffer = DefaultMessageBuffer
	}
	if opts.PongTimeout <= 0 {
		opts.PongTimeout = DefaultPongTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	m := newMetrics(opts.Metrics)
	c := &Client{
		url:        url,
		opts:       opts,
		log:        opts.Logger,
		m:          m,
		header:     opts.Header.Clone(),
		jitter:     newJitter(opts.Backoff, nil),
		done:       make(chan struct{}),
		first:      make(chan error, 1),
		wake:       make(chan struct{}, 1),
		inboxWake:  make(chan struct{}, 1),
		state:      StateConnecting,
		stateSince: time.Now(),
		heartbeat:  defaultHeartbeat,
		maxMessage: wsproto.DefaultMaxMessageBytes,
		room:       make(chan struct{}),
		calls:      make(map[string]*call),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if opts.Dialer != nil {
		c.dialer = *opts.Dialer
	} else {
		c.dialer = *websocket.DefaultDialer
		// The writer batches frames into one message; gorilla sends a
		// message in frames of its write buffer, one system call each, so
		// its 4 KiB default split a batch of 16 messages of 512 bytes into
		// three writes. Pooled, the buffer costs nothing between writes.
		c.dialer.WriteBufferSize = writeBufferSize
		c.dialer.WriteBufferPool = &writeBufferPool
	}
	c.dialer.Subprotocols = []string{wsproto.Subprotocol}
	if opts.TLSConfig != nil {
		c.dialer.TLSClientConfig = opts.TLSConfig
	}
	if c.header == nil {
		c.header = make(http.Header)
	}
	if opts.Key != "" && !opts.TokenInHello {
		c.header.Set("Authorization", "Bearer "+opts.Key)
	}
	if !opts.IgnoreMessages {
		c.messages = make(chan json.RawMessage, opts.MessageBuffer)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// State returns the current connection state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Err returns nil while the client runs, ErrClosed after Close, or the
// permanent failure (a *ConnError) that stopped it.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done returns a channel that is closed when the client has stopped, by
// Close or a permanent failure; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Messages returns the server's msg frames, in order, each exactly once.
// A frame counts as processed (and is acknowledged) once it is in the
// channel, whose capacity is Options.MessageBuffer. The application must
// keep reading: while the channel is full, nothing else the server sends
// (responses, events) is delivered either, and the server stops sending
// once its outbox window is full; the client never holds more than that
// window. The channel is closed when the client stops. It is nil with
// Options.IgnoreMessages.
func (c *Client) Messages() <-chan json.RawMessage { return c.messages }

// Close closes the connection with 1000, stops every goroutine of the
// client and fails pending operations with ErrClosed. The session is
// abandoned (the server keeps it until its TTL). Close is idempotent and
// always returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.err == nil {
		c.err = ErrClosed
	}
	c.mu.Unlock()
	c.cancel()
	<-c.done
	return nil
}

// Send sends data (marshalled with encoding/json; a json.RawMessage or
// []byte holding JSON is sent as is) as a msg frame and returns once the
// server has acknowledged it, that is, processed it (spec §4). If the client
// is disconnected, the frame waits in the outbox and is sent after
// reconnecting.
//
// Errors: ErrOutboxFull (with Options.FailWhenFull), ErrSessionLost (the
// frame may or may not have been processed), ErrClosed, the permanent
// failure that stopped the client, an EINVALID *filehub.Error if data
// cannot be marshalled, ETOOLARGE if the frame exceeds the message size or
// outbox limits, or ctx's error. If ctx ends after the frame entered the
// outbox, it stays there and may still be delivered.
func (c *Client) Send(ctx context.Context, data any) error {
	raw, err := marshal(data)
	if err != nil {
		return err
	}
	of, err := c.enqueue(ctx, &wsproto.Frame{Type: wsproto.TypeMsg, Data: raw}, nil)
	if err != nil {
		return err
	}
	select {
	case err := <-of.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Call sends a request for method with params (marshalled like Send's
// data; nil sends no params) and waits for the response, which it
// unmarshals into result unless result is nil. Request ids are generated by
// the client; a request replayed after a reconnect runs at most once on the
// server (spec §5.2).
//
// An error response is returned as a *filehub.Error with the server's code
// (errors.Is works with filehub.ErrNotFound, ErrGap, ErrUnknownMethod, …).
// Other errors are those of Send; with ErrSessionLost the request may or
// may not have run. If ctx ends first, the request may still run.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	cl, err := c.startCall(ctx, method, params)
	if err != nil {
		return err
	}
	select {
	case r := <-cl.res:
		return decodeResult(r, result)
	case <-ctx.Done():
		c.forgetCall(cl)
		return ctx.Err()
	}
}

func decodeResult(r callResult, result any) error {
	if r.err != nil {
		return r.err
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(r.result, result); err != nil {
		return filehub.WrapError(filehub.EINTERNAL, "malformed result", err)
	}
	return nil
}

func (c *Client) newCall() *call {
	return &call{id: "r" + strconv.FormatUint(c.nextID.Add(1), 36), res: make(chan callResult, 1)}
}

func (c *Client) startCall(ctx context.Context, method string, params any) (*call, error) {
	return c.startCallWith(ctx, c.newCall(), method, params)
}

func (c *Client) startCallWith(ctx context.Context, cl *call, method string, params any) (*call, error) {
	var raw json.RawMessage
	if params != nil {
		var err error
		if raw, err = marshal(params); err != nil {
			return nil, err
		}
	}
	f := &wsproto.Frame{Type: wsproto.TypeReq, ID: cl.id, Method: method, Params: raw}
	if _, err := c.enqueue(ctx, f, cl); err != nil {
		return nil, err
	}
	return cl, nil
}

func (c *Client) forgetCall(cl *call) {
	c.mu.Lock()
	delete(c.calls, cl.id)
	c.mu.Unlock()
}

func marshal(v any) (json.RawMessage, error) {
	switch v := v.(type) {
	case json.RawMessage:
		if json.Valid(v) {
			return v, nil
		}
	case []byte:
		if json.Valid(v) {
			return v, nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, filehub.WrapError(filehub.EINVALID, "cannot marshal data", err)
	}
	return b, nil
}

// enqueue numbers f, puts it in the outbox and wakes the writer. It waits
// for room unless Options.FailWhenFull.
func (c *Client) enqueue(ctx context.Context, f *wsproto.Frame, cl *call) (*outFrame, error) {
	for {
		c.mu.Lock()
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return nil, err
		}
		f.Seq = c.sendSeq + 1
		// marshal validated the raw fields: AppendFrame need not scan them
		// again.
		b, err := wsproto.AppendFrame(nil, f)
		if err != nil {
			c.mu.Unlock()
			return nil, filehub.WrapError(filehub.EINVALID, "cannot encode frame", err)
		}
		if int64(len(b)) > c.maxMessage || int64(len(b)) > c.opts.OutboxMaxBytes {
			c.mu.Unlock()
			return nil, filehub.Errorf(filehub.ETOOLARGE, "%s frame of %d bytes exceeds the limit", f.Type, len(b))
		}
		if len(c.outbox) < c.opts.OutboxMaxFrames && c.outboxBytes+int64(len(b)) <= c.opts.OutboxMaxBytes {
			c.sendSeq = f.Seq
			of := &outFrame{f: f, b: b, call: cl}
			if cl == nil {
				of.done = make(chan error, 1)
			} else {
				c.calls[cl.id] = cl
			}
			c.outbox = append(c.outbox, of)
			c.outboxBytes += int64(len(b))
			c.m.outboxFrames.Inc()
			c.m.outboxBytes.Add(float64(len(b)))
			c.mu.Unlock()
			c.wakeWriter()
			return of, nil
		}
		room := c.room
		c.mu.Unlock()
		if c.opts.FailWhenFull {
			return nil, ErrOutboxFull
		}
		select {
		case <-room:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *Client) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// freeRoomLocked tells waiting senders that the outbox changed.
func (c *Client) freeRoomLocked() {
	close(c.room)
	c.room = make(chan struct{})
}

// ackLocked drops the outbox frames up to and including seq: the server
// processed them.
func (c *Client) ackLocked(seq int64) error {
	if seq > c.sendSeq {
		return fmt.Errorf("%w: ack %d for frames never sent (last %d)", wsproto.ErrProtocol, seq, c.sendSeq)
	}
	c.ackedSeq = max(c.ackedSeq, seq)
	n := 0
	now := time.Now()
	for _, of := range c.outbox {
		if of.f.Seq > seq {
			break
		}
		n++
		c.outboxBytes -= int64(len(of.b))
		c.m.outboxFrames.Dec()
		c.m.outboxBytes.Sub(float64(len(of.b)))
		c.m.delivered.Inc()
		if of.sent {
			c.m.ackLatency.Observe(now.Sub(of.firstSent).Seconds())
		}
		if of.done != nil {
			of.done <- nil
		}
	}
	if n > 0 {
		clear(c.outbox[:n])
		c.outbox = c.outbox[n:]
		c.freeRoomLocked()
	}
	return nil
}

// failLocked fails an outbox frame with err.
func (c *Client) failLocked(of *outFrame, err error) {
	c.outboxBytes -= int64(len(of.b))
	c.m.outboxFrames.Dec()
	c.m.outboxBytes.Sub(float64(len(of.b)))
	c.m.failed.Inc()
	if of.done != nil {
		of.done <- err
	}
	if of.call != nil {
		c.failCallLocked(of.call, err)
	}
}

func (c *Client) failCallLocked(cl *call, err error) {
	if _, ok := c.calls[cl.id]; ok {
		delete(c.calls, cl.id)
		cl.res <- callResult{err: err}
	}
}

// setState moves to s and runs the hook. Only the run goroutine calls it,
// which is what orders the hook's calls.
func (c *Client) setState(s State) {
	c.mu.Lock()
	old := c.state
	if old == s || old == StateClosed {
		c.mu.Unlock()
		return
	}
	c.accountLocked()
	c.state = s
	c.mu.Unlock()
	c.log.Debug("wsclient: state", "from", old, "to", s)
	if c.opts.OnStateChange != nil {
		c.opts.OnStateChange(old, s)
	}
}

// accountLocked adds the time since the last call to the uptime or the
// downtime counter.
func (c *Client) accountLocked() {
	now := time.Now()
	d := now.Sub(c.stateSince).Seconds()
	c.stateSince = now
	switch c.state {
	case StateConnected:
		c.m.uptime.Add(d)
	case StateConnecting, StateReconnecting:
		c.m.downtime.Add(d)
	}
}

// stop records why the client stops and fails everything pending. The
// first reason wins (Close sets ErrClosed before the run goroutine gets
// here).
func (c *Client) stop(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	err = c.err
	for _, of := range c.outbox {
		c.failLocked(of, err)
	}
	clear(c.outbox)
	c.outbox = nil
	for _, cl := range c.calls {
		c.failCallLocked(cl, err)
	}
	c.freeRoomLocked()
	c.mu.Unlock()
	c.cancel()
}

var errBinary = fmt.Errorf("%w: binary message", wsproto.ErrProtocol)

// readBody returns the problem document of a refused upgrade, its detail
// defaulting to its title; any other body becomes the detail.
func readBody(resp *http.Response) *api.Problem {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var p api.Problem
	if json.Unmarshal(b, &p) != nil {
		// Not a problem document (a proxy's page): its text is the
		// message, and the status gives the code.
		return &api.Problem{Detail: string(b)}
	}
	if p.Detail == "" {
		p.Detail = p.Title
	}
	return &p
}
