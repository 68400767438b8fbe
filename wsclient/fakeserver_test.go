package wsclient_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// fakeServer is a small, strict implementation of the server side of the
// protocol, built from wsproto frames, for tests that need to control the
// server's behaviour precisely (stop acknowledging, forget sessions, refuse
// with a given close code). The integration tests use the real wsserver.
type fakeServer struct {
	t   testing.TB
	srv *httptest.Server
	key string

	heartbeatMS int64
	noProcess   atomic.Bool  // read client frames but neither process nor ack them
	ignored     atomic.Int64 // messages read and dropped while noProcess was set
	stall       atomic.Bool  // stop reading and writing: a half-open connection
	closeCode   atomic.Int64 // refuse every hello with this close code
	status      atomic.Int64 // refuse every upgrade with this HTTP status
	upgrades    atomic.Int64

	mu       sync.Mutex
	sessions map[string]*fakeSession
	conns    map[*websocket.Conn]bool
	events   []filehub.Event
	hellos   int
	execs    int // test.incr calls executed
	nextID   int
}

type fakeSession struct {
	id, token string

	mu      sync.Mutex
	conn    *websocket.Conn
	sendSeq int64
	outbox  []*wsproto.Frame
	recvSeq int64
	sub     bool
	subNext int64 // next event index to send
}

func newFakeServer(t testing.TB) *fakeServer {
	t.Helper()
	fs := &fakeServer{t: t, key: "fhk_good", heartbeatMS: 25000,
		sessions: make(map[string]*fakeSession), conns: make(map[*websocket.Conn]bool)}
	fs.srv = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fakeServer) URL() string { return "ws" + strings.TrimPrefix(fs.srv.URL, "http") + "/v1/ws" }

func (fs *fakeServer) Close() {
	fs.stall.Store(false)
	fs.DropConns()
	fs.srv.Close()
}

// DropConns cuts every connection without a close handshake.
func (fs *fakeServer) DropConns() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for c := range fs.conns {
		c.NetConn().Close()
	}
}

// Forget drops every session, as a restarted server would.
func (fs *fakeServer) Forget() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.sessions = make(map[string]*fakeSession)
}

func (fs *fakeServer) Upgrades() int { return int(fs.upgrades.Load()) }

func (fs *fakeServer) Hellos() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.hellos
}

// AddEvent appends an event to the log and pushes it to subscribers.
func (fs *fakeServer) AddEvent() {
	fs.mu.Lock()
	id := int64(len(fs.events) + 1)
	fs.events = append(fs.events, filehub.Event{ID: id, Type: filehub.EventFileCreated,
		Time: time.Unix(id, 0).UTC(), File: &filehub.File{ID: fmt.Sprintf("f_%d", id)}})
	var ss []*fakeSession
	for _, s := range fs.sessions {
		ss = append(ss, s)
	}
	fs.mu.Unlock()
	for _, s := range ss {
		s.mu.Lock()
		fs.pumpEventsLocked(s)
		s.mu.Unlock()
	}
}

