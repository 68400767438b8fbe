// Package api declares filehub's wire types once: every request and
// response body of the HTTP API, the params and results of the WebSocket
// RPCs, the CLI's --json output, the RFC 9457 problem document and the one
// table that maps filehub error codes to HTTP statuses (errors.go); and the
// HTTP API's OpenAPI 3.1 document (openapi.yaml, embedded by openapi.go),
// which tests hold to these types and to the running server.
//
// It imports only the standard library and the root package, so that the
// Go clients (client/, wsclient/) can use it without linking any server
// code. Services keep returning their domain types (cleanup.Report,
// providers.Result, …); the transports translate at the edge, each with one
// function named beside the domain type (for example cleanup.ReportWire,
// cleanup.RunOptionsFrom).
//
// JSON field names here are the protocol: clients in the field depend on
// them, so a rename is a breaking change.
package api
