package main_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/client"
	"github.com/filehub/filehub/internal/chaosproxy"
	"github.com/filehub/filehub/internal/fakeprovider"
	"github.com/filehub/filehub/internal/testlog"
	"github.com/filehub/filehub/wsclient"
	"github.com/filehub/filehub/wsproto"
)

// The process-level tests of issue 16: WebSocket sessions that outlive the
// process holding them. A real wsclient drives the load of the issue —
// 5,000 msg frames and 500 requests, among them files.delete and
// providers.push — against real filehub processes while the test kills,
// restarts, moves and pauses them; then every message must have been
// echoed exactly once and in order, every request answered exactly once,
// and the store and the provider stand-in must show each effect once.

// Sizes of the load (the figures).
const (
	loadSenders   = 8
	loadMsgs      = 5000 // msg frames, loadMsgs/loadSenders per sender
	loadCallers   = 4
	loadRequests  = 500 // requests, of which:
	loadDeletes   = 100 // files.delete, one per file uploaded beforehand
	loadPushes    = 50  // providers.push, one per file with its own content
	providerKey   = "sk-durable-ws"
	providerName  = "test"
	loadTimeLimit = 90 * time.Second // the whole load, faults included
)

// providerEnv points a filehub process's provider "test" at the stand-in.
func providerEnv(fp *fakeprovider.Server) []string {
	return []string{
		"FILEHUB_PROVIDER_TEST_API_KEY=" + providerKey,
		"FILEHUB_PROVIDER_TEST_BASE_URL=" + fp.URL,
		"FILEHUB_PROVIDER_TEST_PURPOSE=file-extract",
	}
}

// loadFiles are the files the requests of the load act on.
type loadFiles struct {
	deletes []string        // IDs of files deleted once each
	pushes  []string        // IDs of files pushed once each (and stat'ed)
	sums    map[string]bool // SHA-256 of each pushed file's content
}

// mustUploadLoadFiles uploads the files of the load through c, each with
// content of its own, so that a push run twice would upload twice.
func mustUploadLoadFiles(t *testing.T, c *client.Client) *loadFiles {
	t.Helper()
	lf := &loadFiles{sums: map[string]bool{}}
	for i := range loadDeletes + loadPushes {
		content := fmt.Sprintf("durable ws load file %d", i)
		up, err := c.Upload(t.Context(), fmt.Sprintf("load-%03d.txt", i), strings.NewReader(content), int64(len(content)))
		if err != nil {
			t.Fatalf("upload load file %d: %v", i, err)
		}
		if i < loadDeletes {
			lf.deletes = append(lf.deletes, up.ID)
		} else {
			lf.pushes = append(lf.pushes, up.ID)
			lf.sums[sum([]byte(content))] = true
		}
	}
	return lf
}

// wsStats counts what the client's metric hooks report: reconnects that
// ended with a welcome, and welcomes that started a new session because
// the server no longer knew the old one (resumed: false).
type wsStats struct {
	welcomes     atomic.Int64
	sessionsLost atomic.Int64

	mu         sync.Mutex
	welcomedAt []time.Time // of each reconnect's welcome
	dialedAt   time.Time   // the last successful TCP connect
	closedWith map[int]int // connections the server closed, by close code
}

// closes returns how many of the client's connections ended with the
// close code.
func (s *wsStats) closes(code int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closedWith[code]
}

// closeCounter is the client's log handler: it counts the close codes of
// the failed connections the client logs (an "err" attribute holding a
// *wsclient.ConnError) and passes the records on to the test's log.
type closeCounter struct {
	st   *wsStats
	next slog.Handler
}

func (h closeCounter) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h closeCounter) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		var ce *wsclient.ConnError
		if err, ok := a.Value.Any().(error); ok && errors.As(err, &ce) && ce.CloseCode != 0 {
			h.st.mu.Lock()
			h.st.closedWith[ce.CloseCode]++
			h.st.mu.Unlock()
		}
		return true
	})
	return h.next.Handle(ctx, r)
}

func (h closeCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return closeCounter{h.st, h.next.WithAttrs(as)}
}

func (h closeCounter) WithGroup(name string) slog.Handler {
	return closeCounter{h.st, h.next.WithGroup(name)}
}

type hookCounter func()

func (h hookCounter) Inc()        { h() }
func (h hookCounter) Add(float64) { h() }

// lastWelcome returns the time of the last reconnect's welcome and of the
// TCP connect before it.
func (s *wsStats) lastWelcome() (welcome, dialed time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.welcomedAt) == 0 {
		return time.Time{}, time.Time{}
	}
	return s.welcomedAt[len(s.welcomedAt)-1], s.dialedAt
}

