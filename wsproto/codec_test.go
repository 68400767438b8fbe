package wsproto_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// The frames every test of the codec starts from: each type, every field,
// and strings that need escaping.
func sampleFrames() []*wsproto.Frame {
	return []*wsproto.Frame{
		{Type: wsproto.TypeHello, Token: "fhk_<&>", SessionID: "s_1", ResumeToken: "tok", LastSeq: 41},
		{Type: wsproto.TypeWelcome, SessionID: "s_\u2028", ResumeToken: "a\"b\\c", Resumed: true, LastSeq: -3, ResumeRefused: "expired",
			HeartbeatMS: 25000, SessionTTLMS: 120000, MaxMessageBytes: 1 << 20},
		{Type: wsproto.TypeMsg, Seq: 1<<62 + 5, Ack: 3, Data: json.RawMessage(`{"x":[1,2.5e3,"y\u00e9"],"z":null}`)},
		{Type: wsproto.TypeReq, Seq: 6, ID: "r\x00\x1f\t\n\r\b\f", Method: "files.stat", Params: json.RawMessage(`"\u003c"`)},
		{Type: wsproto.TypeRes, Seq: 2, ID: "r1", Result: json.RawMessage(`true`)},
		{Type: wsproto.TypeRes, Seq: 2, ID: "bad\xffutf8\xe2\x80", Error: &wsproto.ErrorBody{Code: "not_found", Message: "<no>"}},
		{Type: wsproto.TypeEvent, Seq: 3, Event: &filehub.Event{ID: 9, Type: filehub.EventFileCreated,
			Time: time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)}},
		{Type: wsproto.TypeAck, Ack: 7},
		{Type: wsproto.TypeError, Code: "unauthorized", Message: "unknown \u2029 key"},
		{},
	}
}

func TestAppendFrameMatchesMarshal(t *testing.T) {
	for _, f := range sampleFrames() {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := wsproto.AppendFrame([]byte("prefix"), f)
		if err != nil {
			t.Fatalf("AppendFrame(%s): %v", want, err)
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("AppendFrame:\n got %s\nwant prefix%s", got, want)
		}
	}
}

func TestAppendFrameRaw(t *testing.T) {
	t.Run("line breaks are compacted", func(t *testing.T) {
		f := &wsproto.Frame{Type: wsproto.TypeMsg, Seq: 1, Data: json.RawMessage("{\"a\":\r\n [1,\n2]}")}
		got, err := wsproto.AppendFrame(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"type":"msg","seq":1,"data":{"a":[1,2]}}`; string(got) != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
	t.Run("invalid with a line break", func(t *testing.T) {
		f := &wsproto.Frame{Type: wsproto.TypeMsg, Seq: 1, Data: json.RawMessage("{\n")}
		got, err := wsproto.AppendFrame([]byte("x"), f)
		if err == nil || string(got) != "x" {
			t.Fatalf("got %q, %v; want x and an error", got, err)
		}
	})
	t.Run("Encode validates", func(t *testing.T) {
		for _, raw := range []string{`{`, `"a`, `1 2`, `nul`} {
			f := &wsproto.Frame{Type: wsproto.TypeMsg, Seq: 1, Data: json.RawMessage(raw)}
			if _, err := wsproto.Encode(nil, f); err == nil {
				t.Errorf("Encode accepted data %q", raw)
			}
		}
	})
}

// FuzzAppendFrame checks that AppendFrame writes what json.Marshal writes
// for any field values (raw values as json.Marshal would produce them).
func FuzzAppendFrame(f *testing.F) {
	f.Add("msg", "s_1", "r<1>", "hé\u2028", int64(3), int64(-1), true, `{"a":"<b>"}`)
	f.Add("", "", "", "\xff\x00", int64(0), int64(0), false, ``)
	f.Fuzz(func(t *testing.T, typ, sid, id, msg string, seq, ack int64, resumed bool, data string) {
		fr := &wsproto.Frame{Type: typ, SessionID: sid, ID: id, Message: msg, Code: msg, Token: sid,
			Method: id, ResumeToken: typ, Seq: seq, Ack: ack, LastSeq: seq ^ ack, Resumed: resumed,
			HeartbeatMS: ack, Error: &wsproto.ErrorBody{Code: id, Message: msg}}
		if data != "" {
			raw, err := json.Marshal(data)
			if err != nil {
				t.Fatal(err)
			}
			fr.Data, fr.Params, fr.Result = raw, raw, raw
		}
		if json.Valid([]byte(data)) {
			var buf bytes.Buffer
			_ = json.Compact(&buf, []byte(data))
			if !bytes.ContainsAny(buf.Bytes(), "<>&\u2028\u2029") {
				fr.Params = json.RawMessage(data) // possibly with line breaks
			}
		}
		want, err := json.Marshal(fr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := wsproto.AppendFrame(nil, fr)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.ContainsAny(got, "\r\n") {
			t.Fatalf("AppendFrame wrote a line break: %q", got)
		}
		// A raw value is copied with its spaces; json.Marshal drops them.
		var compact bytes.Buffer
		if err := json.Compact(&compact, got); err != nil {
			t.Fatalf("AppendFrame wrote invalid JSON %s: %v", got, err)
		}
		if !bytes.Equal(compact.Bytes(), want) {
			t.Fatalf("AppendFrame:\n got %s\nwant %s", got, want)
		}
	})
}

// FuzzDecodeFast checks that the single-pass decoder accepts only lines
// that encoding/json accepts, and decodes them to the same frame.
func FuzzDecodeFast(f *testing.F) {
	for _, fr := range sampleFrames() {
		b, _ := json.Marshal(fr)
		f.Add(b)
	}
	for _, s := range []string{
		` { "type" : "msg" , "seq" : 1 , "data" : [ {}, [], -0.5E+3 ] , "x": {"y": [null, true, false]} } `,
		`{"type":"msg","seq":1,"data":null}`,
		`{"type":"msg","SEQ":1}`,
		`{"type":"msg","seq":1.0}`,
		`{"type":"msg","seq":99999999999999999999}`,
		`{"type":"msg","data":1,"data":"two"}`,
		`{"type":"res","error":null}`,
		`{"type":"res","error":{"code":"a"},"error":{"message":"b"}}`,
		`{"type":"event","event":{"id":1,"time":"2026-01-01T00:00:00+01:00","file":null}}`,
		`{"type":"a\u0062","s\u0065q":1}`,
		`{"type":"msg","\u017fEQ":1}`,
		`{"type":"msg"}x`,
		`{"type":"msg",}`,
		`{"resumed":null,"token":null,"seq":null}`,
		"{\"id\":\"\xff\"}",
		`[]`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, ok := wsproto.DecodeFast(line)
		if !ok {
			return
		}
		want := new(wsproto.Frame)
		if err := json.Unmarshal(line, want); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json rejects it: %v", line, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\nfast path %+v\nencoding/json %+v", line, got, want)
		}
	})
}
