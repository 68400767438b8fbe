package wsserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/sqlite"
	"github.com/filehub/filehub/wsproto"
	"github.com/filehub/filehub/wsserver"
)

// call sends one request and returns its res.
func (c *client) call(seq int64, id, method, params string) *wsproto.Frame {
	c.t.Helper()
	c.send(req(seq, id, method, params))
	f := c.expect(wsproto.TypeRes)
	if f.ID != id {
		c.t.Fatalf("res for %q, want %q", f.ID, id)
	}
	return f
}

func wantResult(t *testing.T, f *wsproto.Frame, v any) {
	t.Helper()
	if f.Error != nil {
		t.Fatalf("res %s: error %+v", f.ID, f.Error)
	}
	if err := json.Unmarshal(f.Result, v); err != nil {
		t.Fatalf("res %s: %v", f.ID, err)
	}
}

func wantError(t *testing.T, f *wsproto.Frame, code string) {
	t.Helper()
	if f.Error == nil || f.Error.Code != code {
		t.Fatalf("res %s = %s %+v, want error %s", f.ID, f.Result, f.Error, code)
	}
}

func TestRPC(t *testing.T) { bothModes(t, testRPC) }

func testRPC(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{})
	a := e.upload(t, "a.txt", "alpha")
	b := e.upload(t, "b.txt", "beta")
	c, _ := e.connect(t, "rw")
	ro, _ := e.connect(t, "ro")

	var page struct {
		Files      []filehub.File `json:"files"`
		NextCursor string         `json:"next_cursor"`
	}
	wantResult(t, c.call(1, "l1", wsproto.MethodFilesList, `{"limit":1}`), &page)
	if len(page.Files) != 1 || page.Files[0].ID != a.ID || page.NextCursor == "" {
		t.Fatalf("list page 1 = %+v", page)
	}
	wantResult(t, c.call(2, "l2", wsproto.MethodFilesList, fmt.Sprintf(`{"limit":1,"cursor":%q}`, page.NextCursor)), &page)
	if len(page.Files) != 1 || page.Files[0].ID != b.ID {
		t.Fatalf("list page 2 = %+v", page)
	}
	var f filehub.File
	wantResult(t, c.call(3, "s1", wsproto.MethodFilesStat, fmt.Sprintf(`{"id":%q}`, a.ID)), &f)
	if f.ID != a.ID || f.SHA256 != a.SHA256 || f.Name != "a.txt" {
		t.Fatalf("stat = %+v", f)
	}
	wantError(t, c.call(4, "s2", wsproto.MethodFilesStat, `{"id":"f_nope"}`), filehub.ENOTFOUND)
	wantError(t, c.call(5, "s3", wsproto.MethodFilesStat, `{}`), filehub.EINVALID)
	wantError(t, c.call(6, "u1", "files.frobnicate", `{}`), wsproto.CodeUnknownMethod)

	// A read-only key may read but not delete.
	wantResult(t, ro.call(1, "s1", wsproto.MethodFilesStat, fmt.Sprintf(`{"id":%q}`, a.ID)), &f)
	wantError(t, ro.call(2, "d1", wsproto.MethodFilesDelete, fmt.Sprintf(`{"id":%q}`, a.ID)), filehub.EFORBIDDEN)
	wantError(t, ro.call(3, "r1", wsproto.MethodFilesRestore, fmt.Sprintf(`{"id":%q}`, a.ID)), filehub.EFORBIDDEN)

	wantResult(t, c.call(7, "d1", wsproto.MethodFilesDelete, fmt.Sprintf(`{"id":%q}`, a.ID)), &f)
	if f.DeletedAt == nil {
		t.Fatalf("deleted file = %+v, want deleted_at", f)
	}
	// At most once: the same request id as a new frame gets the stored
	// result instead of running again (which would be not_found).
	again := c.call(8, "d1", wsproto.MethodFilesDelete, fmt.Sprintf(`{"id":%q}`, a.ID))
	var f2 filehub.File
	wantResult(t, again, &f2)
	if f2.ID != a.ID || f2.DeletedAt == nil || !f2.DeletedAt.Equal(*f.DeletedAt) {
		t.Fatalf("re-sent delete = %+v, want the stored result", f2)
	}
	if again.Seq != 8 {
		t.Errorf("re-sent request's res has seq %d, want a new seq 8", again.Seq)
	}
	wantError(t, c.call(9, "d2", wsproto.MethodFilesDelete, fmt.Sprintf(`{"id":%q}`, a.ID)), filehub.ENOTFOUND)
	var restored filehub.File
	wantResult(t, c.call(10, "r1", wsproto.MethodFilesRestore, fmt.Sprintf(`{"id":%q}`, a.ID)), &restored)
	if restored.DeletedAt != nil {
		t.Fatalf("restored file = %+v", restored)
	}
	if _, err := e.files.Get(t.Context(), a.ID); err != nil {
		t.Fatalf("restored file not live: %v", err)
	}
	if got := e.metric("filehub_ws_rpcs_total"); got != 13 {
		t.Errorf("rpcs_total = %v, want 13", got)
	}
}