// mustDialLoadClient opens a wsclient session at url (a /v1/ws URL) that
// reconnects fast: the tests move it often and wait for it.
func mustDialLoadClient(t *testing.T, url string, backoff wsclient.Backoff) (*wsclient.Client, *wsStats) {
	t.Helper()
	st := &wsStats{closedWith: map[int]int{}}
	var nd net.Dialer
	dialer := *websocket.DefaultDialer
	dialer.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := nd.DialContext(ctx, network, addr)
		if err == nil {
			st.mu.Lock()
			st.dialedAt = time.Now()
			st.mu.Unlock()
		}
		return c, err
	}
	ws, err := wsclient.Dial(t.Context(), url, wsclient.Options{
		Key:              testKey,
		Dialer:           &dialer,
		Backoff:          backoff,
		HandshakeTimeout: 5 * time.Second,
		Logger:           slog.New(closeCounter{st, testlog.New(t).Handler()}),
		// Room for every sender's and caller's frames at once.
		OutboxMaxFrames: 4096,
		MessageBuffer:   1024,
		Metrics: &wsclient.Metrics{
			Successes: hookCounter(func() {
				now := time.Now()
				st.welcomes.Add(1)
				st.mu.Lock()
				st.welcomedAt = append(st.welcomedAt, now)
				st.mu.Unlock()
			}),
			SessionsLost: hookCounter(func() { st.sessionsLost.Add(1) }),
		},
	})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws, st
}

func wsURL(addr string) string { return "ws://" + addr + "/v1/ws" }

// loadMsg is the data of one msg frame; S -1 is the barrier.
type loadMsg struct {
	S int `json:"s"`
	I int `json:"i"`
}

// loadRequest is one request of the load.
type loadRequest struct {
	method string
	id     string
}

// wsLoad is the load running on one client.
type wsLoad struct {
	// pushGate keeps kill -9 out of a providers.push: a push killed
	// during its upload leaves its claim on the content, which blocks the
	// replayed push for the claim TTL (docs/operations.md, "Durable
	// sessions": the one case a crash is not recovered from at once). The
	// killer takes it for writing; every push holds it for reading.
	pushGate sync.RWMutex
	t        *testing.T
	ws       *wsclient.Client
	files    *loadFiles
	// more, until closed, keeps messages and files.stat requests going
	// beyond the minimum, so that the faults a test makes all happen
	// under load.
	more    chan struct{}
	endOnce sync.Once

	echoed   atomic.Int64 // echoes received
	answered atomic.Int64 // requests answered
	// conflicts counts requests answered "conflict: this request already
	// ran; its result is no longer kept". files.delete and providers.push
	// are replayed instead (docs/protocol.md §5.4), so any is a failure.
	conflicts atomic.Int64

	mu       sync.Mutex
	next     [loadSenders]int // the next echo expected from each sender
	sent     [loadSenders]int // messages each sender had acknowledged
	requests int              // requests made
	errs     []error
	barrier  chan struct{} // receives the barrier's echo

	senders, callers sync.WaitGroup
	received         chan struct{} // closed when the receiver ends
}

// startLoad starts the load on ws. It stops at the figures, or,
// with keepGoing, once it reached them and end was called. After the first
// failure it stops at once.
func startLoad(t *testing.T, ws *wsclient.Client, files *loadFiles, keepGoing bool) *wsLoad {
	t.Helper()
	l := &wsLoad{t: t, ws: ws, files: files, more: make(chan struct{}), barrier: make(chan struct{}, 1), received: make(chan struct{})}
	if !keepGoing {
		l.end()
	}
	ctx, cancel := context.WithTimeout(t.Context(), loadTimeLimit)
	t.Cleanup(cancel)

	go l.receive(ctx)
	for s := range loadSenders {
		l.senders.Go(func() { l.send(ctx, s) })
	}
	reqs := l.plan()
	var nextReq atomic.Int64
	for range loadCallers {
		l.callers.Go(func() {
			for {
				i := int(nextReq.Add(1)) - 1
				var r loadRequest
				switch {
				case l.failed():
					return
				case i < len(reqs):
					r = reqs[i]
				case l.stopping():
					return
				default:
					r = loadRequest{wsproto.MethodFilesStat, files.pushes[i%len(files.pushes)]}
				}
				if !l.call(ctx, r) {
					return
				}
			}
		})
	}
	return l
}

// plan returns the 500 requests in a fixed shuffled order: each
// file of files.deletes deleted once, each of files.pushes pushed once,
// and stats of the pushed files for the rest.
func (l *wsLoad) plan() []loadRequest {
	var reqs []loadRequest
	for _, id := range l.files.deletes {
		reqs = append(reqs, loadRequest{wsproto.MethodFilesDelete, id})
	}
	for _, id := range l.files.pushes {
		reqs = append(reqs, loadRequest{wsproto.MethodProvidersPush, id})
	}
	for i := len(reqs); i < loadRequests; i++ {
		reqs = append(reqs, loadRequest{wsproto.MethodFilesStat, l.files.pushes[i%len(l.files.pushes)]})
	}
	rng := rand.New(rand.NewPCG(16, 16))
	rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	return reqs
}

