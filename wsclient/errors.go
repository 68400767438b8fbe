package wsclient

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/wsproto"
)

var (
	// ErrClosed is returned by operations on a client that was closed with
	// Close, and by operations that were still pending when it was.
	ErrClosed = errors.New("wsclient: client closed")

	// ErrSessionLost is matched (with errors.Is) by the error Send and Call
	// return when the server refused to resume the session on reconnect
	// (spec §5.3: it expired, was unknown, or the resume token was
	// refused); the error is a *SessionLostError that says which. The
	// message or request was transmitted at least once but its
	// acknowledgement (or response) never arrived, so it may or may not
	// have been processed; the client does not resend it in the new session
	// because that could run it twice.
	ErrSessionLost = errors.New("wsclient: session lost before the server acknowledged")

	// ErrOutboxFull is returned by Send and Call when the outbox is full and
	// Options.FailWhenFull is set.
	ErrOutboxFull = errors.New("wsclient: outbox full")

	// ErrGap matches (with errors.Is) the error of an event subscription
	// whose starting point was already trimmed from the server's event log.
	ErrGap = &filehub.Error{Code: wsproto.CodeGap}

	// ErrUnknownMethod matches (with errors.Is) the error of a Call to a
	// method the server does not know.
	ErrUnknownMethod = &filehub.Error{Code: wsproto.CodeUnknownMethod}
)

// SessionLostError is the error of the sends and calls a lost session
// failed (see ErrSessionLost, which it matches with errors.Is). Reason is
// the server's resume_refused: wsproto.RefusedExpired, RefusedUnknown or
// RefusedBadToken, or "" from a server too old to say.
type SessionLostError struct {
	Reason string
}

func (e *SessionLostError) Error() string {
	switch e.Reason {
	case wsproto.RefusedExpired:
		return ErrSessionLost.Error() + " (the session expired on the server)"
	case wsproto.RefusedUnknown:
		return ErrSessionLost.Error() + " (the server does not know the session: it expired and was removed, or the server kept it only in memory and restarted)"
	case wsproto.RefusedBadToken:
		return ErrSessionLost.Error() + " (the server refused the resume token)"
	case "":
		return ErrSessionLost.Error()
	}
	return ErrSessionLost.Error() + " (" + e.Reason + ")"
}

// Is makes errors.Is(err, ErrSessionLost) true.
func (e *SessionLostError) Is(target error) bool { return target == ErrSessionLost }

// ConnError tells why the server refused a connection or ended one. It is
// what Err returns after a permanent failure, and what pending operations
// fail with then. errors.As(err, new(*filehub.Error)) yields its code
// (unauthorized, forbidden, invalid, too_large, conflict or unavailable).
type ConnError struct {
	// Status is the HTTP status of a refused upgrade, 0 otherwise.
	Status int
	// CloseCode is the WebSocket close code, 0 if the connection was not
	// closed with one.
	CloseCode int
	// Code and Message come from the server's error frame if it sent one,
	// otherwise they are derived from Status or CloseCode.
	Code    string
	Message string
	// Permanent reports that reconnecting cannot help: the client stopped.
	Permanent bool
}

func (e *ConnError) Error() string {
	s := "wsclient: "
	switch {
	case e.Status != 0:
		s += fmt.Sprintf("upgrade refused with HTTP %d", e.Status)
	case e.CloseCode != 0:
		s += fmt.Sprintf("connection closed with %d", e.CloseCode)
	default:
		s += "connection failed"
	}
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the failure as a *filehub.Error so callers can test the
// code with errors.As or errors.Is.
func (e *ConnError) Unwrap() error {
	return &filehub.Error{Code: e.Code, Message: e.Message}
}

// statusError classifies a refused upgrade (spec §9). The code is the
// problem document's, or else the status's (api.CodeForStatus, the one
// table). 401, 403 and 426 are permanent; everything else (429, 503, a
// proxy's 502) is worth retrying.
func statusError(status int, p *api.Problem) *ConnError {
	fe := p.Err(status)
	e := &ConnError{Status: status, Code: fe.Code, Message: fe.Message}
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		e.Permanent = true
	case http.StatusUpgradeRequired:
		e.Permanent = true
		if e.Message == "" {
			e.Message = "protocol version " + wsproto.Subprotocol + " refused"
		}
	}
	return e
}

// closeError classifies a close code (spec §9). ef is the error frame the
// server sent just before closing, if any.
func closeError(code int, text string, ef *wsproto.Frame) *ConnError {
	e := &ConnError{CloseCode: code, Message: text, Permanent: wsproto.Permanent(code)}
	switch code {
	case wsproto.CloseAuthFailed:
		e.Code = filehub.EUNAUTHORIZED
	case wsproto.CloseProtocolError:
		e.Code = filehub.EINVALID
	case wsproto.CloseMessageTooBig:
		e.Code = filehub.ETOOLARGE
	case wsproto.CloseTakenOver:
		e.Code = filehub.ECONFLICT
		if e.Message == "" {
			e.Message = "session taken over by another connection"
		}
	default:
		e.Code = filehub.EUNAVAILABLE
	}
	if ef != nil {
		if ef.Code != "" {
			e.Code = ef.Code
		}
		if ef.Message != "" {
			e.Message = ef.Message
		}
	}
	return e
}

// protocolError is a permanent failure the client detected itself: the
// server broke the protocol, and the client closed with 4002.
func protocolError(err error) *ConnError {
	return &ConnError{CloseCode: wsproto.CloseProtocolError, Code: filehub.EINVALID,
		Message: err.Error(), Permanent: true}
}

// resError turns a res frame's error into the error Call returns.
func resError(b *wsproto.ErrorBody) error {
	return &filehub.Error{Code: b.Code, Message: b.Message}
}
