package api_test

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/internal/apitest"
)

// wireType pairs a schema of the document with the Go type that is put on
// or read from the wire for it.
type wireType struct {
	schema string
	typ    reflect.Type
	// request types are decoded by the server: their fields are all
	// optional, whatever their omitempty says.
	request bool
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// wireTypes lists every object schema of the document with its Go type.
var wireTypes = []wireType{
	{schema: "Health", typ: typeOf[api.Status]()},
	{schema: "File", typ: typeOf[filehub.File]()},
	{schema: "Upload", typ: typeOf[api.Upload]()},
	{schema: "UploadList", typ: typeOf[api.UploadList]()},
	{schema: "FileList", typ: typeOf[api.FilePage]()},
	{schema: "PushResult", typ: typeOf[api.PushResult]()},
	{schema: "CleanupRunRequest", typ: typeOf[api.CleanupRunRequest](), request: true},
	{schema: "CleanupReport", typ: typeOf[api.CleanupReport]()},
	{schema: "CleanupKindReport", typ: typeOf[api.CleanupKindReport]()},
	{schema: "CleanupTarget", typ: typeOf[api.CleanupTarget]()},
	{schema: "ProviderQuota", typ: typeOf[api.ProviderQuota]()},
	{schema: "CleanupRunList", typ: typeOf[api.CleanupRuns]()},
	{schema: "CleanupSettings", typ: typeOf[api.CleanupSettings]()},
	{schema: "AuditEntry", typ: typeOf[filehub.AuditEntry]()},
	{schema: "AuditPage", typ: typeOf[api.AuditPage]()},
	{schema: "Problem", typ: typeOf[api.Problem]()},
	{schema: "CheckRequest", typ: typeOf[api.CheckRequest](), request: true},
	{schema: "CheckReport", typ: typeOf[api.CheckReport]()},
	{schema: "CheckProblem", typ: typeOf[api.CheckProblem]()},
	{schema: "Stats", typ: typeOf[api.Stats]()},
}

// untyped are the object schemas with no Go type of their own, and why.
var untyped = map[string]string{
	"CleanupSettingsPatch": "decoded into a map of setting names; each is checked by cleanup.UpdateSettings",
	"JSONRPCMessage":       "MCP's JSON-RPC message, typed by the MCP SDK",
}

// TestOpenAPISchemasMatchGoTypes checks each schema against its Go type in
// both directions: the same JSON field names, required exactly when the Go
// field is always encoded (no omitempty), compatible JSON types, and no
// object schema left unchecked.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc := apitest.Load(t).Doc
	checked := map[string]bool{}
	for _, wt := range wireTypes {
		checked[wt.schema] = true
		t.Run(wt.schema, func(t *testing.T) {
			ref := doc.Components.Schemas[wt.schema]
			if ref == nil {
				t.Fatalf("no schema %s", wt.schema)
			}
			compareObject(t, wt.schema, ref.Value, wt.typ, wt.request)
		})
	}
	for name, ref := range doc.Components.Schemas {
		s := ref.Value
		if checked[name] || !s.Type.Is("object") {
			continue
		}
		if _, ok := untyped[name]; !ok {
			t.Errorf("schema %s has no Go type in wireTypes (nor a reason in untyped)", name)
		}
	}
}

// TestOpenAPIExamplesDecode decodes every example of a typed schema into
// its Go type with unknown fields refused, and requires each example to
// set every property the schema has: together they prove that the
// document names no field the Go type lacks.
func TestOpenAPIExamplesDecode(t *testing.T) {
	doc := apitest.Load(t).Doc
	for _, wt := range wireTypes {
		t.Run(wt.schema, func(t *testing.T) {
			s := doc.Components.Schemas[wt.schema].Value
			if len(s.Examples) == 0 {
				t.Fatalf("schema %s has no examples", wt.schema)
			}
			for i, ex := range s.Examples {
				b, err := json.Marshal(ex)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.VisitJSON(ex, openapi3.EnableJSONSchema2020()); err != nil {
					t.Errorf("example %d does not match its own schema: %v", i, err)
				}
				dec := json.NewDecoder(bytes.NewReader(b))
				dec.DisallowUnknownFields()
				if err := dec.Decode(reflect.New(wt.typ).Interface()); err != nil {
					t.Errorf("example %d does not decode into %v: %v\n%s", i, wt.typ, err, b)
				}
				m, _ := ex.(map[string]any)
				for name := range s.Properties {
					if _, ok := m[name]; !ok {
						t.Errorf("example %d lacks property %q", i, name)
					}
				}
			}
		})
	}
}

// jsonField is one field of a Go struct as encoding/json sees it.
type jsonField struct {
	typ       reflect.Type
	omitEmpty bool
}

// jsonFields returns the JSON fields of struct type t, embedded structs
// flattened.
func jsonFields(t reflect.Type) map[string]jsonField {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]jsonField{}
	for f := range t.Fields() {
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		o := strings.Split(opts, ",")
		out[name] = jsonField{typ: f.Type, omitEmpty: slices.Contains(o, "omitempty") || slices.Contains(o, "omitzero")}
	}
	return out
}

func compareObject(t *testing.T, name string, s *openapi3.Schema, typ reflect.Type, request bool) {
	t.Helper()
	fields := jsonFields(typ)
	for prop := range s.Properties {
		if _, ok := fields[prop]; !ok {
			t.Errorf("%s.%s: in the document, not in %v", name, prop, typ)
		}
	}
	for fname, f := range fields {
		p := s.Properties[fname]
		if p == nil {
			t.Errorf("%s.%s: in %v, not in the document", name, fname, typ)
			continue
		}
		if !request {
			req := slices.Contains(s.Required, fname)
			if req == f.omitEmpty {
				t.Errorf("%s.%s: required=%v in the document, but the Go field has omitempty=%v", name, fname, req, f.omitEmpty)
			}
		}
		if want := jsonType(f.typ); want != "" && p.Value.Type != nil && !p.Value.Type.Includes(want) {
			t.Errorf("%s.%s: type %v in the document, %s (%v) in Go", name, fname, *p.Value.Type, want, f.typ)
		}
	}
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
	textType      = reflect.TypeFor[encoding.TextMarshaler]()
)

// jsonType is the JSON Schema type encoding/json produces for t, or "" when
// t marshals itself in a way reflection cannot tell.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return "string"
	case t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType):
		return ""
	case t.Implements(textType) || reflect.PointerTo(t).Implements(textType):
		return "string"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return ""
}