// end lets the load stop once it reached the figures.
func (l *wsLoad) end() { l.endOnce.Do(func() { close(l.more) }) }

func (l *wsLoad) stopping() bool {
	select {
	case <-l.more:
		return true
	default:
		return false
	}
}

func (l *wsLoad) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 20 {
		l.errs = append(l.errs, err)
	}
}

// send sends sender s's messages, each once Send returned for the one
// before: per sender, the echoes must come back in this order.
func (l *wsLoad) send(ctx context.Context, s int) {
	for i := 0; ; i++ {
		if i >= loadMsgs/loadSenders && l.stopping() || l.failed() {
			return
		}
		if err := l.ws.Send(ctx, loadMsg{s, i}); err != nil {
			l.fail(fmt.Errorf("sender %d, message %d: %w", s, i, err))
			return
		}
		l.mu.Lock()
		l.sent[s] = i + 1
		l.mu.Unlock()
	}
}

// receive checks every echo as it arrives: per sender, the next one in
// order, never a duplicate nor a gap.
func (l *wsLoad) receive(ctx context.Context) {
	defer close(l.received)
	for {
		select {
		case <-ctx.Done():
			return
		case raw, ok := <-l.ws.Messages():
			if !ok {
				return
			}
			var m loadMsg
			if err := json.Unmarshal(raw, &m); err != nil {
				l.fail(fmt.Errorf("echo %s: %w", raw, err))
				continue
			}
			if m.S == -1 {
				l.barrier <- struct{}{}
				continue
			}
			if m.S < 0 || m.S >= loadSenders {
				l.fail(fmt.Errorf("echo of an unknown sender: %s", raw))
				continue
			}
			l.mu.Lock()
			want := l.next[m.S]
			if m.I == want {
				l.next[m.S]++
			}
			l.mu.Unlock()
			if m.I != want {
				what := "a gap or reordering"
				if m.I < want {
					what = "a duplicate"
				}
				l.fail(fmt.Errorf("sender %d: echo of message %d, want %d (%s)", m.S, m.I, want, what))
			}
			l.echoed.Add(1)
		}
	}
}

// call makes one request and checks its answer; false ends the caller.
func (l *wsLoad) call(ctx context.Context, r loadRequest) bool {
	l.mu.Lock()
	l.requests++
	l.mu.Unlock()
	var err error
	switch r.method {
	case wsproto.MethodFilesDelete, wsproto.MethodFilesStat:
		var f filehub.File
		err = l.ws.Call(ctx, r.method, api.FileRequest{ID: r.id}, &f)
		switch {
		case err != nil:
		case f.ID != r.id:
			err = fmt.Errorf("answered for file %q", f.ID)
		case r.method == wsproto.MethodFilesDelete && !f.Deleted():
			err = errors.New("the answer's file is not deleted")
		}
	case wsproto.MethodProvidersPush:
		var res api.PushResult
		l.pushGate.RLock()
		err = l.ws.Call(ctx, r.method, api.PushRequest{ID: r.id, Provider: providerName}, &res)
		l.pushGate.RUnlock()
		switch {
		case err != nil:
		case res.ProviderFileID == "":
			err = errors.New("no provider file id")
		}
		// reused: true is what a replayed push (its first run's result
		// lost to a kill or a move) answers; that the content went to the
		// provider once, checkEffects counts at the stand-in.
	}
	l.answered.Add(1)
	if err != nil && filehub.ErrorCode(err) == filehub.ECONFLICT && strings.Contains(err.Error(), "already ran") {
		l.conflicts.Add(1)
	}
	if err != nil {
		l.fail(fmt.Errorf("%s %s: %w", r.method, r.id, err))
		return ctx.Err() == nil
	}
	return true
}

// waitProgress waits until at least msgs echoes and reqs answers arrived.
func (l *wsLoad) waitProgress(msgs, reqs int64) {
	l.t.Helper()
	waitFor(l.t, fmt.Sprintf("%d echoes and %d answers", msgs, reqs), func() bool {
		return l.echoed.Load() >= msgs && l.answered.Load() >= reqs || l.failed()
	})
	if l.failed() {
		l.finish() // reports what failed
		l.t.FailNow()
	}
}

func (l *wsLoad) failed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.errs) > 0
}

