package wsserver_test

import (
	"testing"

	"github.com/filehub/filehub/wsproto"
	"github.com/filehub/filehub/wsserver"
)

func TestEchoWithAcks(t *testing.T) { bothModes(t, testEchoWithAcks) }

func testEchoWithAcks(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{})
	c, w := e.connect(t, "rw")
	if w.SessionID == "" || w.ResumeToken == "" || w.Resumed || w.LastSeq != 0 {
		t.Fatalf("welcome = %+v", w)
	}
	if w.HeartbeatMS != 25000 || w.SessionTTLMS != 120000 || w.MaxMessageBytes != 1<<20 {
		t.Errorf("welcome limits = %+v", w)
	}
	c.send(msg(1, `{"n":1}`), msg(2, `{"n":2}`))
	c.send(msg(3, `"three"`))
	var got []string
	var lastAck int64
	for len(got) < 3 || lastAck < 3 {
		f := c.next()
		if f.Ack > lastAck {
			lastAck = f.Ack
		}
		if f.Type == wsproto.TypeMsg {
			if f.Seq != int64(len(got)+1) {
				t.Fatalf("server msg seq %d, want %d", f.Seq, len(got)+1)
			}
			got = append(got, string(f.Data))
		}
	}
	want := []string{`{"n":1}`, `{"n":2}`, `"three"`}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("echo %d = %s, want %s", i, got[i], want[i])
		}
	}
	c.send(&wsproto.Frame{Type: wsproto.TypeAck, Ack: 3})
}
