package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/filehub/filehub/postgres"
)

// watch runs db.WatchEvents until the test ends and returns the channel
// its wake-ups arrive on (coalesced, as a reader would see them).
func watch(t *testing.T, db *postgres.DB) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	woken := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- db.WatchEvents(ctx, func() {
			select {
			case woken <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchEvents after its context ended = %v, want nil", err)
		}
	})
	return woken
}

// mustWake waits for a wake-up; what for says what should have caused it.
func mustWake(t *testing.T, woken <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatalf("no wake-up within 10s %s", what)
	}
}

// TestWatchEventsHearsOtherStore checks that an event committed through
// one store wakes a watcher on another store of the same schema, as it
// would another process: nothing else wakes it (there is no poll here).
func TestWatchEventsHearsOtherStore(t *testing.T) {
	schema := freshSchema(t)
	a := mustOpen(t, postgres.Config{Schema: schema})
	b := mustOpen(t, postgres.Config{Schema: schema})
	woken := watch(t, a)
	mustWake(t, woken, "once listening")
	for i := range 3 {
		if _, err := b.CreateFile(t.Context(), newFile("from b "+string(rune('0'+i))), nil); err != nil {
			t.Fatal(err)
		}
		mustWake(t, woken, "after an event committed by another store")
	}
}

// TestWatchEventsReconnects cuts the watcher's connection and refuses
// new ones for a while: the watcher must keep trying, wake once it
// listens again (what was appended meanwhile was not heard), and then
// hear events as before.
func TestWatchEventsReconnects(t *testing.T) {
	schema := freshSchema(t)
	proxy, dsn := proxiedDSN(t)
	a := mustOpenDSN(t, dsn, postgres.Config{Schema: schema, ConnectTimeout: time.Second})
	b := mustOpen(t, postgres.Config{Schema: schema})
	woken := watch(t, a)
	mustWake(t, woken, "once listening")

	proxy.Refuse(true)
	proxy.CutAll()
	// Appended while the watcher cannot listen: only the wake-up after
	// the reconnect tells of it.
	if _, err := b.CreateFile(t.Context(), newFile("during the outage"), nil); err != nil {
		t.Fatal(err)
	}
	proxy.Refuse(false)
	mustWake(t, woken, "after the connection came back")
	if _, err := b.CreateFile(t.Context(), newFile("after the outage"), nil); err != nil {
		t.Fatal(err)
	}
	mustWake(t, woken, "after an event committed once reconnected")
}
