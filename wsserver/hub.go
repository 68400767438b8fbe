package wsserver

import (
	"context"
	"encoding/json"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// hubEvent is an event with its JSON encoding, shared by every session
// that sends it.
type hubEvent struct {
	id   int64
	json []byte
}

func encodeEvent(e *filehub.Event) (*hubEvent, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return &hubEvent{id: e.ID, json: b}, nil
}

// hub reads new events from the store once for all sessions and keeps the
// most recent ones in a ring.
type hub struct {
	srv     *Server
	wake    chan struct{}
	latest  atomic.Int64 // highest event id in the ring
	started atomic.Bool  // run has found the log's end: latest means something

	mu     sync.RWMutex
	ring   []*hubEvent // circular
	start  int
	n      int
	covers int64 // the ring holds every event with id > covers

	subMu sync.Mutex
	subs  map[*session]struct{}
	snap  []*session // reused by eachSubscriber
}

func newHub(srv *Server) *hub {
	h := &hub{
		srv:    srv,
		wake:   make(chan struct{}, 1),
		ring:   make([]*hubEvent, srv.cfg.EventBufferSize),
		covers: math.MaxInt64, // nothing until run has found the log's end
		subs:   make(map[*session]struct{}),
	}
	srv.metrics.hub.Store(h) // for filehub_events_lag_seconds
	return h
}

// lagProbeTimeout bounds the store read of one lag measurement (a scrape).
const lagProbeTimeout = 2 * time.Second

// lagSeconds measures the hub's lag behind the event log, at scrape time:
// how long the oldest event the hub has not read yet (and so not fanned
// out to any session) has been in the store, 0 when the hub is caught up.
// Reading the store here, rather than timing the hub's own polls, is what
// makes a stuck hub show: its lag keeps growing while its loop does
// nothing. It is NaN while the store cannot be read or before the hub has
// found the log's end. Event times come from the clock of the process that
// wrote the event, so clock skew between instances shows as lag (never
// below 0).
func (h *hub) lagSeconds() float64 {
	if !h.started.Load() {
		return math.NaN()
	}
	ctx, cancel := context.WithTimeout(context.Background(), lagProbeTimeout)
	defer cancel()
	events, err := h.srv.store.ListEvents(ctx, h.latest.Load(), 1)
	if err != nil {
		return math.NaN()
	}
	if len(events) == 0 {
		return 0
	}
	return max(0, time.Since(events[0].Time).Seconds())
}

func (h *hub) notify() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *hub) subscribe(ss *session) {
	h.subMu.Lock()
	h.subs[ss] = struct{}{}
	h.subMu.Unlock()
}

func (h *hub) unsubscribe(ss *session) {
	h.subMu.Lock()
	delete(h.subs, ss)
	h.subMu.Unlock()
}

// run reads new events until ctx ends: when notified, and every
// EventPollInterval for events written by other processes.
func (h *hub) run(ctx context.Context) {
	tick := time.NewTicker(h.srv.cfg.EventPollInterval)
	defer tick.Stop()
	for {
		_, latest, err := h.srv.store.EventBounds(ctx)
		if err == nil {
			h.mu.Lock()
			h.covers = latest
			h.mu.Unlock()
			h.latest.Store(latest)
			h.started.Store(true)
			break
		}
		if ctx.Err() != nil {
			return
		}
		h.srv.log.Warn("event hub cannot read the event log; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	for {
		h.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-tick.C:
			h.kickLagging()
		}
	}
}

// kickLagging starts the writer of every subscribed session that is behind
// the ring's latest event and has no writer running. A session is woken
// by publish when the hub reads new events and by its own traffic; this
// is the safety net under both, as the poll is under notifications: a
// wake-up lost while a subscription was being set up (the events arrived
// between the subscription's read of the log and its registration here)
// costs at most one poll interval, not the rest of the session.
func (h *hub) kickLagging() {
	latest := h.latest.Load()
	h.eachSubscriber(func(ss *session) {
		ss.mu.Lock()
		if ss.subscribed && ss.evCursor < latest && ss.conn != nil {
			ss.kickLocked(ss.conn)
		}
		ss.mu.Unlock()
	})
}

// poll reads every event after the ring's latest into the ring and wakes
// the subscribers.
func (h *hub) poll(ctx context.Context) {
	if h.skipUnsubscribed(ctx) {
		return
	}
	const page = 1000
	for {
		after := h.latest.Load()
		events, err := h.srv.store.ListEvents(ctx, after, page)
		if err != nil {
			if ctx.Err() == nil {
				h.srv.log.Warn("event hub cannot read new events", "err", err)
			}
			return
		}
		if len(events) == 0 {
			return
		}
		h.mu.Lock()
		for _, e := range events {
			he, err := encodeEvent(e)
			if err != nil {
				// Cannot happen for the plain structs of an Event; skipping it
				// would lose it silently, so stop here and retry later.
				h.mu.Unlock()
				h.srv.log.Error("cannot encode event", "id", e.ID, "err", err)
				return
			}
			h.pushLocked(he)
		}
		h.mu.Unlock()
		h.latest.Store(events[len(events)-1].ID)
		h.publish()
		if len(events) < page {
			return
		}
	}
}

