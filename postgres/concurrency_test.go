package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/chaosproxy"
	"github.com/filehub/filehub/postgres"
)

// TestEventOrderUnderConcurrentAppends has writers on two stores (two
// "processes" on one schema) append events while a reader follows the log
// the way subscribers do, asking for "id > last seen". With ids from a
// sequence, a transaction holding a lower id can commit after one holding
// a higher id, and the reader skips it for good; the store must make that
// impossible. The reader must see every id any writer got, in order.
func TestEventOrderUnderConcurrentAppends(t *testing.T) {
	schema := freshSchema(t)
	a := mustOpen(t, postgres.Config{Schema: schema, MaxConns: 16})
	b := mustOpen(t, postgres.Config{Schema: schema, MaxConns: 16})
	ctx := t.Context()
	const writers, perWriter = 16, 40

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		assigned = map[int64]bool{}
		done     = make(chan struct{})
		failed   atomic.Bool
	)
	for w := range writers {
		db := a
		if w%2 == 1 {
			db = b
		}
		wg.Go(func() {
			for i := range perWriter {
				if i%2 == 0 {
					// A file change: the event is appended after other
					// statements of its transaction.
					f := newFile(fmt.Sprintf("w%d-%d", w, i%5)) // some dedup too
					if _, err := db.CreateFile(ctx, f, nil); err != nil {
						t.Errorf("CreateFile: %v", err)
						failed.Store(true)
						return
					}
					continue
				}
				e := &filehub.Event{Type: filehub.EventCleanupStarted, Run: &filehub.CleanupRun{ID: int64(w)}}
				if err := db.AppendEvent(ctx, e); err != nil {
					t.Errorf("AppendEvent: %v", err)
					failed.Store(true)
					return
				}
				mu.Lock()
				assigned[e.ID] = true
				mu.Unlock()
			}
		})
	}
	go func() { wg.Wait(); close(done) }()

	var seen []int64
	last := int64(0)
	follow := func() {
		for {
			page, err := b.ListEvents(ctx, last, 1000)
			if err != nil {
				t.Fatalf("ListEvents: %v", err)
			}
			for _, e := range page {
				seen = append(seen, e.ID)
				last = e.ID
			}
			if len(page) < 1000 {
				return
			}
		}
	}
	for following := true; following; {
		select {
		case <-done:
			following = false
		default:
		}
		follow() // one last time after the writers are done
	}
	if failed.Load() {
		t.FailNow()
	}
	total := writers * perWriter
	if len(seen) != total {
		t.Fatalf("reader saw %d events, want %d", len(seen), total)
	}
	for i, id := range seen {
		if id != int64(i+1) {
			t.Fatalf("reader saw id %d at position %d: ids are not gap-free and in order (missed or reordered)", id, i)
		}
	}
	for id := range assigned {
		if id < 1 || id > int64(total) {
			t.Errorf("AppendEvent returned id %d outside 1..%d", id, total)
		}
	}
	if oldest, latest, err := a.EventBounds(ctx); err != nil || oldest != 1 || latest != int64(total) {
		t.Errorf("EventBounds = %d, %d, %v; want 1, %d", oldest, latest, err, total)
	}
}

