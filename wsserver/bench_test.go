package wsserver_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub/wsproto"
	"github.com/filehub/filehub/wsserver"
)

// idleConns is how many connections BenchmarkIdleMemory opens
// (FILEHUB_BENCH_CONNS, default 2000).
func idleConns() int {
	if n, err := strconv.Atoi(os.Getenv("FILEHUB_BENCH_CONNS")); err == nil && n > 0 {
		return n
	}
	return 2000
}

// inUse is the process's heap and stack memory after a GC.
func inUse() uint64 {
	// Several cycles: each may halve the stacks of goroutines that use
	// less than a quarter of theirs (deep calls during the handshake grow
	// them).
	for range 6 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkIdleMemory measures memory per idle connection, client and
// server in one process, for filehub sessions and, as the baseline in the
// same run, for a bare gorilla/websocket server that only reads. The
// difference between the two is what the session layer adds on the server.
func BenchmarkIdleMemory(b *testing.B) {
	n := idleConns()
	measure := func(b *testing.B, url string, hello bool) float64 {
		d := websocket.Dialer{Subprotocols: []string{wsproto.Subprotocol}}
		before := inUse()
		conns := make([]*websocket.Conn, 0, n)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range n {
			ws, _, err := d.Dial(url, nil)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, ws)
			if hello {
				if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","token":"`+benchKey+`"}`)); err != nil {
					b.Fatal(err)
				}
				if _, m, err := ws.ReadMessage(); err != nil || !strings.Contains(string(m), "welcome") {
					b.Fatalf("hello: %s %v", m, err)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
		return float64(inUse()-before) / float64(n)
	}
	b.Run("bare-gorilla", func(b *testing.B) {
		up := websocket.Upgrader{Subprotocols: []string{wsproto.Subprotocol}}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}))
		defer srv.Close()
		for b.Loop() {
			b.ReportMetric(measure(b, "ws"+strings.TrimPrefix(srv.URL, "http"), false), "bytes/conn")
		}
	})
	b.Run("filehub", func(b *testing.B) {
		e := newEnv(b, wsserver.Config{MaxConnsPerKey: n + 1})
		benchKey = e.keys["rw"]
		for b.Loop() {
			b.ReportMetric(measure(b, e.url, true), "bytes/conn")
		}
	})
}

var benchKey string
