package wsproto_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	frames := []*wsproto.Frame{
		{Type: wsproto.TypeHello, SessionID: "s_1", ResumeToken: "tok", LastSeq: 4},
		{Type: wsproto.TypeMsg, Seq: 5, Ack: 3, Data: json.RawMessage(`{"x":1}`)},
		{Type: wsproto.TypeReq, Seq: 6, ID: "r1", Method: wsproto.MethodFilesStat, Params: json.RawMessage(`{"id":"f_1"}`)},
		{Type: wsproto.TypeRes, Seq: 2, ID: "r1", Error: &wsproto.ErrorBody{Code: "not_found", Message: "no"}},
		{Type: wsproto.TypeEvent, Seq: 3, Event: &filehub.Event{ID: 9, Type: filehub.EventFileCreated}},
		{Type: wsproto.TypeAck, Ack: 7},
	}
	msg, err := wsproto.Encode(nil, frames...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := wsproto.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(frames) {
		t.Fatalf("decoded %d frames, want %d", len(got), len(frames))
	}
	for i := range frames {
		// Event times differ in monotonic reading only; compare encodings.
		a, _ := json.Marshal(frames[i])
		b, _ := json.Marshal(got[i])
		if !reflect.DeepEqual(a, b) {
			t.Errorf("frame %d: %s != %s", i, a, b)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	for name, msg := range map[string]string{
		"empty":              "",
		"blank lines":        "\n\n",
		"not json":           "hello",
		"unknown type":       `{"type":"bogus"}`,
		"msg without seq":    `{"type":"msg","data":1}`,
		"ack with seq":       `{"type":"ack","seq":1,"ack":1}`,
		"negative ack":       `{"type":"ack","ack":-1}`,
		"req without id":     `{"type":"req","seq":1,"method":"files.list"}`,
		"req long id":        `{"type":"req","seq":1,"method":"m","id":"` + string(make([]byte, 0)) + `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`,
		"req without method": `{"type":"req","seq":1,"id":"a"}`,
		"res both":           `{"type":"res","seq":1,"id":"a","result":{},"error":{"code":"x","message":"y"}}`,
		"res neither":        `{"type":"res","seq":1,"id":"a"}`,
		"event without body": `{"type":"event","seq":1}`,
		"hello half resume":  `{"type":"hello","session_id":"s"}`,
		"second frame bad":   "{\"type\":\"ack\",\"ack\":1}\n{\"type\":\"nope\"}",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := wsproto.Decode([]byte(msg)); !errors.Is(err, wsproto.ErrProtocol) {
				t.Fatalf("Decode(%q) = %v, want a protocol error", msg, err)
			}
		})
	}
}

func TestPermanent(t *testing.T) {
	for code, want := range map[int]bool{
		wsproto.CloseAuthFailed: true, wsproto.CloseProtocolError: true, wsproto.CloseMessageTooBig: true,
		wsproto.CloseGoingAway: false, wsproto.CloseServerShutdown: false, wsproto.CloseSlowConsumer: false,
	} {
		if got := wsproto.Permanent(code); got != want {
			t.Errorf("Permanent(%d) = %v, want %v", code, got, want)
		}
	}
}

// FuzzDecode checks that the decoder never panics and that whatever it
// accepts survives an encode/decode round trip unchanged.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"type":"hello"}`))
	f.Add([]byte("{\"type\":\"msg\",\"seq\":1,\"data\":{}}\n{\"type\":\"ack\",\"ack\":1}"))
	f.Add([]byte(`{"type":"res","seq":1,"id":"a","result":[1,2]}`))
	f.Add([]byte(`{"type":"event","seq":2,"event":{"id":3,"type":"file.created","time":"2026-01-01T00:00:00Z"}}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		frames, err := wsproto.Decode(msg)
		if err != nil {
			if !errors.Is(err, wsproto.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		enc, err := wsproto.Encode(nil, frames...)
		if err != nil {
			t.Fatal(err)
		}
		again, err := wsproto.Decode(enc)
		if err != nil {
			t.Fatalf("re-decoding an accepted message failed: %v\n%s", err, enc)
		}
		if len(again) != len(frames) {
			t.Fatalf("%d frames, then %d", len(frames), len(again))
		}
	})
}
