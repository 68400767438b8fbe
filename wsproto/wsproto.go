// Package wsproto defines the frames of filehub's WebSocket protocol,
// version 1, and how they are encoded: one or more JSON objects per
// WebSocket text message, separated by newlines. docs/protocol.md is the
// specification; this package is its Go form, shared by the server (wsserver)
// and the client library (wsclient).
package wsproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/filehub/filehub"
)

// Subprotocol is the WebSocket subprotocol of this version.
const Subprotocol = "filehub.v1"

// DefaultMaxMessageBytes is the default largest WebSocket message.
const DefaultMaxMessageBytes = 1 << 20

// Frame types.
const (
	TypeHello   = "hello"
	TypeWelcome = "welcome"
	TypeMsg     = "msg"
	TypeReq     = "req"
	TypeRes     = "res"
	TypeEvent   = "event"
	TypeAck     = "ack"
	TypeError   = "error"
)

// Close codes (RFC 6455 private range 4000–4999 plus standard ones).
const (
	CloseNormal         = 1000
	CloseGoingAway      = 1001
	CloseMessageTooBig  = 1009
	CloseAuthFailed     = 4001
	CloseProtocolError  = 4002
	CloseServerShutdown = 4005
	CloseHelloTimeout   = 4006
	CloseTakenOver      = 4007
	CloseSlowConsumer   = 4008
	CloseTooManyConns   = 4009
)

// Permanent reports whether a close code means reconnecting cannot help.
func Permanent(code int) bool {
	switch code {
	case CloseAuthFailed, CloseProtocolError, CloseMessageTooBig, CloseTakenOver:
		return true
	}
	return false
}

// RPC methods of version 1.
const (
	MethodFilesList         = "files.list"
	MethodFilesStat         = "files.stat"
	MethodFilesDelete       = "files.delete"
	MethodFilesRestore      = "files.restore"
	MethodEventsSubscribe   = "events.subscribe"
	MethodEventsUnsubscribe = "events.unsubscribe"
	MethodCleanupRun        = "cleanup.run"    // admin scope; params api.CleanupRunRequest
	MethodProvidersPush     = "providers.push" // write scope; params api.PushRequest
)

// Reasons a resume was refused, in a welcome's resume_refused.
const (
	RefusedExpired  = "expired"   // the session outlived its TTL without a connection, or was dropped
	RefusedUnknown  = "unknown"   // no server knows the session
	RefusedBadToken = "bad_token" // the resume token (or the API key) does not match
)

// Error codes beyond filehub's own, used in res and error frames.
const (
	CodeGap           = "gap"            // the requested events were trimmed
	CodeUnknownMethod = "unknown_method" // no such RPC method
)

// MaxRequestIDLen bounds request ids.
const MaxRequestIDLen = 128

// Frame is one protocol frame. Which fields are set depends on Type; Decode
// checks the combination. Unknown JSON fields are ignored.
type Frame struct {
	Type string `json:"type"`
	Seq  int64  `json:"seq,omitempty"` // reliable frames: msg, req, res, event
	Ack  int64  `json:"ack,omitempty"` // cumulative ack, on any frame

	// hello
	Token       string `json:"token,omitempty"`
	SessionID   string `json:"session_id,omitempty"`   // hello (resume), welcome
	ResumeToken string `json:"resume_token,omitempty"` // hello (resume), welcome
	LastSeq     int64  `json:"last_seq,omitempty"`     // hello, welcome

	// welcome
	Resumed         bool  `json:"resumed,omitempty"`
	HeartbeatMS     int64 `json:"heartbeat_ms,omitempty"`
	SessionTTLMS    int64 `json:"session_ttl_ms,omitempty"`
	MaxMessageBytes int64 `json:"max_message_bytes,omitempty"`
	// ResumeRefused says why a resume was refused (a welcome with resumed
	// false that answers a hello with session_id): one of the Refused*
	// constants. Older servers do not send it.
	ResumeRefused string `json:"resume_refused,omitempty"`

	// msg
	Data json.RawMessage `json:"data,omitempty"`

	// req, res
	ID     string          `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *ErrorBody      `json:"error,omitempty"` // res

	// event
	Event *filehub.Event `json:"event,omitempty"`

	// error
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// ErrorBody is the error of a failed request.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Reliable reports whether frames of type t carry a sequence number and are
// kept until acknowledged.
func Reliable(t string) bool {
	switch t {
	case TypeMsg, TypeReq, TypeRes, TypeEvent:
		return true
	}
	return false
}

// ErrProtocol is wrapped by every decoding error: the peer broke the
// protocol and the connection should be closed with CloseProtocolError.
var ErrProtocol = errors.New("protocol error")

// Encode appends the frames to dst as one message body: JSON objects
// separated by '\n'. Unlike AppendFrame it checks that the raw fields
// (Data, Params, Result) hold valid JSON, so it is safe for values of
// unknown origin.
func Encode(dst []byte, frames ...*Frame) ([]byte, error) {
	for i, f := range frames {
		for _, raw := range [...]json.RawMessage{f.Data, f.Params, f.Result} {
			if len(raw) > 0 && !json.Valid(raw) {
				return dst, fmt.Errorf("encode %s frame: %w", f.Type, errInvalidRaw)
			}
		}
		if i > 0 {
			dst = append(dst, '\n')
		}
		var err error
		if dst, err = AppendFrame(dst, f); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// Decode splits one message into frames and validates each: known type,
// sequence numbers where required and only there, sane ids. It returns an
// error wrapping ErrProtocol for anything a peer should never send.
func Decode(msg []byte) ([]*Frame, error) {
	var frames []*Frame
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		f := new(Frame)
		if !decodeFast(line, f) {
			*f = Frame{}
			if err := json.Unmarshal(line, f); err != nil {
				return nil, fmt.Errorf("%w: bad frame: %v", ErrProtocol, err)
			}
		}
		if err := f.Validate(); err != nil {
			return nil, err
		}
		frames = append(frames, f)
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrProtocol)
	}
	return frames, nil
}

// Validate checks one frame's fields against its type.
func (f *Frame) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s frame: %s", ErrProtocol, f.Type, fmt.Sprintf(format, args...))
	}
	if f.Seq < 0 || f.Ack < 0 || f.LastSeq < 0 {
		return bad("negative sequence number")
	}
	switch f.Type {
	case TypeHello, TypeWelcome, TypeAck, TypeError:
		if f.Seq != 0 {
			return bad("unexpected seq")
		}
	case TypeMsg, TypeReq, TypeRes, TypeEvent:
		if f.Seq == 0 {
			return bad("missing seq")
		}
	default:
		return fmt.Errorf("%w: unknown frame type %q", ErrProtocol, f.Type)
	}
	switch f.Type {
	case TypeReq:
		if f.ID == "" || len(f.ID) > MaxRequestIDLen {
			return bad("id must have 1 to %d characters", MaxRequestIDLen)
		}
		if f.Method == "" {
			return bad("missing method")
		}
	case TypeRes:
		if f.ID == "" {
			return bad("missing id")
		}
		if (f.Error == nil) == (f.Result == nil) {
			return bad("exactly one of result and error")
		}
	case TypeEvent:
		if f.Event == nil || f.Event.ID <= 0 {
			return bad("missing event")
		}
	case TypeWelcome:
		if f.SessionID == "" || f.ResumeToken == "" {
			return bad("missing session_id or resume_token")
		}
	case TypeHello:
		if (f.SessionID == "") != (f.ResumeToken == "") {
			return bad("session_id and resume_token go together")
		}
	}
	return nil
}
