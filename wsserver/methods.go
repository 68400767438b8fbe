package wsserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// methods is the one table of the RPC methods: call dispatches by it, the
// rpcs metric labels by it and every method's scope is checked from it.
// Each handler is in the methods_*.go file of what it calls; each decodes
// its params into the package api type its HTTP route uses too.
var methods = []method{
	rpc(wsproto.MethodFilesList, filehub.ScopeRead, (*session).filesList),
	rpc(wsproto.MethodFilesStat, filehub.ScopeRead, (*session).filesStat),
	rpc(wsproto.MethodFilesDelete, filehub.ScopeWrite, (*session).filesDelete),
	rpc(wsproto.MethodFilesRestore, filehub.ScopeWrite, (*session).filesRestore),
	rpc(wsproto.MethodEventsSubscribe, filehub.ScopeRead, (*session).eventsSubscribe),
	rpc(wsproto.MethodEventsUnsubscribe, filehub.ScopeRead, (*session).eventsUnsubscribe),
	// A misspelt dry_run must not start a real run: unknown fields are
	// refused, as by the HTTP route.
	rpc(wsproto.MethodCleanupRun, filehub.ScopeAdmin, (*session).cleanupRun).strict().timeout(cleanupTimeout),
	rpc(wsproto.MethodProvidersPush, filehub.ScopeWrite, (*session).providersPush).timeout(pushTimeout),
}

// methodByName indexes methods.
var methodByName = func() map[string]*method {
	m := make(map[string]*method, len(methods))
	for i := range methods {
		m[methods[i].name] = &methods[i]
	}
	return m
}()

// method is one RPC method: its name, the scope a key needs to call it, and
// its handler, which receives the decoded params.
type method struct {
	name  string
	scope filehub.Scope
	// deadline bounds a request; rpcTimeout unless the method says.
	deadline time.Duration
	// params is the type params decode into.
	params reflect.Type
	// disallowUnknown refuses params with unknown fields.
	disallowUnknown bool
	handle          func(ss *session, ctx context.Context, params json.RawMessage, strict bool) (any, *subscription, error)
}

// rpc makes a table entry for a handler taking params of type P.
func rpc[P any](name string, scope filehub.Scope, h func(ss *session, ctx context.Context, p *P) (any, *subscription, error)) method {
	return method{
		name: name, scope: scope, deadline: rpcTimeout, params: reflect.TypeFor[P](),
		handle: func(ss *session, ctx context.Context, raw json.RawMessage, strict bool) (any, *subscription, error) {
			var p P
			if len(raw) > 0 && string(raw) != "null" {
				dec := json.NewDecoder(bytes.NewReader(raw))
				if strict {
					dec.DisallowUnknownFields()
				}
				if err := dec.Decode(&p); err != nil {
					return nil, nil, filehub.Errorf(filehub.EINVALID, "bad params for %s: %v", name, err)
				}
			}
			return h(ss, ctx, &p)
		},
	}
}

func (m method) strict() method { m.disallowUnknown = true; return m }

func (m method) timeout(d time.Duration) method { m.deadline = d; return m }

// MethodInfo describes one RPC method, for documentation and tests.
type MethodInfo struct {
	Name  string
	Scope filehub.Scope
	// Params is the type the params decode into (a package api type, or
	// struct{} for none).
	Params reflect.Type
}

// Methods lists the RPC methods the server answers, from the one table.
func Methods() []MethodInfo {
	out := make([]MethodInfo, len(methods))
	for i, m := range methods {
		out[i] = MethodInfo{Name: m.name, Scope: m.scope, Params: m.params}
	}
	return out
}

// methodLabel keeps the metric's label set bounded: the method's name if
// the table has it, else "unknown".
func methodLabel(name string) string {
	if _, ok := methodByName[name]; ok {
		return name
	}
	return "unknown"
}

// call runs one method with the key's scopes. The request runs detached
// from the connection, within the method's deadline: once started it runs
// to completion so that its result is recorded (it must run at most once,
// and a client that reconnects gets it).
func (ss *session) call(ctx context.Context, key *filehub.APIKey, name string, params json.RawMessage) (any, *subscription, error) {
	m, ok := methodByName[name]
	if !ok {
		return nil, nil, &rpcError{wsproto.CodeUnknownMethod, fmt.Sprintf("unknown method %q", name)}
	}
	if !key.Has(m.scope) {
		return nil, nil, filehub.Errorf(filehub.EFORBIDDEN, "this key lacks the %q scope", m.scope)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.deadline)
	defer cancel()
	ctx = filehub.WithActor(ctx, key.ID) // for the audit log of deletes, restores and runs
	return m.handle(ss, ctx, params, m.disallowUnknown)
}