// finish waits for the load to end, sends a barrier message and waits for
// its echo — any duplicate of an earlier message would have come before
// it — and fails the test with what went wrong.
func (l *wsLoad) finish() {
	t := l.t
	t.Helper()
	l.end()
	done := make(chan struct{})
	go func() { l.senders.Wait(); l.callers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(loadTimeLimit):
		t.Fatalf("the load did not end within %s: %d echoes, %d answers", loadTimeLimit, l.echoed.Load(), l.answered.Load())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := l.ws.Send(ctx, loadMsg{-1, 0}); err != nil {
		l.fail(fmt.Errorf("barrier: %w", err))
	} else {
		select {
		case <-l.barrier:
		case <-ctx.Done():
			l.fail(errors.New("no echo of the barrier within 30s"))
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.errs {
		t.Error(err)
	}
	total := 0
	for s := range loadSenders {
		total += l.sent[s]
		if l.next[s] != l.sent[s] {
			t.Errorf("sender %d: %d messages acknowledged, %d echoed", s, l.sent[s], l.next[s])
		}
	}
	if len(l.errs) == 0 && (total < loadMsgs || l.requests < loadRequests) {
		t.Errorf("only %d messages and %d requests sent, want at least %d and %d", total, l.requests, loadMsgs, loadRequests)
	}
	t.Logf("load: %d messages echoed, %d requests answered (%d of them: conflict, already ran)", total, l.answered.Load(), l.conflicts.Load())
}

// checkEffects checks at the store and at the provider stand-in that each
// delete and each push of the load ran exactly once.
func checkEffects(t *testing.T, c *client.Client, fp *fakeprovider.Server, files *loadFiles) {
	t.Helper()
	deleted := map[string]int{}
	var after int64
	for {
		page, next, err := c.Audit(t.Context(), filehub.AuditFilter{Action: filehub.AuditFileDeleted, AfterID: after, Limit: 1000})
		if err != nil {
			t.Fatalf("audit: %v", err)
		}
		for _, e := range page {
			deleted[e.Target]++
		}
		if next == 0 {
			break
		}
		after = next
	}
	for _, id := range files.deletes {
		if deleted[id] != 1 {
			t.Errorf("file %s deleted %d times (audit log), want once", id, deleted[id])
		}
	}
	if len(deleted) != len(files.deletes) {
		t.Errorf("%d files deleted (audit log), want %d", len(deleted), len(files.deletes))
	}
	held := map[string]int{}
	for _, f := range fp.Files() {
		held[f.SHA256]++
	}
	for s := range files.sums {
		if held[s] != 1 {
			t.Errorf("the provider holds content %s %d times, want once", s[:12], held[s])
		}
	}
	if fp.Uploads() != len(files.sums) {
		t.Errorf("%d uploads at the provider for %d pushed contents (%d upload requests in all)",
			fp.Uploads(), len(files.sums), fp.Calls("POST /files"))
	}
}

// checkResumed checks that every reconnect of the client resumed its
// session, and that there were at least min of them.
func checkResumed(t *testing.T, st *wsStats, min int64) {
	t.Helper()
	if n := st.sessionsLost.Load(); n > 0 {
		t.Errorf("%d reconnects got a new session (resumed: false) instead of resuming", n)
	}
	if n := st.welcomes.Load(); n < min {
		t.Errorf("%d reconnects, want at least %d: the faults did not reach the client", n, min)
	}
}

// sigkill kills p without warning and waits until it is gone.
func sigkill(t *testing.T, p *Process) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// TestDurableWSSurvivesSIGKILL: the only server, on SQLite, is killed with
// SIGKILL twice while a client streams the load through the chaos proxy,
// which also cuts the connection once; each time it restarts on the same
// data dir and port. The client must resume every time.
func TestDurableWSSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin := buildBinary(t)
	fp := fakeprovider.New(t, providerKey)
	dataDir, addr := t.TempDir(), freeAddr(t)
	start := func() *Process {
		return StartProcessEnv(t, bin, dataDir, providerEnv(fp), "--listen", addr)
	}
	p := start()
	c := NewClient(t, p.URL, testKey)
	files := mustUploadLoadFiles(t, c)
	px := mustChaosProxy(t, addr)
	ws, st := mustDialLoadClient(t, wsURL(px.Addr()), wsclient.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond})

	load := startLoad(t, ws, files, false)
	load.waitProgress(loadMsgs/4, loadRequests/4)
	load.pushGate.Lock()
	sigkill(t, p)
	p = start()
	load.pushGate.Unlock()
	load.waitProgress(loadMsgs/2, loadRequests/2)
	px.CutAll()
	load.waitProgress(loadMsgs*3/4, loadRequests*3/4)
	load.pushGate.Lock()
	sigkill(t, p)
	p = start()
	load.pushGate.Unlock()
	load.finish()

	checkResumed(t, st, 3)
	checkEffects(t, NewClient(t, p.URL, testKey), fp, files)
}

// mustChaosProxy starts a chaos proxy (a round-robin balancer if several
// targets) closed when the test ends.
func mustChaosProxy(t *testing.T, targets ...string) *chaosproxy.Proxy {
	t.Helper()
	px, err := chaosproxy.NewBalancer(targets...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	return px
}

// startInstances starts n filehub processes on one PostgreSQL schema and
// one bucket, each on a fixed address of its own so that it can come back
// there after a restart. start(i) (re)starts instance i.
func startInstances(t *testing.T, n int, fp *fakeprovider.Server) (db string, addrs []string, start func(i int) *Process) {
	t.Helper()
	db = mustPostgresSchema(t)
	s3srv := newFakeS3(t)
	bin := buildBinary(t)
	env := append(providerEnv(fp), s3srv.Env...)
	var dirs []string
	for range n {
		addrs = append(addrs, freeAddr(t))
		dirs = append(dirs, t.TempDir())
	}
	start = func(i int) *Process {
		return StartProcessEnv(t, bin, dirs[i], env, "--db", db, "--blobs", s3srv.URL,
			"--cleanup-interval", "0", "--listen", addrs[i])
	}
	return db, addrs, start
}

// TestDurableWSMovesAcrossInstances: three instances on one PostgreSQL
// behind a round-robin balancer. First the balancer cuts the client's
// connection every few hundred milliseconds, so that each reconnect lands
// on the next instance; then every instance is restarted in turn, as a
// deploy does it: the balancer takes the instance out of the rotation
// while the client is on it, SIGTERM closes the client's connection with
// 4005, and a new process starts. The client must resume every time,
// wherever it lands, and the load must flow throughout.
func TestDurableWSMovesAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	fp := fakeprovider.New(t, providerKey)
	_, addrs, start := startInstances(t, 3, fp)
	procs := make([]*Process, len(addrs))
	for i := range procs {
		procs[i] = start(i)
	}
	files := mustUploadLoadFiles(t, NewClient(t, procs[0].URL, testKey))
	px := mustChaosProxy(t, addrs...)
	ws, st := mustDialLoadClient(t, wsURL(px.Addr()), wsclient.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond})

	load := startLoad(t, ws, files, true)

	// Moves: cut the client's connection until it has been on every
	// instance at least twice.
	served := map[string]int{}
	cuts := 0
	for ; slices.ContainsFunc(addrs, func(a string) bool { return served[a] < 2 }); cuts++ {
		if cuts == 100 {
			t.Fatalf("after %d cuts the client was served by %v, want every instance twice", cuts, served)
		}
		load.waitProgress(load.echoed.Load()+50, load.answered.Load()+5)
		for _, a := range px.ConnTargets() {
			served[a]++
		}
		px.CutAll()
	}
	t.Logf("moves: %d cuts, connections served by instance: %v; %d conflicts", cuts, served, load.conflicts.Load())

	// Rolling restart, each instance with the client on it.
	for i := range procs {
		for j, a := range addrs {
			px.Exclude(a, j != i)
		}
		px.CutAll()
		waitFor(t, fmt.Sprintf("the client on instance %d", i), func() bool {
			return slices.Equal(px.ConnTargets(), []string{addrs[i]}) || load.failed()
		})
		load.waitProgress(load.echoed.Load()+50, load.answered.Load()+5)
		for j, a := range addrs {
			px.Exclude(a, j == i)
		}
		shutdowns := st.closes(wsproto.CloseServerShutdown)
		if err := procs[i].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		<-procs[i].exited
		if procs[i].err != nil {
			t.Errorf("instance %d after SIGTERM: %v", i, procs[i].err)
		}
		if st.closes(wsproto.CloseServerShutdown) == shutdowns {
			t.Errorf("instance %d stopped without closing the client's connection with %d", i, wsproto.CloseServerShutdown)
		}
		procs[i] = start(i)
		px.Exclude(addrs[i], false)
		load.waitProgress(load.echoed.Load()+50, load.answered.Load()+5)
	}
	load.finish()

	checkResumed(t, st, int64(cuts+len(procs)))
	checkEffects(t, NewClient(t, procs[0].URL, testKey), fp, files)
}

