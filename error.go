package filehub

import (
	"errors"
	"fmt"
)

// Error codes. Every error that crosses a package boundary and means
// something to a caller carries one of these; the HTTP layer maps each code to
// one status in a single table and the Go client maps statuses back.
const (
	EINVALID      = "invalid"               // malformed request or argument (400)
	EUNAUTHORIZED = "unauthorized"          // missing or unknown credentials (401)
	EFORBIDDEN    = "forbidden"             // credentials lack a scope (403)
	ENOTFOUND     = "not_found"             // no such object, or not visible (404)
	ECONFLICT     = "conflict"              // state does not allow the operation (409)
	ETIMEOUT      = "timeout"               // the client stalled while sending (408)
	ETOOLARGE     = "too_large"             // body or file exceeds a limit (413)
	EUNSUPPORTED  = "unsupported_type"      // content type refused by policy (415)
	ERANGE        = "range_not_satisfiable" // bad Range header (416)
	ERATELIMIT    = "rate_limited"          // per-key rate limit hit (429)
	EUNAVAILABLE  = "unavailable"           // overloaded or a dependency is down (503)
	ESTORAGE      = "insufficient_storage"  // disk (nearly) full (507)
	EINTERNAL     = "internal"              // a bug or an unexpected failure (500)

	// Codes of resumable uploads (tus).
	EGONE         = "gone"                // an upload that expired (410)
	EPRECONDITION = "precondition_failed" // unsupported protocol version (412)
	ELOCKED       = "locked"              // another request holds the upload (423)
	ECHECKSUM     = "checksum_mismatch"   // a chunk does not match its checksum (460)
)

// Error is filehub's error type. Code is one of the E* constants; Message is
// safe to show to the client that caused the error. Err, if set, is the
// underlying cause: it is logged but never sent to clients.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("filehub: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("filehub: %s: %s", e.Code, e.Message)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, filehub.ErrNotFound) matches any not-found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with the given code and message whose cause is err.
func WrapError(code, message string, err error) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// Sentinels for errors.Is. They match any *Error with the same code.
var (
	ErrNotFound    = &Error{Code: ENOTFOUND}
	ErrConflict    = &Error{Code: ECONFLICT}
	ErrUnavailable = &Error{Code: EUNAVAILABLE}
	ErrStorageFull = &Error{Code: ESTORAGE}

	// ErrLeaseLost is the cause of every error of a fenced step whose
	// lease tenure is no longer current (see LeaseStore); the error's code
	// is ECONFLICT. Test with errors.Is.
	ErrLeaseLost = errors.New("lease lost")
)

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of the first *Error in err's
// chain, or a generic message for any other error so internals never leak.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "internal error"
}
