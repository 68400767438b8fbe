package wsserver_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/citest"
	"github.com/filehub/filehub/postgres"
	"github.com/filehub/filehub/wsclient"
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
	measure := func(b *testing.B, url string, hello bool) float64 { return measureConns(b, url, n, hello) }
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
		e := newEnv(b, wsserver.Config{MaxConnsPerKey: n + 1, MaxSessionsPerKey: n + 1})
		benchKey = e.keys["rw"]
		for b.Loop() {
			b.ReportMetric(measure(b, e.url, true), "bytes/conn")
		}
	})
}

var benchKey string

// benchStore is where BenchmarkDurableSessions keeps sessions.
type benchStore struct {
	name string
	open func(b *testing.B, e *env) filehub.WSSessionStore // nil: memory
}

// benchStores are the session stores to compare: memory (the baseline),
// the in-memory test store (the cost of the committer alone), the env's
// SQLite database and, with FILEHUB_TEST_POSTGRES, PostgreSQL.
func benchStores() []benchStore {
	stores := []benchStore{
		{name: "memory"},
		{name: "durable-memstore", open: func(*testing.B, *env) filehub.WSSessionStore { return newMemSessions() }},
		{name: "durable-sqlite", open: func(b *testing.B, e *env) filehub.WSSessionStore {
			st, ok := any(e.db).(filehub.WSSessionStore)
			if !ok {
				b.Skip("the SQLite store cannot keep WebSocket sessions (yet)")
			}
			return st
		}},
	}
	if os.Getenv(citest.PostgresEnv) != "" {
		stores = append(stores, benchStore{name: "durable-postgres", open: openPostgresSessions})
	}
	return stores
}

// openPostgresSessions opens a PostgreSQL store in a schema of its own,
// dropped when b ends.
func openPostgresSessions(b *testing.B, _ *env) filehub.WSSessionStore {
	return postgresSessions(b)
}

// postgresSessions opens a PostgreSQL store in a schema of its own, dropped
// when tb ends. Without FILEHUB_TEST_POSTGRES it skips tb, or fails it in
// CI.
func postgresSessions(b testing.TB) filehub.WSSessionStore {
	b.Helper()
	base := citest.PostgresDSN(b)
	admin := func(sql string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	schema := pgx.Identifier{"wsserver_bench_" + strings.ToLower(filehub.NewID(""))}
	admin("CREATE SCHEMA " + schema.Sanitize())
	b.Cleanup(func() { admin("DROP SCHEMA " + schema.Sanitize() + " CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema[0])
	u.RawQuery = q.Encode()
	db, err := postgres.Open(context.Background(), u.String(), postgres.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// Throughput shape of BenchmarkDurableSessions: sessions, and Sends or
// Calls in flight per session.
const (
	benchSessions = 16
	benchInFlight = 16
)

// BenchmarkDurableSessions measures acknowledged echo messages (512 bytes)
// and RPCs (files.stat) per second through wsclient, with sessions in
// memory and saved in each store, one after the other in every round so
// that -count N alternates them. A message counts when Send returns (the
// server acknowledged it, so with a store: saved it); a call when its res
// is back.
//
//	go test -run '^$' -bench DurableSessions -benchtime 3s -count 5 ./wsserver/
func BenchmarkDurableSessions(b *testing.B) {
	payload := json.RawMessage(`{"p":"` + strings.Repeat("x", 500) + `"}`)
	for _, work := range []string{"echo", "rpc"} {
		b.Run(work, func(b *testing.B) {
			for _, st := range benchStores() {
				b.Run(st.name, func(b *testing.B) {
					e := newEnv(b, wsserver.Config{})
					cfg := wsserver.Config{Logger: slog.New(slog.DiscardHandler)}
					if st.open != nil {
						cfg.Sessions = st.open(b, e)
					}
					// newEnv's server has no store: restart it with cfg.
					e.restart(cfg)
					defer e.stop() // before the cleanups close the store
					up, err := e.files.Upload(context.Background(), strings.NewReader("x"), "bench.txt", "k_bench")
					if err != nil {
						b.Fatal(err)
					}
					f := up.File
					clients := make([]*wsclient.Client, benchSessions)
					for i := range clients {
						c, err := wsclient.Dial(context.Background(), e.url, wsclient.Options{Key: e.keys["rw"], IgnoreMessages: true})
						if err != nil {
							b.Fatal(err)
						}
						clients[i] = c
					}
					defer func() {
						for _, c := range clients {
							c.Close()
						}
					}()
					var tickets atomic.Int64
					tickets.Store(int64(b.N))
					var wg sync.WaitGroup
					b.ResetTimer()
					for _, c := range clients {
						for range benchInFlight {
							wg.Go(func() {
								for tickets.Add(-1) >= 0 {
									var err error
									if work == "echo" {
										err = c.Send(context.Background(), payload)
									} else {
										var res json.RawMessage
										err = c.Call(context.Background(), wsproto.MethodFilesStat, map[string]string{"id": f.ID}, &res)
									}
									if err != nil {
										b.Error(err)
										return
									}
								}
							})
						}
					}
					wg.Wait()
					b.StopTimer()
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				})
			}
		})
	}
}

// BenchmarkIdleMemoryDurable is BenchmarkIdleMemory's filehub case with
// sessions saved in the env's SQLite database.
func BenchmarkIdleMemoryDurable(b *testing.B) {
	n := idleConns()
	for _, st := range benchStores() {
		if st.name == "durable-postgres" {
			continue
		}
		b.Run(st.name, func(b *testing.B) {
			e := newEnv(b, wsserver.Config{})
			cfg := wsserver.Config{MaxConnsPerKey: n + 1, MaxSessionsPerKey: n + 1, Logger: slog.New(slog.DiscardHandler)}
			if st.open != nil {
				cfg.Sessions = st.open(b, e)
			}
			e.restart(cfg)
			defer e.stop()
			benchKey = e.keys["rw"]
			for b.Loop() {
				b.ReportMetric(measureConns(b, e.url, n, true), "bytes/conn")
			}
		})
	}
}

// measureConns opens n connections to url (completing hello if asked) and
// returns the memory in use per connection.
func measureConns(b *testing.B, url string, n int, hello bool) float64 {
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