// TestDurableWSFencesPausedOwner: the instance that owns the session is
// paused (SIGSTOP) with frames of the client unread in its socket; the
// balancer gives up on it and the client resumes on the other instance,
// which takes the session over. When the old owner wakes (SIGCONT) and
// reads those frames, it must not act for the session any more: it closes
// its connection with 4007 without acknowledging or answering anything,
// the store keeps the new owner's epoch, and the client sees every echo
// and answer exactly once.
func TestDurableWSFencesPausedOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	fp := fakeprovider.New(t, providerKey)
	db, addrs, start := startInstances(t, 2, fp)
	a, b := start(0), start(1)
	c := NewClient(t, a.URL, testKey)
	var fileIDs []string
	for i := range 2 {
		content := fmt.Sprintf("fencing file %d", i)
		up, err := c.Upload(t.Context(), fmt.Sprintf("fencing-%d.txt", i), strings.NewReader(content), int64(len(content)))
		if err != nil {
			t.Fatal(err)
		}
		fileIDs = append(fileIDs, up.ID)
	}
	px := mustChaosProxy(t, addrs...)
	px.Exclude(addrs[1], true) // the session starts on a
	ws, st := mustDialLoadClient(t, wsURL(px.Addr()), wsclient.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond})
	echoes := startEchoCheck(t, ws)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for i := range 10 {
		if err := ws.Send(ctx, loadMsg{0, i}); err != nil {
			t.Fatal(err)
		}
	}
	echoes.wait(t, 10)
	epochA, ownerA := wsSessionOwner(t, db)

	// Pause a, then send: the frames reach a's socket and stay unread.
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.cmd.Process.Signal(syscall.SIGCONT) })
	// kill returns before every thread has stopped: a thread running on
	// the other core could still read and answer the first frames.
	waitFor(t, "every thread of the paused instance to stop", func() bool { return allThreadsStopped(t, a.cmd.Process.Pid) })
	before := px.Upstream()
	// Each from a sender of its own, so that all are sent at once.
	const paused = 20
	var (
		sends sync.WaitGroup
		errs  = make(chan error, paused+2)
	)
	for g := range paused {
		sends.Go(func() {
			if err := ws.Send(ctx, loadMsg{1 + g, 0}); err != nil {
				errs <- fmt.Errorf("message of sender %d: %w", 1+g, err)
			}
		})
	}
	waitFor(t, "the messages to reach the paused instance", func() bool { return px.Upstream()-before >= paused*20 })
	var deleted filehub.File
	var pushed api.PushResult
	sends.Go(func() {
		if err := ws.Call(ctx, wsproto.MethodFilesDelete, api.FileRequest{ID: fileIDs[0]}, &deleted); err != nil {
			errs <- fmt.Errorf("files.delete: %w", err)
		}
	})
	sends.Go(func() {
		if err := ws.Call(ctx, wsproto.MethodProvidersPush, api.PushRequest{ID: fileIDs[1], Provider: providerName}, &pushed); err != nil {
			errs <- fmt.Errorf("providers.push: %w", err)
		}
	})
	waitFor(t, "the requests to reach the paused instance", func() bool { return px.Upstream()-before >= paused*20+100 })

	// The balancer gives up on a: the client's side of the connection
	// ends, a's stays open with the frames it has not read.
	px.Exclude(addrs[0], true)
	px.Exclude(addrs[1], false)
	orphans := px.Abandon()
	if len(orphans) != 1 || orphans[0].Target != addrs[0] {
		t.Fatalf("abandoned %d connections, want the one to a", len(orphans))
	}
	sends.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	echoes.wait(t, 10+paused)
	if !deleted.Deleted() || pushed.Reused || pushed.ProviderFileID == "" {
		t.Errorf("answers on b: delete %+v, push %+v", deleted, pushed)
	}
	epoch, owner := wsSessionOwner(t, db)
	if epoch <= epochA || owner == ownerA {
		t.Errorf("after the move the session's epoch and owner are %d %q, as on a (%d %q)", epoch, owner, epochA, ownerA)
	}

	// a wakes and reads the client's frames: it must be fenced out.
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	var frames []*wsproto.Frame
	code := 0
	waitFor(t, "the old owner to close its connection with 4007", func() bool {
		frames, code = serverFrames(t, orphans[0].Data())
		return code != 0
	})
	if code != wsproto.CloseTakenOver {
		t.Errorf("the old owner closed its connection with %d, want %d", code, wsproto.CloseTakenOver)
	}
	for _, f := range frames {
		if f.Type != wsproto.TypeError {
			t.Errorf("the old owner sent a %s frame (seq %d, ack %d) after it was taken over", f.Type, f.Seq, f.Ack)
		}
	}
	if n := metricValue(t, a.URL, "filehub_ws_sessions_fenced_total"); n != 1 {
		t.Errorf("the old owner counts %v sessions fenced, want 1", n)
	}
	t.Logf("the old owner, woken, sent %d frames and closed with %d; the session's epoch is %d, its owner %s", len(frames), code, epoch, owner)
	if e, o := wsSessionOwner(t, db); e != epoch || o != owner {
		t.Errorf("after the old owner woke, the session's epoch and owner are %d %q, want %d %q (the new owner's)", e, o, epoch, owner)
	}

	// The session goes on on b, with nothing duplicated.
	if err := ws.Send(ctx, loadMsg{0, 10}); err != nil {
		t.Fatal(err)
	}
	echoes.wait(t, 11+paused)
	echoes.check(t)
	checkResumed(t, st, 1)
	deletes := 0
	entries, _, err := NewClient(t, b.URL, testKey).Audit(ctx, filehub.AuditFilter{Action: filehub.AuditFileDeleted})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Target == fileIDs[0] {
			deletes++
		}
	}
	if deletes != 1 || fp.Uploads() != 1 {
		t.Errorf("%d deletes of the file in the audit log and %d uploads at the provider, want 1 and 1", deletes, fp.Uploads())
	}
}

