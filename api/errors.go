package api

import (
	"encoding/json"
	"net/http"

	"github.com/filehub/filehub"
)

// ErrorInfo is one row of the error table: how an error with a filehub
// code is sent over HTTP.
type ErrorInfo struct {
	Code   string // a filehub E* code
	Status int    // the HTTP status
	Title  string // the problem's title: the status text
}

// Errors is the one table mapping every filehub error code to its HTTP
// status and problem title. The HTTP API, the WebSocket upgrade refusals and
// both Go clients read it; a new code is one line here (a test checks that
// every E* constant of the root package has a row).
var Errors = []ErrorInfo{
	{filehub.EINVALID, http.StatusBadRequest, ""},
	{filehub.EUNAUTHORIZED, http.StatusUnauthorized, ""},
	{filehub.EFORBIDDEN, http.StatusForbidden, ""},
	{filehub.ENOTFOUND, http.StatusNotFound, ""},
	{filehub.ECONFLICT, http.StatusConflict, ""},
	{filehub.ETIMEOUT, http.StatusRequestTimeout, ""},
	{filehub.ETOOLARGE, http.StatusRequestEntityTooLarge, ""},
	{filehub.EUNSUPPORTED, http.StatusUnsupportedMediaType, ""},
	{filehub.ERANGE, http.StatusRequestedRangeNotSatisfiable, ""},
	{filehub.ERATELIMIT, http.StatusTooManyRequests, ""},
	{filehub.EUNAVAILABLE, http.StatusServiceUnavailable, ""},
	{filehub.ESTORAGE, http.StatusInsufficientStorage, ""},
	{filehub.EINTERNAL, http.StatusInternalServerError, ""},
	{filehub.EGONE, http.StatusGone, ""},
	{filehub.EPRECONDITION, http.StatusPreconditionFailed, ""},
	{filehub.ELOCKED, http.StatusLocked, ""},
	{filehub.ECHECKSUM, StatusChecksumMismatch, "Checksum Mismatch"},
}

// StatusChecksumMismatch is tus's 460 Checksum Mismatch, which net/http
// has no name for.
const StatusChecksumMismatch = 460

var (
	byCode   = make(map[string]ErrorInfo, len(Errors))
	byStatus = make(map[int]string, len(Errors))
)

func init() {
	for i := range Errors {
		e := &Errors[i]
		if e.Title == "" {
			e.Title = http.StatusText(e.Status)
		}
		byCode[e.Code] = *e
		byStatus[e.Status] = e.Code
	}
}

// KnownCode reports whether code is in the table.
func KnownCode(code string) bool {
	_, ok := byCode[code]
	return ok
}

// StatusCode returns the HTTP status for a filehub error code: the status of
// the problem document an error with that code is sent as. Unknown codes
// are 500.
func StatusCode(code string) int {
	if e, ok := byCode[code]; ok {
		return e.Status
	}
	return http.StatusInternalServerError
}

// CodeForStatus maps an HTTP status back to a filehub code, for responses
// that carry no problem document (an intermediary answered, or an old
// server). Statuses outside the table map to their nearest meaning: 502
// and 504 unavailable, any other 4xx invalid and any other status
// internal.
func CodeForStatus(status int) string {
	if c, ok := byStatus[status]; ok {
		return c
	}
	switch status {
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return filehub.EUNAVAILABLE
	}
	if status >= 400 && status < 500 {
		return filehub.EINVALID
	}
	return filehub.EINTERNAL
}

// ProblemTypePrefix starts every problem type; the code follows it.
const ProblemTypePrefix = "urn:filehub:error:"

// ProblemType returns the problem type URI of a code.
func ProblemType(code string) string { return ProblemTypePrefix + code }

// ProblemContentType is the media type of problem documents.
const ProblemContentType = "application/problem+json"

// Problem is the RFC 9457 problem document sent with every error response
// of the HTTP API and every refused WebSocket upgrade, as
// application/problem+json.
type Problem struct {
	// Type is "urn:filehub:error:<code>".
	Type string `json:"type"`
	// Title is the status text, e.g. "Not Found".
	Title  string `json:"title"`
	Status int    `json:"status"`
	// Detail is the client-safe message (filehub.ErrorMessage).
	Detail string `json:"detail"`
	// Code is the filehub error code, e.g. "not_found".
	Code string `json:"code"`
	// RequestID identifies the request in the server's logs.
	RequestID string `json:"request_id,omitempty"`
}

// NewProblem returns the problem document of an error with code and
// client-safe detail, sent with the code's status.
func NewProblem(code, detail string) Problem {
	return NewProblemStatus(StatusCode(code), code, detail)
}

// NewProblemStatus is NewProblem with a status other than the code's own,
// for the few answers whose status says more than the code (426 Upgrade
// Required is an invalid request).
func NewProblemStatus(status int, code, detail string) Problem {
	title := http.StatusText(status)
	if e, ok := byCode[code]; ok && e.Status == status {
		title = e.Title
	}
	return Problem{Type: ProblemType(code), Title: title, Status: status, Detail: detail, Code: code}
}

// Err returns the problem as a *filehub.Error: its code if the table knows
// it, else the code of status, the response's status.
func (p *Problem) Err(status int) *filehub.Error {
	code := p.Code
	if !KnownCode(code) {
		code = CodeForStatus(status)
	}
	return &filehub.Error{Code: code, Message: p.Detail}
}

// WriteProblem answers with p as application/problem+json, with p.Status.
// Problems are never cached and never sniffed.
func WriteProblem(w http.ResponseWriter, p Problem) {
	h := w.Header()
	h.Set("Content-Type", ProblemContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	// A problem always encodes; a write error means the client has gone.
	_ = json.NewEncoder(w).Encode(p)
}
