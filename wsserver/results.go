package wsserver

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// resultStore holds every session's cached request results, bounded per
// session in count (ResultCacheSize ids) and bytes (ResultCacheBytes), and
// in bytes over all sessions (ResultCacheTotalBytes), so that memory is
// bounded by configuration whatever clients ask for. One lock and one
// global least-recently-used list let a put in one session drop the oldest
// result of any session.
//
// A result dropped for bytes leaves its id behind (a tombstone, counted
// against ResultCacheSize but not against bytes): a re-sent request with
// that id is answered with an error instead of being run a second time.
// Only an id pushed out by ResultCacheSize is forgotten entirely.
type resultStore struct {
	maxCount, maxSessBytes, maxTotal int
	gauge                            *atomic.Int64 // mirrors bytes, for the metric

	mu     sync.Mutex
	global *list.List // of *cachedResult with a body, least recently used at the back
	bytes  int
}

// sessionResults is one session's part of the store, guarded by the
// store's lock.
type sessionResults struct {
	order *list.List // of *cachedResult (bodies and tombstones), most recent first
	byID  map[string]*list.Element
	bytes int
}

type cachedResult struct {
	sr   *sessionResults
	id   string
	body []byte        // the res frame after its seq; nil for a tombstone
	gel  *list.Element // in resultStore.global, nil for a tombstone
}

func newResultStore(maxCount, maxSessBytes, maxTotal int, gauge *atomic.Int64) *resultStore {
	return &resultStore{maxCount: maxCount, maxSessBytes: maxSessBytes, maxTotal: maxTotal, gauge: gauge, global: list.New()}
}

// get returns the cached result of request id in sr: the body, or gone
// for a tombstone.
func (rs *resultStore) get(sr *sessionResults, id string) (body []byte, found, gone bool) {
	if sr == nil {
		return nil, false, false
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	el, ok := sr.byID[id]
	if !ok {
		return nil, false, false
	}
	cr := el.Value.(*cachedResult)
	sr.order.MoveToFront(el)
	if cr.body == nil {
		return nil, true, true
	}
	rs.global.MoveToFront(cr.gel)
	return cr.body, true, false
}

// put caches body as the result of request id in sr (created if nil, and
// returned), then drops the oldest results until every bound holds.
func (rs *resultStore) put(sr *sessionResults, id string, body []byte) *sessionResults {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if sr == nil {
		sr = &sessionResults{order: list.New(), byID: make(map[string]*list.Element)}
	}
	if el, ok := sr.byID[id]; ok {
		rs.removeLocked(el.Value.(*cachedResult))
	}
	cr := &cachedResult{sr: sr, id: id, body: body}
	sr.byID[id] = sr.order.PushFront(cr)
	if len(body) > rs.maxSessBytes || len(body) > rs.maxTotal {
		cr.body = nil // too large to keep at all: a tombstone at once
	} else {
		cr.gel = rs.global.PushFront(cr)
		sr.bytes += len(body)
		rs.bytes += len(body)
	}
	defer func() { rs.gauge.Store(int64(rs.bytes)) }()
	for sr.order.Len() > rs.maxCount {
		rs.removeLocked(sr.order.Back().Value.(*cachedResult))
	}
	for el := sr.order.Back(); sr.bytes > rs.maxSessBytes && el != nil; el = el.Prev() {
		rs.dropBodyLocked(el.Value.(*cachedResult))
	}
	for rs.bytes > rs.maxTotal {
		rs.dropBodyLocked(rs.global.Back().Value.(*cachedResult))
	}
	return sr
}

// release forgets every result of sr (the session is gone).
func (rs *resultStore) release(sr *sessionResults) {
	if sr == nil {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for el := sr.order.Front(); el != nil; el = el.Next() {
		rs.dropBodyLocked(el.Value.(*cachedResult))
	}
	sr.order.Init()
	clear(sr.byID)
	rs.gauge.Store(int64(rs.bytes))
}

func (rs *resultStore) dropBodyLocked(cr *cachedResult) {
	if cr.body == nil {
		return
	}
	rs.global.Remove(cr.gel)
	cr.gel = nil
	cr.sr.bytes -= len(cr.body)
	rs.bytes -= len(cr.body)
	cr.body = nil
}

func (rs *resultStore) removeLocked(cr *cachedResult) {
	rs.dropBodyLocked(cr)
	cr.sr.order.Remove(cr.sr.byID[cr.id])
	delete(cr.sr.byID, cr.id)
}