// echoCheck receives the echoes of a few senders and checks, as they
// arrive, that each sender's come in order, without gap or duplicate.
type echoCheck struct {
	mu    sync.Mutex
	next  map[int]int // by sender
	total int
	errs  []string
}

func startEchoCheck(t *testing.T, ws *wsclient.Client) *echoCheck {
	t.Helper()
	e := &echoCheck{next: map[int]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for raw := range ws.Messages() {
			var m loadMsg
			err := json.Unmarshal(raw, &m)
			e.mu.Lock()
			switch {
			case err != nil:
				e.errs = append(e.errs, fmt.Sprintf("echo %s: %v", raw, err))
			case m.I != e.next[m.S]:
				e.errs = append(e.errs, fmt.Sprintf("sender %d: echo of message %d, want %d", m.S, m.I, e.next[m.S]))
			default:
				e.next[m.S]++
				e.total++
			}
			e.mu.Unlock()
		}
	}()
	// Messages is closed once the client is; close it first.
	t.Cleanup(func() { ws.Close(); <-done })
	return e
}

// wait waits until n echoes arrived in order.
func (e *echoCheck) wait(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d echoes", n), func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.total >= n || len(e.errs) > 0
	})
	e.check(t)
}

func (e *echoCheck) check(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.errs {
		t.Error(s)
	}
	if len(e.errs) > 0 {
		t.FailNow()
	}
}