func (fs *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.upgrades.Add(1)
	if st := fs.status.Load(); st != 0 {
		http.Error(w, "refused by test", int(st))
		return
	}
	if !strings.Contains(r.Header.Get("Sec-WebSocket-Protocol"), wsproto.Subprotocol) {
		http.Error(w, "subprotocol required", http.StatusUpgradeRequired)
		return
	}
	auth := r.Header.Get("Authorization")
	if auth != "" && auth != "Bearer "+fs.key {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"title":"Unauthorized","detail":"unknown API key"}`)
		return
	}
	up := websocket.Upgrader{Subprotocols: []string{wsproto.Subprotocol}}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	fs.mu.Lock()
	fs.conns[conn] = true
	fs.mu.Unlock()
	defer func() {
		fs.mu.Lock()
		delete(fs.conns, conn)
		fs.mu.Unlock()
		conn.Close()
	}()
	s, err := fs.hello(conn, auth != "")
	if err != nil {
		return
	}
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		for fs.stall.Load() {
			time.Sleep(time.Millisecond)
		}
		if fs.noProcess.Load() {
			fs.ignored.Add(1)
			continue
		}
		frames, err := wsproto.Decode(data)
		if err != nil {
			fs.t.Errorf("fake server: client sent a bad message: %v", err)
			return
		}
		s.mu.Lock()
		for _, f := range frames {
			fs.handleLocked(s, f)
		}
		s.mu.Unlock()
	}
}

func (fs *fakeServer) refuse(conn *websocket.Conn, code int, msg string) {
	b, _ := wsproto.Encode(nil, &wsproto.Frame{Type: wsproto.TypeError, Code: filehub.EUNAUTHORIZED, Message: msg})
	conn.WriteMessage(websocket.TextMessage, b)
	conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, msg), time.Now().Add(time.Second))
}

func (fs *fakeServer) hello(conn *websocket.Conn, headerAuth bool) (*fakeSession, error) {
	_, data, err := conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	frames, err := wsproto.Decode(data)
	if err != nil || frames[0].Type != wsproto.TypeHello {
		fs.t.Errorf("fake server: first message %q is not a hello", data)
		return nil, fmt.Errorf("no hello")
	}
	h := frames[0]
	fs.mu.Lock()
	fs.hellos++
	fs.mu.Unlock()
	if code := fs.closeCode.Load(); code != 0 {
		fs.refuse(conn, int(code), "refused by test")
		return nil, fmt.Errorf("refused")
	}
	if !headerAuth && h.Token != fs.key {
		fs.refuse(conn, wsproto.CloseAuthFailed, "unknown API key")
		return nil, fmt.Errorf("bad token")
	}
	fs.mu.Lock()
	s := fs.sessions[h.SessionID]
	resumed := s != nil && s.token == h.ResumeToken
	refused := ""
	switch {
	case h.SessionID != "" && s == nil:
		refused = wsproto.RefusedUnknown
	case h.SessionID != "" && !resumed:
		refused = wsproto.RefusedBadToken
	}
	if !resumed {
		fs.nextID++
		s = &fakeSession{id: fmt.Sprintf("s_%d", fs.nextID)}
		fs.sessions[s.id] = s
	}
	fs.nextID++
	s.token = fmt.Sprintf("t_%d", fs.nextID)
	fs.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(wsproto.CloseTakenOver, ""), time.Now().Add(time.Second))
		s.conn.NetConn().Close()
	}
	s.conn = conn
	if resumed {
		s.dropLocked(h.LastSeq)
	}
	welcome := &wsproto.Frame{Type: wsproto.TypeWelcome, SessionID: s.id, ResumeToken: s.token,
		Resumed: resumed, LastSeq: s.recvSeq, HeartbeatMS: fs.heartbeatMS, SessionTTLMS: 120000,
		MaxMessageBytes: wsproto.DefaultMaxMessageBytes, ResumeRefused: refused}
	frames = append([]*wsproto.Frame{welcome}, s.outbox...)
	b, _ := wsproto.Encode(nil, frames...)
	if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *fakeSession) dropLocked(ack int64) {
	for len(s.outbox) > 0 && s.outbox[0].Seq <= ack {
		s.outbox = s.outbox[1:]
	}
}

// sendLocked numbers f, keeps it until acknowledged and writes it with an
// ack of everything received so far.
func (fs *fakeServer) sendLocked(s *fakeSession, f *wsproto.Frame) {
	s.sendSeq++
	f.Seq = s.sendSeq
	s.outbox = append(s.outbox, f)
	cp := *f
	cp.Ack = s.recvSeq
	b, _ := wsproto.Encode(nil, &cp)
	if s.conn != nil {
		s.conn.WriteMessage(websocket.TextMessage, b)
	}
}

func (fs *fakeServer) handleLocked(s *fakeSession, f *wsproto.Frame) {
	if f.Ack > 0 {
		s.dropLocked(f.Ack)
	}
	if !wsproto.Reliable(f.Type) {
		return
	}
	if f.Seq <= s.recvSeq {
		return
	}
	if f.Seq != s.recvSeq+1 {
		fs.t.Errorf("fake server: client seq %d after %d", f.Seq, s.recvSeq)
		return
	}
	s.recvSeq = f.Seq
	switch f.Type {
	case wsproto.TypeMsg:
		fs.sendLocked(s, &wsproto.Frame{Type: wsproto.TypeMsg, Data: f.Data})
	case wsproto.TypeReq:
		switch f.Method {
		case wsproto.MethodEventsSubscribe:
			var p struct{ After int64 }
			_ = json.Unmarshal(f.Params, &p)
			fs.sendLocked(s, &wsproto.Frame{Type: wsproto.TypeRes, ID: f.ID, Result: []byte(`{}`)})
			s.sub, s.subNext = true, p.After
			fs.pumpEventsLocked(s)
		case wsproto.MethodEventsUnsubscribe:
			s.sub = false
			fs.sendLocked(s, &wsproto.Frame{Type: wsproto.TypeRes, ID: f.ID, Result: []byte(`{}`)})
		case "test.incr":
			fs.mu.Lock()
			fs.execs++
			n := fs.execs
			fs.mu.Unlock()
			fs.sendLocked(s, &wsproto.Frame{Type: wsproto.TypeRes, ID: f.ID, Result: []byte(strconv.Itoa(n))})
		case "test.echo":
			fs.sendLocked(s, &wsproto.Frame{Type: wsproto.TypeRes, ID: f.ID, Result: f.Params})
		case wsproto.MethodFilesStat:
			fs.sendLocked(s, &wsproto.Frame{Type: wsproto.TypeRes, ID: f.ID,
				Error: &wsproto.ErrorBody{Code: filehub.ENOTFOUND, Message: "no such file"}})
		default:
			fs.sendLocked(s, &wsproto.Frame{Type: wsproto.TypeRes, ID: f.ID,
				Error: &wsproto.ErrorBody{Code: wsproto.CodeUnknownMethod, Message: f.Method}})
		}
	}
	// Acks ride on the frames above; a lone ack covers msgs without reply.
	b, _ := wsproto.Encode(nil, &wsproto.Frame{Type: wsproto.TypeAck, Ack: s.recvSeq})
	if s.conn != nil {
		s.conn.WriteMessage(websocket.TextMessage, b)
	}
}

func (fs *fakeServer) pumpEventsLocked(s *fakeSession) {
	if !s.sub {
		return
	}
	fs.mu.Lock()
	evs := append([]filehub.Event(nil), fs.events...)
	fs.mu.Unlock()
	for ; s.subNext < int64(len(evs)); s.subNext++ {
		ev := evs[s.subNext]
		fs.sendLocked(s, &wsproto.Frame{Type: wsproto.TypeEvent, Event: &ev})
	}
}
