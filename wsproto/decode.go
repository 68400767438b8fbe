package wsproto

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// decodeFast decodes one frame from line in a single pass: it checks the
// JSON syntax of the whole line while it picks out the envelope's fields,
// where json.Unmarshal scans the line once for validity and again to
// decode it, and a json.RawMessage field a third time. Messages are the
// hot path and their data is most of every frame.
//
// It accepts only what it can decode exactly as json.Unmarshal would:
// field names spelled as in the spec, simple strings (no escapes, valid
// UTF-8) and integers for the envelope's fields. For anything else —
// including every syntax error — it reports false, and the caller decodes
// the line with json.Unmarshal, which then also produces the error. So
// this path never accepts what encoding/json rejects, nor decodes
// differently (FuzzDecodeFast checks both).
//
// Raw values (data, params, result) are copied: frames outlive the
// message buffer they came from (outboxes, backlogs, the application).
func decodeFast(line []byte, f *Frame) bool {
	i := skipSpace(line, 0)
	if i == len(line) || line[i] != '{' {
		return false
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		return skipSpace(line, i+1) == len(line)
	}
	for {
		end, simple := scanString(line, i)
		if end < 0 || !simple {
			return false
		}
		key := line[i+1 : end-1]
		i = skipSpace(line, end)
		if i == len(line) || line[i] != ':' {
			return false
		}
		i = skipSpace(line, i+1)
		end = scanValue(line, i, 0)
		if end < 0 || !f.setField(key, line[i:end]) {
			return false
		}
		i = skipSpace(line, end)
		if i == len(line) {
			return false
		}
		switch line[i] {
		case ',':
			i = skipSpace(line, i+1)
		case '}':
			return skipSpace(line, i+1) == len(line)
		default:
			return false
		}
	}
}

// setField stores the syntactically valid value v of the field named key.
// It reports false if json.Unmarshal might decode the pair differently.
func (f *Frame) setField(key, v []byte) bool {
	var ok bool
	switch string(key) {
	case "type":
		f.Type, ok = frameType(v)
	case "seq":
		f.Seq, ok = integer(v)
	case "ack":
		f.Ack, ok = integer(v)
	case "token":
		f.Token, ok = simpleString(v)
	case "session_id":
		f.SessionID, ok = simpleString(v)
	case "resume_token":
		f.ResumeToken, ok = simpleString(v)
	case "last_seq":
		f.LastSeq, ok = integer(v)
	case "resumed":
		switch string(v) {
		case "true":
			f.Resumed, ok = true, true
		case "false":
			f.Resumed, ok = false, true
		}
	case "heartbeat_ms":
		f.HeartbeatMS, ok = integer(v)
	case "session_ttl_ms":
		f.SessionTTLMS, ok = integer(v)
	case "max_message_bytes":
		f.MaxMessageBytes, ok = integer(v)
	case "resume_refused":
		f.ResumeRefused, ok = simpleString(v)
	case "data":
		f.Data, ok = append(f.Data[:0], v...), true
	case "id":
		f.ID, ok = simpleString(v)
	case "method":
		f.Method, ok = simpleString(v)
	case "params":
		f.Params, ok = append(f.Params[:0], v...), true
	case "result":
		f.Result, ok = append(f.Result[:0], v...), true
	case "error":
		// Rare, and nested: encoding/json decodes just this value.
		ok = json.Unmarshal(v, &f.Error) == nil
	case "event":
		ok = json.Unmarshal(v, &f.Event) == nil
	case "code":
		f.Code, ok = simpleString(v)
	case "message":
		f.Message, ok = simpleString(v)
	default:
		// encoding/json matches field names case-insensitively (with
		// Unicode folding, hence any non-ASCII name): leave such names to
		// it. Other unknown fields are ignored (spec §2).
		if !isASCII(key) {
			return false
		}
		for _, name := range fieldNames {
			if strings.EqualFold(string(key), name) {
				return false
			}
		}
		ok = true
	}
	return ok
}

var fieldNames = [...]string{
	"type", "seq", "ack", "token", "session_id", "resume_token", "last_seq", "resumed", "heartbeat_ms",
	"session_ttl_ms", "max_message_bytes", "resume_refused", "data", "id", "method", "params", "result", "error", "event",
	"code", "message",
}

// frameType is simpleString that returns the constants for the known
// types, saving an allocation per frame.
func frameType(v []byte) (string, bool) {
	switch string(v) {
	case `"msg"`:
		return TypeMsg, true
	case `"ack"`:
		return TypeAck, true
	case `"event"`:
		return TypeEvent, true
	case `"req"`:
		return TypeReq, true
	case `"res"`:
		return TypeRes, true
	}
	return simpleString(v)
}

// simpleString returns the JSON string v if it has no escapes and is valid
// UTF-8 (encoding/json would replace invalid bytes).
func simpleString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false // null or another type: leave it to encoding/json
	}
	s := v[1 : len(v)-1]
	for _, b := range s {
		if b == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(s) {
		return "", false
	}
	return string(s), true
}

// integer returns the JSON number v if it is an integer that fits an int64
// with room to spare (longer ones are left to encoding/json).
func integer(v []byte) (int64, bool) {
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, b := range v {
		if b < '0' || b > '9' {
			return 0, false // a fraction, an exponent, or not a number
		}
		n = n*10 + int64(b-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// maxDepth bounds the nesting the fast path follows; deeper values go to
// encoding/json, which has its own limit.
const maxDepth = 64

// scanValue returns the end of the JSON value starting at b[i], or -1 if
// there is no valid value there.
func scanValue(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		end, _ := scanString(b, i)
		return end
	case c == '{':
		if depth == maxDepth {
			return -1
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1
		}
		for {
			end, _ := scanString(b, i)
			if end < 0 {
				return -1
			}
			i = skipSpace(b, end)
			if i == len(b) || b[i] != ':' {
				return -1
			}
			if i = scanValue(b, skipSpace(b, i+1), depth+1); i < 0 {
				return -1
			}
			if i = skipSpace(b, i); i == len(b) {
				return -1
			}
			switch b[i] {
			case ',':
				i = skipSpace(b, i+1)
			case '}':
				return i + 1
			default:
				return -1
			}
		}
	case c == '[':
		if depth == maxDepth {
			return -1
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1
		}
		for {
			if i = scanValue(b, i, depth+1); i < 0 {
				return -1
			}
			if i = skipSpace(b, i); i == len(b) {
				return -1
			}
			switch b[i] {
			case ',':
				i = skipSpace(b, i+1)
			case ']':
				return i + 1
			default:
				return -1
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		return scanNumber(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	}
	return -1
}

func literal(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanNumber returns the end of the number at b[i] (RFC 8259: -?int
// frac? exp?), or -1.
func scanNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i == len(b):
		return -1
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// scanString returns the end of the JSON string starting at b[i] (just
// after its closing quote), or -1 if there is none; simple reports that it
// has no escapes and is valid UTF-8, so its bytes are its value. Like
// encoding/json, it accepts invalid UTF-8 as valid JSON.
func scanString(b []byte, i int) (end int, simple bool) {
	if i >= len(b) || b[i] != '"' {
		return -1, false
	}
	simple, ascii := true, true
	start := i + 1
	for i++; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			if !ascii && simple {
				simple = utf8.Valid(b[start:i])
			}
			return i + 1, simple
		case c < 0x20:
			return -1, false
		case c >= utf8.RuneSelf:
			ascii = false
		case c == '\\':
			simple = false
			i++
			if i == len(b) {
				return -1, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return -1, false
				}
				i += 4
			default:
				return -1, false
			}
		}
	}
	return -1, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
