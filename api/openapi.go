package api

import _ "embed" // the OpenAPI document is compiled into the binary

// The document is written by hand in openapi.yaml, the source of the HTTP
// API's contract (see docs/decisions.md, "The OpenAPI document"); openapi.json
// is generated from it at build time by
//
//	go test ./api -run TestOpenAPIJSONUpToDate -update
//
// and that test fails whenever the two differ. Converting at build time keeps
// this package free of a YAML library and the daemon free of work at start-up.
var (
	//go:embed openapi.yaml
	openapiYAML []byte
	//go:embed openapi.json
	openapiJSON []byte
)

// OpenAPIYAML returns the OpenAPI 3.1 document of the HTTP API as YAML.
// The slice is shared: callers must not modify it.
func OpenAPIYAML() []byte { return openapiYAML }

// OpenAPIJSON returns the same document as JSON. The slice is shared:
// callers must not modify it.
func OpenAPIJSON() []byte { return openapiJSON }
