package mcpserver_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/mcpserver"
)

// countingMeta counts the event log reads of Local.Watch.
type countingMeta struct {
	filehub.MetaStore
	lists, bounds atomic.Int64
}

func (m *countingMeta) ListEvents(ctx context.Context, after int64, limit int) ([]*filehub.Event, error) {
	m.lists.Add(1)
	return m.MetaStore.ListEvents(ctx, after, limit)
}

func (m *countingMeta) EventBounds(ctx context.Context) (int64, int64, error) {
	m.bounds.Add(1)
	return m.MetaStore.EventBounds(ctx)
}

// While Local.Idle holds, Watch reads no event, not even when woken, and
// moves past the events written meanwhile at its poll; once it no longer
// holds, the events written from then on are delivered.
func TestWatchIdle(t *testing.T) {
	e := newEnv(t, nil)
	meta := &countingMeta{MetaStore: e.meta}
	l := mcpserver.NewLocal(e.svc, meta, nil, nil)
	l.PollInterval = 5 * time.Millisecond
	var idle atomic.Bool
	idle.Store(true)
	l.Idle = idle.Load

	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan *filehub.Event, 100)
	done := make(chan error, 1)
	go func() { done <- l.Watch(ctx, 0, func(ev *filehub.Event) { got <- ev }) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	upload := func(name string) string {
		t.Helper()
		up, err := e.svc.Upload(t.Context(), strings.NewReader("content of "+name), name, "k_test")
		if err != nil {
			t.Fatal(err)
		}
		return up.File.ID
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}

	upload("skipped.txt")
	l.Notify()
	// Two polls after the upload: the second surely read the bounds after
	// it was written.
	b := meta.bounds.Load()
	waitFor("two idle polls", func() bool { return meta.bounds.Load() >= b+2 })
	if n := meta.lists.Load(); n != 0 {
		t.Fatalf("idle Watch read the event log %d times", n)
	}
	select {
	case ev := <-got:
		t.Fatalf("idle Watch delivered %s %v", ev.Type, ev.File)
	default:
	}

	idle.Store(false)
	id := upload("seen.txt")
	l.Notify()
	var ev *filehub.Event
	select {
	case ev = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no event after Idle ended")
	}
	if ev.File == nil || ev.File.ID != id {
		t.Fatalf("first event after Idle ended: %s %+v, want the creation of %s", ev.Type, ev.File, id)
	}
}
