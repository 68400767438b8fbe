package wsserver_test

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/wsproto"
	"github.com/filehub/filehub/wsserver"
)

// httpTwins names the HTTP route that does what each WebSocket method does.
// Methods without one are listed in wsOnly.
var httpTwins = map[string]string{
	wsproto.MethodFilesList:     "GET /v1/files",
	wsproto.MethodFilesStat:     "GET /v1/files/{id}",
	wsproto.MethodFilesDelete:   "DELETE /v1/files/{id}",
	wsproto.MethodFilesRestore:  "POST /v1/files/{id}/restore",
	wsproto.MethodProvidersPush: "POST /v1/files/{id}/providers/{name}",
	wsproto.MethodCleanupRun:    "POST /v1/cleanup/runs",
}

// wsOnly are the methods with no HTTP equivalent: the live event stream.
var wsOnly = []string{wsproto.MethodEventsSubscribe, wsproto.MethodEventsUnsubscribe}

// pathAliases maps a route's path wildcard to its params field where the
// names differ (the wildcard is part of the route's metric label).
var pathAliases = map[string]string{"name": "provider"}

// TestParamsMatchHTTP checks that every parameter the HTTP API accepts is
// accepted over the WebSocket too: each method and its HTTP twin decode
// into the same package api type and need the same scope, every HTTP route
// with parameters has a twin, and every path wildcard is a field.
func TestParamsMatchHTTP(t *testing.T) {
	routes := make(map[string]httpapi.Route)
	for _, rt := range httpapi.New(nil, nil, httpapi.Config{}).Routes() {
		routes[rt.Pattern()] = rt
	}
	seen := make(map[string]bool)
	for _, m := range wsserver.Methods() {
		pattern, ok := httpTwins[m.Name]
		if !ok {
			if !slices.Contains(wsOnly, m.Name) {
				t.Errorf("method %s has no HTTP twin listed; add it to httpTwins or wsOnly", m.Name)
			}
			continue
		}
		seen[pattern] = true
		rt, ok := routes[pattern]
		if !ok {
			t.Errorf("%s: no route %s", m.Name, pattern)
			continue
		}
		if rt.Params != m.Params {
			t.Errorf("%s decodes %v, %s decodes %v: want one type", m.Name, m.Params, pattern, rt.Params)
		}
		if rt.Scope != m.Scope {
			t.Errorf("%s needs scope %q, %s %q", m.Name, m.Scope, pattern, rt.Scope)
		}
		fields := jsonFields(m.Params)
		for _, w := range regexp.MustCompile(`\{(\w+)\}`).FindAllStringSubmatch(rt.Path, -1) {
			name := w[1]
			if a, ok := pathAliases[name]; ok {
				name = a
			}
			if !slices.Contains(fields, name) {
				t.Errorf("%s: path parameter {%s} is not a field of %v (fields %v)", pattern, w[1], m.Params, fields)
			}
		}
		if m.Name == wsproto.MethodCleanupRun && !slices.Contains(fields, "provider_orphans") {
			t.Errorf("cleanup.run lacks provider_orphans: %v", fields)
		}
	}
	for pattern, rt := range routes {
		if rt.Params != nil && !seen[pattern] {
			t.Errorf("route %s takes %v but no WebSocket method does the same", pattern, rt.Params)
		}
	}
}

// jsonFields returns the JSON names of a struct type's fields.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}