// event reads the next event frame, acknowledging it.
func (c *client) event() *filehub.Event {
	c.t.Helper()
	f := c.expect(wsproto.TypeEvent)
	c.send(&wsproto.Frame{Type: wsproto.TypeAck, Ack: f.Seq})
	return f.Event
}

type subResult struct {
	After, Oldest, Latest int64
}

func TestEventsSubscribe(t *testing.T) { bothModes(t, testEventsSubscribe) }

func testEventsSubscribe(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{EventPollInterval: time.Hour}) // only Notify wakes the hub
	var created []*filehub.File
	for i := range 5 {
		created = append(created, e.upload(t, fmt.Sprintf("f%d", i), fmt.Sprintf("content %d", i)))
	}
	t.Run("from 0", func(t *testing.T) {
		c, _ := e.connect(t, "ro")
		var r subResult
		wantResult(t, c.call(1, "sub", wsproto.MethodEventsSubscribe, `{"after":0}`), &r)
		if r.After != 0 || r.Oldest != 1 || r.Latest != 5 {
			t.Fatalf("subscribe = %+v", r)
		}
		for i := range 5 {
			ev := c.event()
			if ev.ID != int64(i+1) || ev.Type != filehub.EventFileCreated || ev.File.ID != created[i].ID {
				t.Fatalf("event %d = %+v", i, ev)
			}
		}
	})
	t.Run("from N then live", func(t *testing.T) {
		c, _ := e.connect(t, "ro")
		var r subResult
		wantResult(t, c.call(1, "sub", wsproto.MethodEventsSubscribe, `{"after":3}`), &r)
		for _, want := range []int64{4, 5} {
			if ev := c.event(); ev.ID != want {
				t.Fatalf("event %d, want %d", ev.ID, want)
			}
		}
		f := e.upload(t, "live", "live content")
		e.srv.Notify()
		if ev := c.event(); ev.ID != 6 || ev.File.ID != f.ID {
			t.Fatalf("live event = %+v", ev)
		}
		// Unsubscribed sessions get no more events.
		var empty struct{}
		wantResult(t, c.call(2, "unsub", wsproto.MethodEventsUnsubscribe, `{}`), &empty)
		e.upload(t, "after", "after unsubscribe")
		e.srv.Notify()
		wantResult(t, c.call(3, "stat", wsproto.MethodFilesList, `{}`), &struct{}{})
	})
	t.Run("gap after trimming", func(t *testing.T) {
		if _, err := e.db.TrimEvents(t.Context(), time.Time{}, 2); err != nil {
			t.Fatal(err)
		}
		c, _ := e.connect(t, "ro")
		res := c.call(1, "sub", wsproto.MethodEventsSubscribe, `{"after":2}`)
		wantError(t, res, wsproto.CodeGap)
		// After the last trimmed event there is no gap, and 0 means
		// "from the oldest retained".
		var r subResult
		wantResult(t, c.call(2, "sub2", wsproto.MethodEventsSubscribe, `{"after":5}`), &r)
		if r.Oldest != 6 || r.Latest != 7 {
			t.Fatalf("subscribe = %+v", r)
		}
		for _, want := range []int64{6, 7} {
			if ev := c.event(); ev.ID != want {
				t.Fatalf("event %d, want %d", ev.ID, want)
			}
		}
		c2, _ := e.connect(t, "ro")
		wantResult(t, c2.call(1, "sub", wsproto.MethodEventsSubscribe, `{"after":0}`), &r)
		if ev := c2.event(); ev.ID != 6 {
			t.Fatalf("first event from 0 = %d, want the oldest retained, 6", ev.ID)
		}
	})
	t.Run("forbidden for write-only", func(t *testing.T) {
		c, _ := e.connect(t, "wo")
		wantError(t, c.call(1, "sub", wsproto.MethodEventsSubscribe, `{}`), filehub.EFORBIDDEN)
	})
}

