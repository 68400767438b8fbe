package wsserver

import (
	"container/list"
	"sync"
	"sync/atomic"

	"github.com/filehub/filehub"
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
	// record makes every change a resultOp of its session, and dirty
	// marks that session for the committer (durable sessions).
	record bool
	dirty  func(*session)

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

	// With durable sessions: the changes since the session's last save,
	// oldest first, and the session to mark dirty when a put in another
	// session drops one of these results.
	ss  *session
	ops []resultOp
}

// resultOp is a change to a session's cached results, to be saved.
type resultOp struct {
	id   string
	body []byte // nil: a tombstone
	drop bool   // forgotten entirely
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

// put caches body as the result of request id in the results sr of
// session ss (created if nil, and returned), then drops the oldest results
// until every bound holds. A nil body puts a tombstone.
func (rs *resultStore) put(ss *session, sr *sessionResults, id string, body []byte) *sessionResults {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.putLocked(ss, sr, id, body, rs.record)
}

// load puts the results of a session read from the store, oldest first,
// without recording them as changes (they are saved already).
func (rs *resultStore) load(ss *session, results []filehub.WSResult) *sessionResults {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var sr *sessionResults
	for _, r := range results {
		sr = rs.putLocked(ss, sr, r.ID, r.Body, false)
	}
	return sr
}

func (rs *resultStore) putLocked(ss *session, sr *sessionResults, id string, body []byte, record bool) *sessionResults {
	if sr == nil {
		sr = &sessionResults{order: list.New(), byID: make(map[string]*list.Element), ss: ss}
	}
	if el, ok := sr.byID[id]; ok {
		rs.removeLocked(el.Value.(*cachedResult))
	}
	cr := &cachedResult{sr: sr, id: id, body: body}
	sr.byID[id] = sr.order.PushFront(cr)
	if body == nil || len(body) > rs.maxSessBytes || len(body) > rs.maxTotal {
		cr.body = nil // too large to keep at all: a tombstone at once
	} else {
		cr.gel = rs.global.PushFront(cr)
		sr.bytes += len(body)
		rs.bytes += len(body)
	}
	if record {
		sr.ops = append(sr.ops, resultOp{id: id, body: cr.body})
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

// takeOps returns the changes of sr since they were last taken, as the
// puts and drops of a WSSessionUpdate (the last change of an id wins).
func (rs *resultStore) takeOps(sr *sessionResults) (ops []resultOp) {
	if sr == nil {
		return nil
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	ops, sr.ops = sr.ops, nil
	return ops
}

// restoreOps puts back ops taken for a save that failed, before any
// change made since.
func (rs *resultStore) restoreOps(sr *sessionResults, ops []resultOp) {
	if sr == nil || len(ops) == 0 {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	sr.ops = append(ops, sr.ops...)
}

// updateResults turns ops into the PutResults and DropResults of u.
func updateResults(u *filehub.WSSessionUpdate, ops []resultOp) {
	if len(ops) == 0 {
		return
	}
	last := make(map[string]int, len(ops))
	for i, op := range ops {
		last[op.id] = i
	}
	for i, op := range ops {
		if last[op.id] != i {
			continue
		}
		if op.drop {
			u.DropResults = append(u.DropResults, op.id)
		} else {
			u.PutResults = append(u.PutResults, filehub.WSResult{ID: op.id, Body: op.body})
		}
	}
}

// release forgets every result of sr (the session is gone).
func (rs *resultStore) release(sr *sessionResults) {
	if sr == nil {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	sr.ss, sr.ops = nil, nil // nothing more to save
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
	rs.recordLocked(cr.sr, resultOp{id: cr.id})
}

func (rs *resultStore) removeLocked(cr *cachedResult) {
	rs.dropBodyLocked(cr)
	cr.sr.order.Remove(cr.sr.byID[cr.id])
	delete(cr.sr.byID, cr.id)
	rs.recordLocked(cr.sr, resultOp{id: cr.id, drop: true})
}

// recordLocked records op for a save of sr's session, unless the session
// is gone (release) or sessions are in memory.
func (rs *resultStore) recordLocked(sr *sessionResults, op resultOp) {
	if !rs.record || sr.ss == nil {
		return
	}
	sr.ops = append(sr.ops, op)
	if rs.dirty != nil {
		rs.dirty(sr.ss)
	}
}
