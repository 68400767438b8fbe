package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/internal/apitest"
)

var update = flag.Bool("update", false, "rewrite api/openapi.json from api/openapi.yaml")

// TestOpenAPIJSONUpToDate proves that the JSON document served at
// /v1/openapi.json is the YAML one, converted: run with -update after
// editing openapi.yaml.
func TestOpenAPIJSONUpToDate(t *testing.T) {
	want, err := yamlToJSON(api.OpenAPIYAML())
	if err != nil {
		t.Fatalf("convert openapi.yaml: %v", err)
	}
	if *update {
		if err := os.WriteFile("openapi.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(api.OpenAPIJSON(), want) {
		t.Fatal("api/openapi.json is not api/openapi.yaml converted: run `go test ./api -run TestOpenAPIJSONUpToDate -update`")
	}
}

// TestOpenAPIValid loads the document with kin-openapi and validates it
// against the OpenAPI 3.1 rules (schemas, references, examples' shape).
func TestOpenAPIValid(t *testing.T) {
	d := apitest.Load(t)
	if d.Doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", d.Doc.OpenAPI)
	}
}

// yamlToJSON converts a YAML document to indented JSON. Mapping keys become
// strings; JSON sorts them, which is fine for a machine-read document.
func yamlToJSON(y []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		return nil, err
	}
	v, err := jsonable(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func jsonable(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			e, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			v[k] = e
		}
		return v, nil
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("mapping key %v (%T) is not a string: quote it", k, k)
			}
			e, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			m[ks] = e
		}
		return m, nil
	case []any:
		for i, e := range v {
			e, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			v[i] = e
		}
		return v, nil
	}
	return v, nil
}