func TestEventsFromAnotherProcessArriveByPolling(t *testing.T) {
	bothModes(t, testEventsFromAnotherProcessArriveByPolling)
}

func testEventsFromAnotherProcessArriveByPolling(t *testing.T, m mode) {
	e := newEnvIn(t, m, wsserver.Config{EventPollInterval: 10 * time.Millisecond})
	c, _ := e.connect(t, "ro")
	var r subResult
	wantResult(t, c.call(1, "sub", wsproto.MethodEventsSubscribe, `{"after":0}`), &r)

	// A second DB on the same file stands for another process.
	other, err := sqlite.Open(context.Background(), filepath.Join(e.dir, "meta.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	f := &filehub.File{
		ID: filehub.NewID("f_"), Name: "elsewhere", Size: 1, ContentType: "text/plain",
		SHA256:    "0000000000000000000000000000000000000000000000000000000000000001",
		CreatedAt: time.Now(), OwnerKeyID: "k_other",
	}
	if _, err := other.CreateFile(t.Context(), f, nil); err != nil {
		t.Fatal(err)
	}
	if ev := c.event(); ev.File == nil || ev.File.ID != f.ID {
		t.Fatalf("event = %+v, want the other process's file", ev)
	}
}

// TestHubSkipsEventsWithoutSubscribers: while no session subscribes the hub
// moves past new events without holding them; a session that subscribes
// afterwards from an older cursor still gets every event (from the store),
// and once one subscribes the ring fills again.
func TestHubSkipsEventsWithoutSubscribers(t *testing.T) {
	e := newEnv(t, wsserver.Config{EventPollInterval: time.Hour}) // only Notify wakes the hub
	var created []*filehub.File
	for i := range 3 {
		created = append(created, e.upload(t, fmt.Sprintf("f%d", i), fmt.Sprintf("unwatched %d", i)))
	}
	e.srv.Notify()
	waitFor(t, "the hub to reach event 3", func() bool { latest, _ := e.srv.HubRing(); return latest == 3 })
	if _, held := e.srv.HubRing(); held != 0 {
		t.Fatalf("the ring holds %d events with no subscriber", held)
	}

	c, _ := e.connect(t, "ro")
	var r subResult
	wantResult(t, c.call(1, "sub", wsproto.MethodEventsSubscribe, `{"after":1}`), &r)
	for _, f := range created[1:] {
		if ev := c.event(); ev.File == nil || ev.File.ID != f.ID {
			t.Fatalf("event = %+v, want file %s", ev, f.ID)
		}
	}
	live := e.upload(t, "live", "watched")
	e.srv.Notify()
	if ev := c.event(); ev.ID != 4 || ev.File.ID != live.ID {
		t.Fatalf("live event = %+v", ev)
	}
	if _, held := e.srv.HubRing(); held == 0 {
		t.Fatal("the ring holds nothing with a subscriber")
	}
}
