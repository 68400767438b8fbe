package wsserver_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/filehub/filehub/wsserver"
)

// An idle connection keeps no read buffer: connections borrow one from a
// pool only while they have something to read.
func TestIdleConnectionsHoldNoReadBuffer(t *testing.T) {
	e := newEnv(t, wsserver.Config{})
	_, before := wsserver.ReadBuffers()
	var clients []*client
	for range 20 {
		c, _ := e.connect(t, "rw")
		clients = append(clients, c)
	}
	// Traffic of every size: small messages, and some larger than the
	// pooled buffer, whose payload gorilla reads past it.
	big := `"` + strings.Repeat("x", 20<<10) + `"`
	for i, c := range clients {
		data := fmt.Sprintf(`{"n":%d}`, i)
		if i%4 == 0 {
			data = big
		}
		c.send(msg(1, data), msg(2, `"two"`))
		c.waitAck(2)
	}
	lent, borrowed := wsserver.ReadBuffers()
	if borrowed-before < int64(len(clients)) {
		t.Fatalf("read buffers borrowed %d times for %d connections that each sent a message: not read through the pool", borrowed-before, len(clients))
	}
	waitFor(t, "every read buffer back in the pool", func() bool {
		lent, _ = wsserver.ReadBuffers()
		return lent == 0
	})
	// And after the connections end.
	for _, c := range clients {
		c.send(msg(3, `"three"`))
	}
	for _, c := range clients {
		c.ws.Close()
	}
	waitFor(t, "the connections to end", func() bool { return e.metric("filehub_ws_sessions_connected") == 0 })
	if lent, _ := wsserver.ReadBuffers(); lent != 0 {
		t.Fatalf("%d read buffers held after every connection ended", lent)
	}
}
