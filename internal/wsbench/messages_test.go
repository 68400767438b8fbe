package wsbench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub/internal/loadgen"
	"github.com/filehub/filehub/server"
	"github.com/filehub/filehub/wsclient"
)

const (
	msgSize  = 512 // bytes of application data per message
	inFlight = 16  // messages in flight per session
)

// payload is a 512-byte JSON value.
var payload = json.RawMessage(`"` + strings.Repeat("x", msgSize-2) + `"`)

// endMarker ends a baseline connection's run (it is echoed like the rest).
var endMarker = []byte(`"end"`)

// BenchmarkMessages measures acknowledged messages per second through one
// and through 100 sessions, 512-byte messages, 16 in flight per session: the
// real wsclient against the real wsserver (Send returns when the server has
// acknowledged the message; the server's echo reply is acknowledged by the
// client too), and as the baseline a plain gorilla/websocket echo (a
// message counts when its echo is back) over loopback in the same process.
// p99-µs is the send-to-acknowledgement (echo) latency; x-baseline the
// ratio of filehub's rate to the echo's in the same run. filehub runs twice:
// with durable sessions (the daemon's default) and with sessions in memory.
func BenchmarkMessages(b *testing.B) {
	for _, sessions := range []int{1, 100} {
		var base float64
		echo := httptest.NewServer(loadgen.BareEcho())
		conns := dialEcho(b, "ws"+strings.TrimPrefix(echo.URL, "http"), sessions)
		b.Run(fmt.Sprintf("sessions=%d/gorilla-echo", sessions), func(b *testing.B) {
			base = runEcho(b, conns)
		})
		for _, ws := range conns {
			ws.Close()
		}
		echo.Close()

		// filehub with the daemon's default, durable sessions (every
		// acknowledgement waits for the session's state to be saved), then
		// with sessions in memory, the mode the echo is comparable to.
		for _, mode := range []struct{ name, sessions string }{
			{"filehub", server.WSSessionsDurable},
			{"filehub-memory", server.WSSessionsMemory},
		} {
			srv := startFilehub(b, mode.sessions)
			clients := dialClients(b, srv, sessions, wsclient.Options{IgnoreMessages: true})
			b.Run(fmt.Sprintf("sessions=%d/%s", sessions, mode.name), func(b *testing.B) {
				runFilehub(b, clients, base)
			})
			closeClients(clients)
			closeServer(b, srv)
		}
	}
}

func dialEcho(b *testing.B, url string, n int) []*websocket.Conn {
	b.Helper()
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = ws
	}
	return conns
}

// runEcho keeps inFlight messages in flight on every connection until b.N
// have been echoed, and returns the rate.
func runEcho(b *testing.B, conns []*websocket.Conn) float64 {
	var tickets atomic.Int64
	tickets.Store(int64(b.N))
	recs := newRecorders(len(conns))
	var wg sync.WaitGroup
	b.ResetTimer()
	for i, ws := range conns {
		wg.Go(func() {
			sent := make(chan time.Time, inFlight) // send times of the messages in flight
			dead := make(chan struct{})
			var lat []time.Duration
			go func() {
				defer close(dead)
				for {
					_, m, err := ws.ReadMessage()
					if err != nil {
						b.Error(err)
						return
					}
					if string(m) == string(endMarker) {
						return
					}
					lat = append(lat, time.Since(<-sent))
				}
			}()
			for tickets.Add(-1) >= 0 {
				select {
				case sent <- time.Now():
				case <-dead:
					return
				}
				if err := ws.WriteMessage(websocket.TextMessage, payload); err != nil {
					b.Error(err)
					return
				}
			}
			if err := ws.WriteMessage(websocket.TextMessage, endMarker); err != nil {
				b.Error(err)
				return
			}
			<-dead
			recs[i].lat = lat
		})
	}
	wg.Wait()
	b.StopTimer()
	return report(b, float64(b.N), "msgs/s", p99(recs), 0)
}

// runFilehub keeps inFlight Sends running on every client until b.N have
// been acknowledged.
func runFilehub(b *testing.B, clients []*wsclient.Client, base float64) {
	var tickets atomic.Int64
	tickets.Store(int64(b.N))
	recs := newRecorders(len(clients) * inFlight)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	b.ResetTimer()
	for i, c := range clients {
		for j := range inFlight {
			r := recs[i*inFlight+j]
			wg.Go(func() {
				for tickets.Add(-1) >= 0 {
					t0 := time.Now()
					if err := c.Send(ctx, payload); err != nil {
						b.Error(err)
						return
					}
					r.add(time.Since(t0))
				}
			})
		}
	}
	wg.Wait()
	b.StopTimer()
	report(b, float64(b.N), "msgs/s", p99(recs), base)
}