// serverFrames decodes what a filehub server wrote on a WebSocket
// connection (unmasked, uncompressed frames): the protocol frames of its
// text messages, and the code of its close frame (0 if none yet).
func serverFrames(t *testing.T, b []byte) ([]*wsproto.Frame, int) {
	t.Helper()
	var (
		frames  []*wsproto.Frame
		message []byte
	)
	for len(b) >= 2 {
		fin, op := b[0]&0x80 != 0, b[0]&0x0f
		n, off := uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return frames, 0
			}
			n, off = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				return frames, 0
			}
			n, off = binary.BigEndian.Uint64(b[2:]), 10
		}
		if b[1]&0x80 != 0 {
			t.Fatal("a server sent a masked frame")
		}
		if uint64(len(b)-off) < n {
			return frames, 0 // the rest has not arrived yet
		}
		payload := b[off : off+int(n)]
		b = b[off+int(n):]
		switch op {
		case websocket.CloseMessage:
			if len(payload) < 2 {
				return frames, websocket.CloseNoStatusReceived
			}
			return frames, int(binary.BigEndian.Uint16(payload))
		case websocket.TextMessage, 0: // 0: a continuation
			message = append(message, payload...)
			if !fin {
				continue
			}
			fs, err := wsproto.Decode(message)
			if err != nil {
				t.Fatalf("a server sent %q: %v", message, err)
			}
			frames = append(frames, fs...)
			message = nil
		}
	}
	return frames, 0
}

// wsSessionOwner returns the epoch and owner of the only WebSocket session
// in the PostgreSQL schema db.
func wsSessionOwner(t *testing.T, db string) (int64, string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var (
		epoch int64
		owner string
	)
	if err := conn.QueryRow(t.Context(), "SELECT epoch, owner FROM ws_sessions").Scan(&epoch, &owner); err != nil {
		t.Fatalf("the session in the store: %v", err)
	}
	return epoch, owner
}

// resumeRoundsEnv sets how many rounds TestDurableWSResumeLatency measures.
const resumeRoundsEnv = "FILEHUB_BENCH_RESUME"

