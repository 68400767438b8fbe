package wsserver

import (
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// rpcTimeout bounds one request. Requests do not end with the connection:
// once started, a request runs to completion so that its result is
// recorded (it must run at most once, and a client that reconnects gets it).
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
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rpcTimeout)
		var result any
		var err error
		result, sub, err = ss.call(rctx, key, f.Method, f.Params)
		cancel()
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

// methodLabel keeps the metric's label set bounded.
func methodLabel(m string) string {
	switch m {
	case wsproto.MethodFilesList, wsproto.MethodFilesStat, wsproto.MethodFilesDelete, wsproto.MethodFilesRestore,
		wsproto.MethodEventsSubscribe, wsproto.MethodEventsUnsubscribe, MethodCleanupRun, MethodProvidersPush:
		return m
	}
	return "unknown"
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

type idParams struct {
	ID string `json:"id"`
}

// call runs one method with the key's scopes.
func (ss *session) call(ctx context.Context, key *filehub.APIKey, method string, params json.RawMessage) (any, *subscription, error) {
	ctx = filehub.WithActor(ctx, key.ID) // for the audit log of deletes and restores
	if method == MethodCleanupRun {
		res, err := ss.runCleanup(ctx, key, params)
		return res, nil, err
	}
	if method == MethodProvidersPush {
		res, err := ss.pushToProvider(ctx, key, params)
		return res, nil, err
	}
	need := filehub.ScopeRead
	switch method {
	case wsproto.MethodFilesList, wsproto.MethodFilesStat, wsproto.MethodEventsSubscribe, wsproto.MethodEventsUnsubscribe:
	case wsproto.MethodFilesDelete, wsproto.MethodFilesRestore:
		need = filehub.ScopeWrite
	default:
		return nil, nil, &rpcError{wsproto.CodeUnknownMethod, fmt.Sprintf("unknown method %q", method)}
	}
	if !key.Has(need) {
		return nil, nil, filehub.Errorf(filehub.EFORBIDDEN, "this key lacks the %q scope", need)
	}
	decode := func(v any) error {
		if len(params) == 0 || string(params) == "null" {
			return nil
		}
		if err := json.Unmarshal(params, v); err != nil {
			return filehub.Errorf(filehub.EINVALID, "bad params for %s: %v", method, err)
		}
		return nil
	}
	fileID := func() (string, error) {
		var p idParams
		if err := decode(&p); err != nil {
			return "", err
		}
		if p.ID == "" {
			return "", filehub.Errorf(filehub.EINVALID, "params.id is required")
		}
		return p.ID, nil
	}
	svc := ss.srv.files
	switch method {
	case wsproto.MethodFilesList:
		var p struct {
			Limit  int    `json:"limit"`
			Cursor string `json:"cursor"`
		}
		if err := decode(&p); err != nil {
			return nil, nil, err
		}
		if p.Limit < 0 {
			return nil, nil, filehub.Errorf(filehub.EINVALID, "params.limit must not be negative")
		}
		list, next, err := svc.List(ctx, p.Limit, p.Cursor)
		if err != nil {
			return nil, nil, err
		}
		if list == nil {
			list = []*filehub.File{}
		}
		return struct {
			Files      []*filehub.File `json:"files"`
			NextCursor string          `json:"next_cursor,omitempty"`
		}{list, next}, nil, nil
	case wsproto.MethodFilesStat, wsproto.MethodFilesDelete, wsproto.MethodFilesRestore:
		id, err := fileID()
		if err != nil {
			return nil, nil, err
		}
		var f *filehub.File
		switch method {
		case wsproto.MethodFilesStat:
			f, err = svc.Get(ctx, id)
		case wsproto.MethodFilesDelete:
			f, err = svc.Delete(ctx, id)
		default:
			f, err = svc.Restore(ctx, id)
		}
		if err != nil {
			return nil, nil, err
		}
		return f, nil, nil
	case wsproto.MethodEventsSubscribe:
		var p struct {
			After *int64 `json:"after"`
		}
		if err := decode(&p); err != nil {
			return nil, nil, err
		}
		after := int64(0)
		if p.After != nil {
			after = *p.After
		}
		if after < 0 {
			return nil, nil, filehub.Errorf(filehub.EINVALID, "params.after must not be negative")
		}
		oldest, latest, err := ss.srv.store.EventBounds(ctx)
		if err != nil {
			return nil, nil, err
		}
		// "after": 0 means "from the oldest retained event": never a gap.
		if after > 0 && after+1 < oldest {
			return nil, nil, &rpcError{wsproto.CodeGap,
				"events after " + strconv.FormatInt(after, 10) + " have been trimmed; the oldest retained event is " + strconv.FormatInt(oldest, 10)}
		}
		return struct {
				After  int64 `json:"after"`
				Oldest int64 `json:"oldest"`
				Latest int64 `json:"latest"`
			}{after, oldest, latest},
			// The cursor skips what was trimmed before the oldest retained
			// event, so that catching up does not mistake it for a gap.
			&subscription{on: true, after: max(after, oldest-1), latest: latest}, nil
	default: // events.unsubscribe
		return struct{}{}, &subscription{on: false}, nil
	}
}