// skipUnsubscribed moves the hub past the log's end without reading or
// encoding the events, while no session subscribes: with nobody to send
// them to, filling the ring cost a few percent of the server's CPU under
// small uploads (issue 14). covers moves with it, so a session that
// subscribes later with an older cursor reads the skipped events from the
// store (fillEventsLocked, readEvents), as it does for events trimmed from
// the ring; one that subscribes while this runs is woken by the publish.
// It returns false, having changed nothing, when a session subscribes or
// the store cannot be read (poll then reads as usual).
func (h *hub) skipUnsubscribed(ctx context.Context) bool {
	h.subMu.Lock()
	idle := len(h.subs) == 0
	h.subMu.Unlock()
	if !idle {
		return false
	}
	_, latest, err := h.srv.store.EventBounds(ctx)
	if err != nil {
		return false
	}
	if latest <= h.latest.Load() {
		return true
	}
	h.mu.Lock()
	clear(h.ring)
	h.start, h.n = 0, 0
	h.covers = latest
	h.mu.Unlock()
	h.latest.Store(latest)
	h.publish()
	return true
}

func (h *hub) pushLocked(e *hubEvent) {
	size := len(h.ring)
	if h.n == size {
		h.covers = h.ring[h.start].id
		h.ring[h.start] = nil
		h.start = (h.start + 1) % size
		h.n--
	}
	h.ring[(h.start+h.n)%size] = e
	h.n++
}

// publish wakes every subscribed session.
func (h *hub) publish() {
	h.eachSubscriber(func(ss *session) { ss.kick() })
}

// eachSubscriber calls fn for every subscribed session, on a snapshot taken
// under subMu so that fn may lock the session. Only the hub goroutine calls
// it (publish, kickLagging), so the reused snapshot needs no lock.
func (h *hub) eachSubscriber(fn func(ss *session)) {
	h.subMu.Lock()
	snap := h.snap[:0]
	for ss := range h.subs {
		snap = append(snap, ss)
	}
	h.snap = snap
	h.subMu.Unlock()
	for i, ss := range snap {
		fn(ss)
		snap[i] = nil
	}
}

// after appends to dst up to limit ring events with id > cursor. ok is
// false if the ring does not hold every event after cursor.
func (h *hub) after(cursor int64, limit int, dst []*hubEvent) (_ []*hubEvent, ok bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if cursor < h.covers {
		return dst, false
	}
	size := len(h.ring)
	at := func(i int) *hubEvent { return h.ring[(h.start+i)%size] }
	i := sort.Search(h.n, func(i int) bool { return at(i).id > cursor })
	for ; i < h.n && limit > 0; i++ {
		dst = append(dst, at(i))
		limit--
	}
	return dst, true
}

// fillEventsLocked moves events from the ring into the outbox while the
// event window has room. It returns true if the session is behind the ring
// and must read the store (readEvents).
func (ss *session) fillEventsLocked() bool {
	if !ss.subscribed {
		return false
	}
	h := ss.srv.hub
	target := max(ss.evTarget, h.latest.Load())
	if ss.evCursor >= target {
		return false
	}
	room := ss.srv.cfg.OutboxMaxFrames - ss.evCount
	if room <= 0 {
		ss.markFullLocked()
		return false
	}
	var buf [64]*hubEvent
	events, ok := h.after(ss.evCursor, min(room, len(buf)), buf[:0])
	if !ok {
		return true
	}
	ss.appendEventsLocked(events)
	// The ring ends at what the hub has read; events the subscriber knows
	// of beyond that (from subscribing) come from the store.
	return len(events) == 0 && ss.evCursor < ss.evTarget
}

func (ss *session) appendEventsLocked(events []*hubEvent) {
	for _, e := range events {
		ss.outSeq++
		ss.out = append(ss.out, outFrame{seq: ss.outSeq, ev: e})
		ss.evCount++
		ss.evCursor = e.id
	}
	if len(events) > 0 {
		ss.markDirtyLocked()
	}
	ss.srv.metrics.outboxDepth.Add(int64(len(events)))
}

// readEvents reads up to room events after cursor from the store, for a
// session behind the ring. It runs on the writer, without the lock, and
// returns false if the writer should stop (the store failed, or the session
// was dropped); a retry is then scheduled.
func (ss *session) readEvents(c *conn, cursor int64, room int) bool {
	srv := ss.srv
	if room <= 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), srv.cfg.SlowConsumerTimeout)
	defer cancel()
	events, err := srv.store.ListEvents(ctx, cursor, min(room, 1000))
	if err == nil && (len(events) == 0 || events[0].ID > cursor+1) {
		// Either the end of the log or a hole: tell them apart, since a
		// trimmed range must never be skipped silently.
		var oldest, latest int64
		oldest, latest, err = srv.store.EventBounds(ctx)
		if err == nil && cursor+1 < oldest {
			srv.log.Warn("event subscriber fell behind the trimmed log; dropping its session so the client re-subscribes and sees the gap",
				"session_id", ss.id, "after", cursor, "oldest", oldest)
			srv.dropSession(ss)
			c.closeNow(wsproto.CloseSlowConsumer, "event subscription fell behind the retained log")
			return false
		}
		if err == nil && len(events) == 0 {
			ss.mu.Lock()
			if ss.evCursor == cursor {
				// Nothing more in the log: do not ask again until the hub
				// knows of newer events.
				ss.evTarget = min(ss.evTarget, latest, cursor)
			}
			ss.mu.Unlock()
			return true
		}
	}
	if err != nil {
		srv.log.Warn("cannot read events for a subscriber; retrying", "session_id", ss.id, "err", err)
		time.AfterFunc(srv.cfg.EventPollInterval, ss.kick)
		return false
	}
	encoded := make([]*hubEvent, 0, len(events))
	for _, e := range events {
		he, err := encodeEvent(e)
		if err != nil {
			srv.log.Error("cannot encode event", "id", e.ID, "err", err)
			time.AfterFunc(srv.cfg.EventPollInterval, ss.kick)
			return false
		}
		encoded = append(encoded, he)
	}
	ss.mu.Lock()
	if ss.subscribed && ss.evCursor == cursor && ss.conn == c {
		ss.appendEventsLocked(encoded)
	}
	ss.mu.Unlock()
	return true
}