// TestDurableWSResumeLatency measures how long a client takes to resume its
// session after the only server (SQLite) was killed with SIGKILL, per
// round: the server is killed while a message stream runs, restarted on
// the same data dir and port, and the client, retrying every few
// milliseconds, resumes. It logs, over the rounds, the time from the first
// TCP connection the new process accepted to the client's welcome (the
// server's share: upgrade, hello, loading and claiming the session), and
// from the restart (exec) to the welcome. CI runs one round, which checks
// that the client resumes each time; FILEHUB_BENCH_RESUME=N runs N for the
// figure in docs/benchmarks.md, and as many rounds against a server with
// --ws-sessions memory as the same run's baseline: there the reconnect
// gets a new session (nothing to load), as every reconnect did before
// issue 16.
func TestDurableWSResumeLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	rounds, bench := 1, false
	if v := os.Getenv(resumeRoundsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a number of rounds", resumeRoundsEnv, v)
		}
		rounds, bench = n, true
	}
	bin := buildBinary(t)
	durable := measureResume(t, bin, rounds, true)
	if t.Failed() {
		return
	}
	t.Logf("resume after SIGKILL (durable sessions), %d rounds:", rounds)
	t.Logf("  first accepted connection → welcome: %s", quantiles(durable.fromAccept))
	t.Logf("  restart (exec) → welcome:             %s", quantiles(durable.fromStart))
	if bench {
		memory := measureResume(t, bin, rounds, false, "--ws-sessions", "memory")
		t.Logf("baseline: a new session after SIGKILL (--ws-sessions memory), %d rounds:", rounds)
		t.Logf("  first accepted connection → welcome: %s", quantiles(memory.fromAccept))
		t.Logf("  restart (exec) → welcome:             %s", quantiles(memory.fromStart))
	}
}

// resumeTimes are the durations measureResume measured, one per round.
type resumeTimes struct {
	fromAccept, fromStart []time.Duration
}

// measureResume runs a server with flags, a client streaming messages to
// it, and rounds of SIGKILL and restart; it returns how long each
// reconnect took. With resume the client must resume its session each
// time and every message must be echoed once, in order; without (the
// baseline), messages in flight at a kill fail with ErrSessionLost and
// are not checked.
func measureResume(t *testing.T, bin string, rounds int, resume bool, flags ...string) resumeTimes {
	t.Helper()
	dataDir, addr := t.TempDir(), freeAddr(t)
	start := func() *Process { return StartProcess(t, bin, dataDir, append([]string{"--listen", addr}, flags...)...) }
	p := start()
	defer func() {
		// The baseline's server must not share the machine with this one.
		p.cmd.Process.Kill()
		<-p.exited
	}()
	// Retry at once and often: the figure is the server's, not the
	// client's backoff.
	ws, st := mustDialLoadClient(t, wsURL(addr), wsclient.Backoff{Initial: 2 * time.Millisecond, Max: 5 * time.Millisecond})
	defer ws.Close()
	var echoes *echoCheck
	if resume {
		echoes = startEchoCheck(t, ws)
	} else {
		go func() {
			for range ws.Messages() {
			}
		}()
	}

	// One sender streams messages throughout, so that every kill finds
	// frames in flight and unacknowledged state to resume.
	ctx, cancel := context.WithCancel(t.Context())
	var (
		sender sync.WaitGroup
		sent   atomic.Int64
		errs   = make(chan error, 1)
	)
	sender.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			err := ws.Send(ctx, loadMsg{0, i})
			switch {
			case err == nil:
				sent.Add(1)
			case ctx.Err() != nil:
				return
			case !resume && errors.Is(err, wsclient.ErrSessionLost):
			default:
				errs <- fmt.Errorf("message %d: %w", i, err)
				return
			}
		}
	})
	defer func() { cancel(); sender.Wait() }()
	failed := func() bool { return len(errs) > 0 || resume && st.sessionsLost.Load() > 0 }

	var times resumeTimes
	for round := range rounds {
		n := sent.Load()
		waitFor(t, "messages to flow", func() bool { return sent.Load() >= n+50 || failed() })
		welcomes := st.welcomes.Load()
		sigkill(t, p)
		restarted := time.Now()
		p = start()
		waitFor(t, "the client to reconnect", func() bool { return st.welcomes.Load() > welcomes || failed() })
		if failed() {
			break
		}
		welcome, dialed := st.lastWelcome()
		times.fromAccept = append(times.fromAccept, welcome.Sub(dialed))
		times.fromStart = append(times.fromStart, welcome.Sub(restarted))
		if testing.Verbose() {
			t.Logf("round %d: accept→welcome %s, restart→welcome %s", round, welcome.Sub(dialed), welcome.Sub(restarted))
		}
	}
	n := sent.Load()
	waitFor(t, "messages to flow after the last reconnect", func() bool { return sent.Load() >= n+50 || failed() })
	cancel()
	sender.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if resume {
		checkResumed(t, st, int64(rounds))
		echoes.wait(t, int(sent.Load()))
	}
	return times
}

// allThreadsStopped reports whether every thread of process pid is in the
// stopped state (T in /proc/<pid>/task/<tid>/stat).
func allThreadsStopped(t *testing.T, pid int) bool {
	t.Helper()
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			return false // a thread ended meanwhile: look again
		}
		// The state follows the command name, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' && b[i+2] != 't' {
			return false
		}
	}
	return true
}
