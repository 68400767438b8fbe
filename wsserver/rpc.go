package wsserver

import (
	"context"
	"encoding/json"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// rpcTimeout bounds one request unless its method says otherwise (see
// call).
const rpcTimeout = 30 * time.Second

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
	results := ss.results
	key := ss.key
	ss.mu.Unlock()
	body, cached, gone := ss.srv.results.get(results, f.ID)
	// A request of a durable session that started but whose result was
	// never saved (pendingResult) runs again in replay mode if that is
	// safe: it looks at the state its first run may have left before
	// acting (see replayable). A result dropped for space (gone) ran to
	// its end: it is never run again.
	pending := cached && !gone && len(body) == 0
	replay := pending && ss.srv.durable() && replayable[f.Method]
	var sub *subscription
	switch {
	case gone || pending && !replay:
		// Ran once; its result was dropped to keep memory within the
		// configured bounds. Running it again would break at-most-once.
		m.rpcs.WithLabelValues(methodLabel(f.Method), "gone").Inc()
		body = resBody(f.ID, nil, &rpcError{code: filehub.ECONFLICT,
			msg: "this request already ran; its result is no longer kept (see docs/protocol.md)"})
	case cached && !replay:
		m.rpcs.WithLabelValues(methodLabel(f.Method), "cached").Inc()
	default:
		if replay {
			m.rpcs.WithLabelValues(methodLabel(f.Method), "replayed").Inc()
			ctx = withReplay(ctx)
		} else if ss.srv.durable() && sideEffects[f.Method] {
			// Save the id as started (pendingResult) before running the
			// request: if the process dies after the request's effect
			// committed but before its result was saved, the client's
			// replay finds it and runs in replay mode, or is refused,
			// instead of running the request a second time
			// (docs/protocol.md §5.4).
			if !ss.saveBefore(ctx, f.ID) {
				return
			}
		}
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
	if !cached || replay {
		ss.results = ss.srv.results.put(ss, ss.results, f.ID, body)
	}
	ss.advanceInLocked(f.Seq)
	ss.enqueueLocked(wsproto.TypeRes, body)
	ss.markDirtyLocked()
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

// sideEffects lists the methods whose effect must not be repeated: with
// durable sessions their request id is saved before they run.
var sideEffects = map[string]bool{
	wsproto.MethodFilesDelete:   true,
	wsproto.MethodFilesRestore:  true,
	wsproto.MethodCleanupRun:    true,
	wsproto.MethodProvidersPush: true,
}

// pendingResult is the cached result of a request with effects that has
// started: saved (durable sessions) before the request runs, replaced by
// its result when it ends. It is empty, which no result is (a res tail
// starts with `,"id":`), and not nil, which is a result dropped for space.
var pendingResult = []byte{}

// replayable lists the side-effect methods that a durable session runs
// again when a replayed request finds it started but without a result —
// the process that ran it died between saving pendingResult and saving the
// result, or
// another instance took the session over meanwhile — instead of answering
// conflict. Each is exactly-once by itself in replay mode: files.delete and
// files.restore return the file as it is if it is already deleted (or
// live), and providers.push is once per content anyway (a second push finds
// the first one's copy, reused: true). cleanup.run is not: a run cannot
// tell whether it ran.
var replayable = map[string]bool{
	wsproto.MethodFilesDelete:   true,
	wsproto.MethodFilesRestore:  true,
	wsproto.MethodProvidersPush: true,
}

type replayKey struct{}

// withReplay marks ctx as the replay of a request that may have run.
func withReplay(ctx context.Context) context.Context {
	return context.WithValue(ctx, replayKey{}, true)
}

// isReplay reports whether ctx runs the replay of a request that may have
// run already.
func isReplay(ctx context.Context) bool {
	v, _ := ctx.Value(replayKey{}).(bool)
	return v
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
