package wsproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// AppendFrame appends the encoding of f to dst and returns the extended
// buffer. It writes what json.Marshal(f) writes, byte for byte, but without
// reflection and without re-validating the json.RawMessage fields (Data,
// Params, Result): every message crosses the session layer several times,
// and encoding/json scans a raw value twice on each encode (validity, then
// compaction), which made JSON scanning the largest CPU cost after system
// calls.
//
// The caller guarantees that Data, Params and Result hold valid JSON — as
// they do when they came out of Decode or json.Marshal, or passed
// json.Valid. They are copied verbatim, except that a value holding a line
// break is compacted, since frames are separated by newlines; a raw value
// that encoding/json would have HTML-escaped (<, >, &) is copied as it is,
// which any JSON reader decodes to the same value. Encode is the variant
// that validates. On error, dst is returned unchanged.
func AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	start := len(dst)
	var err error
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, f.Type)
	dst = appendIntField(dst, `,"seq":`, f.Seq)
	dst = appendIntField(dst, `,"ack":`, f.Ack)
	dst = appendStringField(dst, `,"token":`, f.Token)
	dst = appendStringField(dst, `,"session_id":`, f.SessionID)
	dst = appendStringField(dst, `,"resume_token":`, f.ResumeToken)
	dst = appendIntField(dst, `,"last_seq":`, f.LastSeq)
	if f.Resumed {
		dst = append(dst, `,"resumed":true`...)
	}
	dst = appendIntField(dst, `,"heartbeat_ms":`, f.HeartbeatMS)
	dst = appendIntField(dst, `,"session_ttl_ms":`, f.SessionTTLMS)
	dst = appendIntField(dst, `,"max_message_bytes":`, f.MaxMessageBytes)
	dst = appendStringField(dst, `,"resume_refused":`, f.ResumeRefused)
	if dst, err = appendRawField(dst, `,"data":`, f.Data); err != nil {
		return dst[:start], fmt.Errorf("encode %s frame: data: %w", f.Type, err)
	}
	dst = appendStringField(dst, `,"id":`, f.ID)
	dst = appendStringField(dst, `,"method":`, f.Method)
	if dst, err = appendRawField(dst, `,"params":`, f.Params); err != nil {
		return dst[:start], fmt.Errorf("encode %s frame: params: %w", f.Type, err)
	}
	if dst, err = appendRawField(dst, `,"result":`, f.Result); err != nil {
		return dst[:start], fmt.Errorf("encode %s frame: result: %w", f.Type, err)
	}
	if f.Error != nil {
		dst = append(dst, `,"error":{"code":`...)
		dst = appendString(dst, f.Error.Code)
		dst = append(dst, `,"message":`...)
		dst = appendString(dst, f.Error.Message)
		dst = append(dst, '}')
	}
	if f.Event != nil {
		// Events are rare next to messages and hold times and nested
		// records: encoding/json is fast enough and stays the one
		// definition of their shape.
		b, err := json.Marshal(f.Event)
		if err != nil {
			return dst[:start], fmt.Errorf("encode %s frame: %w", f.Type, err)
		}
		dst = append(dst, `,"event":`...)
		dst = append(dst, b...)
	}
	dst = appendStringField(dst, `,"code":`, f.Code)
	dst = appendStringField(dst, `,"message":`, f.Message)
	return append(dst, '}'), nil
}

func appendIntField(dst []byte, name string, v int64) []byte {
	if v == 0 {
		return dst // omitempty
	}
	dst = append(dst, name...)
	return strconv.AppendInt(dst, v, 10)
}

func appendStringField(dst []byte, name, v string) []byte {
	if v == "" {
		return dst // omitempty
	}
	dst = append(dst, name...)
	return appendString(dst, v)
}

var errInvalidRaw = errors.New("invalid JSON")

func appendRawField(dst []byte, name string, v json.RawMessage) ([]byte, error) {
	if len(v) == 0 {
		return dst, nil // omitempty
	}
	dst = append(dst, name...)
	if bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 {
		return append(dst, v...), nil
	}
	// A line break can only be whitespace between tokens (inside strings
	// it is escaped), so compacting removes it without changing the value.
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, v); err != nil {
		return dst, errInvalidRaw
	}
	return buf.Bytes(), nil
}

const hexDigits = "0123456789abcdef"

// plain marks the ASCII bytes that stand for themselves inside a JSON
// string as encoding/json writes it: printable, and not one of the HTML
// characters it escapes so that JSON can be embedded in HTML.
var plain = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

// appendString appends s as a JSON string, escaped exactly like
// encoding/json does: control characters, quote and backslash, the HTML
// characters <, > and &, invalid UTF-8 (as U+FFFD) and the line and
// paragraph separators U+2028 and U+2029 (which break JavaScript).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	done := 0 // s[:done] is in dst
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if plain[b] {
				i++
				continue
			}
			dst = append(dst, s[done:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			done = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[done:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[done:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		done = i
	}
	dst = append(dst, s[done:]...)
	return append(dst, '"')
}
