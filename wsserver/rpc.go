package wsserver

import (
	"container/list"
	"context"
	"encoding/json"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// rpcTimeout bounds one request unless its method says otherwise (see
// call).
const rpcTimeout = 30 * time.Second

// resultCache is a session's bounded LRU of request results by request id.
type resultCache struct {
	max   int
	order *list.List // of *cachedResult, most recent first
	byID  map[string]*list.Element
}

type cachedResult struct {
	id   string
	body []byte // the res frame after its seq
}

func (rc *resultCache) get(id string) ([]byte, bool) {
	if rc == nil {
		return nil, false
	}
	el, ok := rc.byID[id]
	if !ok {
		return nil, false
	}
	rc.order.MoveToFront(el)
	return el.Value.(*cachedResult).body, true
}

func (rc *resultCache) put(id string, body []byte) {
	if el, ok := rc.byID[id]; ok {
		el.Value.(*cachedResult).body = body
		rc.order.MoveToFront(el)
		return
	}
	rc.byID[id] = rc.order.PushFront(&cachedResult{id: id, body: body})
	for rc.order.Len() > rc.max {
		el := rc.order.Back()
		rc.order.Remove(el)
		delete(rc.byID, el.Value.(*cachedResult).id)
	}
}

// subscription is what a successful events.subscribe changes, applied
// together with queueing its res so that no event frame precedes it.
type subscription struct {
	on            bool
	after, latest int64
}

// request runs one in-order req frame and queues its res. Requests of a
// session run one at a time (session.procMu), and the result is cached
// before the next frame is processed, so a request id that arrives again
// always finds the result of the first run: it runs at most once.
func (ss *session) request(ctx context.Context, f *wsproto.Frame) {
	m := ss.srv.metrics
	ss.mu.Lock()
	body, cached := ss.results.get(f.ID)
	key := ss.key
	ss.mu.Unlock()
	var sub *subscription
	if cached {
		m.rpcs.WithLabelValues(methodLabel(f.Method), "cached").Inc()
	} else {
		var result any
		var err error
		result, sub, err = ss.call(ctx, key, f.Method, f.Params)
		body = resBody(f.ID, result, err)
		code := filehub.ErrorCode(err)
		if code == "" {
			code = "ok"
		} else if err != nil && code == filehub.EINTERNAL {
			ss.srv.log.Error("websocket request failed", "session_id", ss.id, "method", f.Method, "err", err)
		}
		m.rpcs.WithLabelValues(methodLabel(f.Method), code).Inc()
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.dropped {
		return
	}
	if !cached {
		if ss.results == nil {
			ss.results = &resultCache{max: ss.srv.cfg.ResultCacheSize, order: list.New(), byID: make(map[string]*list.Element)}
		}
		ss.results.put(f.ID, body)
	}
	ss.advanceInLocked(f.Seq)
	ss.enqueueLocked(wsproto.TypeRes, body)
	if sub != nil {
		ss.subscribed = sub.on
		if sub.on {
			ss.evCursor, ss.evTarget = sub.after, sub.latest
			ss.srv.hub.subscribe(ss)
		} else {
			ss.srv.hub.unsubscribe(ss)
		}
	}
}

// rpcError is an error with a protocol code that filehub's codes lack.
type rpcError struct{ code, msg string }

func (e *rpcError) Error() string { return e.code + ": " + e.msg }

// resBody encodes the tail of a res frame: `,"id":…,"result":…}` or
// `,"id":…,"error":{…}}`.
func resBody(id string, result any, err error) []byte {
	idJSON, _ := json.Marshal(id) // a string always encodes
	b := append([]byte(`,"id":`), idJSON...)
	if err == nil {
		r, mErr := json.Marshal(result)
		if mErr == nil {
			b = append(b, `,"result":`...)
			b = append(b, r...)
			return append(b, '}')
		}
		err = filehub.WrapError(filehub.EINTERNAL, "cannot encode the result", mErr)
	}
	eb := wsproto.ErrorBody{Code: filehub.ErrorCode(err), Message: filehub.ErrorMessage(err)}
	if re, ok := err.(*rpcError); ok {
		eb = wsproto.ErrorBody{Code: re.code, Message: re.msg}
	}
	e, _ := json.Marshal(eb)
	b = append(b, `,"error":`...)
	b = append(b, e...)
	return append(b, '}')
}
