package loadgen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/filehub/filehub/internal/loadgen"
)

func TestRunFanoutAgainstFilehub(t *testing.T) {
	srv, err := loadgen.StartWSServer(context.Background(), loadgen.WSServerConfig{Dir: t.TempDir(), MaxConnsPerKey: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	// Two runs: the second subscribes after the first one's events.
	for run := range 2 {
		res, err := loadgen.RunFanout(context.Background(), loadgen.FanoutConfig{
			Target: loadgen.TargetFilehub, URL: srv.URL, Key: srv.Key,
			Subscribers: 7, Events: 150, Producers: 3,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Deliveries != 7*150 || res.Missing != 0 || res.Duplicates != 0 || res.ProduceFailures != 0 {
			t.Fatalf("run %d: %+v", run, res)
		}
		if res.P99Millis <= 0 || res.DeliveriesPerS <= 0 {
			t.Fatalf("run %d: no figures: %+v", run, res)
		}
	}
}

// fakeCentrifugo speaks the part of Centrifugo's JSON protocol and server
// API that RunFanout uses. It sends publication dup twice.
type fakeCentrifugo struct {
	mu     sync.Mutex
	subs   []*websocket.Conn
	offset int64
	dup    int64
}

func (f *fakeCentrifugo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/publish" {
		if r.Header.Get("X-API-Key") != "api-key" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		var p struct {
			Channel string          `json:"channel"`
			Data    json.RawMessage `json:"data"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &p); err != nil || p.Channel != "fanout:events" {
			http.Error(w, "bad publish", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.offset++
		msg := fmt.Sprintf(`{"push":{"channel":%q,"pub":{"data":%s,"offset":%d}}}`, p.Channel, p.Data, f.offset)
		if f.offset == f.dup {
			msg += "\n" + msg
		}
		for _, ws := range f.subs {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(msg))
		}
		f.mu.Unlock()
		_, _ = w.Write([]byte(`{"result":{}}`))
		return
	}
	up := websocket.Upgrader{}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var cmd struct {
			ID        int             `json:"id"`
			Connect   json.RawMessage `json:"connect"`
			Subscribe json.RawMessage `json:"subscribe"`
		}
		if err := json.Unmarshal(msg, &cmd); err != nil {
			return
		}
		f.mu.Lock()
		switch {
		case cmd.Connect != nil:
			if !bytes.Contains(cmd.Connect, []byte(`"token":"ey`)) {
				f.mu.Unlock()
				return
			}
			_ = ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"id":%d,"connect":{"client":"c"}}`, cmd.ID))
		case cmd.Subscribe != nil:
			_ = ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "{}\n"+`{"id":%d,"subscribe":{"recoverable":true,"offset":%d}}`, cmd.ID, f.offset))
			f.subs = append(f.subs, ws)
		}
		f.mu.Unlock()
	}
}

func TestRunFanoutCentrifugoProtocolAndDuplicates(t *testing.T) {
	fake := &fakeCentrifugo{dup: 7}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	defer srv.CloseClientConnections()
	res, err := loadgen.RunFanout(context.Background(), loadgen.FanoutConfig{
		Target: loadgen.TargetCentrifugo, URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/connection/websocket",
		APIURL: srv.URL + "/api", APIKey: "api-key", TokenSecret: "secret",
		Subscribers: 5, Events: 20, Producers: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Publication 7 came twice to each of the 5: counted as duplicates,
	// and nothing is missing.
	if res.Duplicates != 5 || res.Missing != 0 || res.ProduceFailures != 0 {
		t.Fatalf("%+v", res)
	}
}