// TestDedupAcrossStores uploads one content concurrently through two stores
// on one schema, as two filehub processes would: one blob, the right
// count, place called once.
func TestDedupAcrossStores(t *testing.T) {
	schema := freshSchema(t)
	stores := []*postgres.DB{mustOpen(t, postgres.Config{Schema: schema}), mustOpen(t, postgres.Config{Schema: schema})}
	const n = 40
	var (
		wg     sync.WaitGroup
		places atomic.Int64
		fresh  atomic.Int64
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			dedup, err := stores[i%2].CreateFile(t.Context(), newFile("shared content"), func(context.Context) error {
				places.Add(1)
				return nil
			})
			if err != nil {
				t.Errorf("CreateFile: %v", err)
			}
			if !dedup {
				fresh.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	b, err := stores[0].FindBlob(t.Context(), newFile("shared content").SHA256)
	if err != nil || b.RefCount != n || places.Load() != 1 || fresh.Load() != 1 {
		t.Errorf("blob %+v, %v; place calls %d, fresh %d; want count %d, 1, 1", b, err, places.Load(), fresh.Load(), n)
	}
}

// TestSweepBlocksCreate checks that a sweep holds the content while its
// delete callback runs: a CreateFile of the same content started meanwhile
// in another store waits, then finds no record and places the object anew.
func TestSweepBlocksCreate(t *testing.T) {
	schema := freshSchema(t)
	a := mustOpen(t, postgres.Config{Schema: schema})
	b := mustOpen(t, postgres.Config{Schema: schema})
	ctx := t.Context()
	f := newFile("swept while uploaded")
	if _, err := a.CreateFile(ctx, f, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PurgeFile(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := a.MarkBlobs(ctx, []string{f.SHA256}, time.Now()); err != nil || n != 1 {
		t.Fatalf("MarkBlobs = %d, %v", n, err)
	}

	inDel := make(chan struct{})
	release := make(chan struct{})
	created := make(chan error, 1)
	var placed atomic.Bool
	go func() {
		<-inDel
		dedup, err := b.CreateFile(ctx, newFile("swept while uploaded"), func(context.Context) error {
			placed.Store(true)
			return nil
		})
		if err == nil && dedup {
			err = errors.New("CreateFile deduplicated against a record being swept")
		}
		created <- err
	}()
	fence, ok, err := a.AcquireLease(ctx, "cleanup", "a", time.Now(), time.Hour)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	swept, err := a.SweepBlob(ctx, fence, f.SHA256, time.Now().Add(time.Hour), func(context.Context) error {
		close(inDel)
		select {
		case err := <-created:
			return fmt.Errorf("CreateFile finished while the sweep held the content: %v", err)
		case <-release:
		case <-time.After(300 * time.Millisecond): // long enough for the create to reach the lock
		}
		return nil
	}, filehub.AuditEntry{Action: filehub.AuditBlobSwept, Actor: filehub.ActorSystem})
	close(release)
	if err != nil || !swept {
		t.Fatalf("SweepBlob = %v, %v", swept, err)
	}
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if !placed.Load() {
		t.Errorf("CreateFile after the sweep did not place the object")
	}
	if bl, err := a.FindBlob(ctx, f.SHA256); err != nil || bl.RefCount != 1 {
		t.Errorf("blob after sweep and re-upload = %+v, %v; want count 1", bl, err)
	}
}

// proxiedDSN starts a chaos proxy in front of the test server and returns
// it with a DSN that goes through it.
func proxiedDSN(t *testing.T) (*chaosproxy.Proxy, string) {
	t.Helper()
	dsn := testDSN(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		t.Skip("the proxy test needs a URL DSN")
	}
	p, err := chaosproxy.New(net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	u.Host = p.Addr()
	return p, u.String()
}

// TestBrokenConnection cuts the store's connections and refuses new ones,
// as a dead or restarting server would: requests must fail fast with
// EUNAVAILABLE, and succeed again once the server is back, without
// reopening the store.
func TestBrokenConnection(t *testing.T) {
	schema := freshSchema(t)
	proxy, dsn := proxiedDSN(t)
	db := mustOpenDSN(t, dsn, postgres.Config{Schema: schema, ConnectTimeout: time.Second})
	ctx := t.Context()
	f := newFile("before the outage")
	if _, err := db.CreateFile(ctx, f, nil); err != nil {
		t.Fatal(err)
	}

	proxy.Refuse(true)
	proxy.CutAll()
	calls := map[string]func() error{
		"Ping":       func() error { return db.Ping(ctx) },
		"FindFile":   func() error { _, err := db.FindFile(ctx, f.ID); return err },
		"ListEvents": func() error { _, err := db.ListEvents(ctx, 0, 10); return err },
		"CreateFile": func() error { _, err := db.CreateFile(ctx, newFile("during the outage"), nil); return err },
		"SoftDelete": func() error { _, err := db.SoftDeleteFile(ctx, f.ID, time.Now(), time.Now()); return err },
	}
	for round := range 2 { // the first meets dead pooled connections, the second must dial
		for name, call := range calls {
			start := time.Now()
			err := call()
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("round %d: %s took %v while the server was unreachable, want < 3s", round, name, took)
			}
			if filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
				t.Errorf("round %d: %s during the outage = %v, want EUNAVAILABLE", round, name, err)
			}
		}
	}
	// Opening a store while the server is down fails fast too.
	start := time.Now()
	if db2, err := postgres.Open(ctx, dsn, postgres.Config{Schema: schema, ConnectTimeout: time.Second}); err == nil {
		db2.Close()
		t.Errorf("Open while the server is unreachable succeeded")
	} else if filehub.ErrorCode(err) != filehub.EUNAVAILABLE || time.Since(start) > 3*time.Second {
		t.Errorf("Open while the server is unreachable = %v after %v, want EUNAVAILABLE fast", err, time.Since(start))
	}

	proxy.Refuse(false)
	healed := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if db.Ping(ctx) == nil {
			healed = true
			break
		}
	}
	if !healed {
		t.Fatalf("store did not heal within 10s after the server came back")
	}
	g := newFile("after the outage")
	if _, err := db.CreateFile(ctx, g, nil); err != nil {
		t.Fatalf("CreateFile after the outage: %v", err)
	}
	if _, err := db.FindFile(ctx, g.ID); err != nil {
		t.Fatalf("FindFile after the outage: %v", err)
	}
	// Nothing half-written: the log has the two creates only.
	if events, err := db.ListEvents(ctx, 0, 10); err != nil || len(events) != 2 {
		t.Errorf("events after the outage = %d, %v; want 2", len(events), err)
	}

	// A cut without refusal (a server restart that is quick, or a network
	// blip): whatever fails, fails as EUNAVAILABLE, and the store recovers.
	proxy.CutAll()
	var lastErr error
	for range 3 {
		lastErr = db.Ping(ctx)
		if lastErr != nil && filehub.ErrorCode(lastErr) != filehub.EUNAVAILABLE {
			t.Errorf("Ping after a cut = %v, want nil or EUNAVAILABLE", lastErr)
		}
	}
	if lastErr != nil {
		t.Errorf("store did not recover from a cut: %v", lastErr)
	}
}

// TestCanceledContext checks that a caller's done context comes back as
// the context error, not EUNAVAILABLE, and records nothing.
func TestCanceledContext(t *testing.T) {
	db := mustOpen(t, postgres.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := db.CreateFile(ctx, newFile("canceled"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateFile(canceled) = %v, want context.Canceled", err)
	}
	if _, err := db.FindFile(ctx, "f_x"); !errors.Is(err, context.Canceled) {
		t.Errorf("FindFile(canceled) = %v, want context.Canceled", err)
	}
}

// TestFencedStepBlocksTakeover checks the PostgreSQL side of fencing: while
// a fenced step of one process runs (its lease expired meanwhile), another
// process's AcquireLease waits on the lease row instead of starting a run
// in the middle of the step; once the step commits, it takes the lease with
// a new generation, and the first process's fence is refused from then on.
func TestFencedStepBlocksTakeover(t *testing.T) {
	schema := freshSchema(t)
	a := mustOpen(t, postgres.Config{Schema: schema})
	b := mustOpen(t, postgres.Config{Schema: schema})
	ctx := t.Context()
	now := time.Now()
	fa, ok, err := a.AcquireLease(ctx, "cleanup", "a", now, time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	type acquired struct {
		f   filehub.Fence
		ok  bool
		err error
	}
	took := make(chan acquired, 1)
	err = a.Fenced(ctx, fa, func(ctx context.Context) error {
		go func() {
			// a's lease has expired by b's clock.
			f, ok, err := b.AcquireLease(ctx, "cleanup", "b", now.Add(time.Hour), time.Minute)
			took <- acquired{f, ok, err}
		}()
		// Wait until b's acquisition is blocked on a lock (not merely
		// slow), then check it has not returned.
		waitFor(t, func() bool { return leaseWaiters(t) > 0 })
		select {
		case got := <-took:
			return fmt.Errorf("AcquireLease returned during a fenced step: %+v", got)
		default:
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := <-took
	if got.err != nil || !got.ok || got.f.Generation <= fa.Generation {
		t.Fatalf("AcquireLease after the step = %+v; want b with a larger generation than %d", got, fa.Generation)
	}
	if err := a.Fenced(ctx, fa, func(context.Context) error { return nil }); !errors.Is(err, filehub.ErrLeaseLost) {
		t.Errorf("Fenced with a's fence after b took the lease = %v, want ErrLeaseLost", err)
	}
}

// leaseWaiters returns the number of backends of the test database waiting
// for a lock in an upsert of a lease.
func leaseWaiters(t *testing.T) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'
		  AND query LIKE '%INSERT INTO leases%'`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
