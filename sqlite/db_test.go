package sqlite_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/sqlite"
	"github.com/filehub/filehub/storetest"
)

// mustOpen opens a database at path and closes it when the test ends.
func mustOpen(tb testing.TB, path string, cfg sqlite.Config) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), path, cfg)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

func tempPath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "meta.db")
}

// rawDB opens the file with plain database/sql, as a foreign tool would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newFile returns a complete file record for content.
func newFile(content string) *filehub.File {
	h := sha256.Sum256([]byte(content))
	return &filehub.File{
		ID:          filehub.NewID("f_"),
		Name:        "name.txt",
		Size:        int64(len(content)),
		SHA256:      hex.EncodeToString(h[:]),
		ContentType: "text/plain",
		CreatedAt:   time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		OwnerKeyID:  "k_test",
	}
}

func TestMetaStore(t *testing.T) {
	storetest.RunMetaStore(t, func(t *testing.T) filehub.MetaStore {
		return mustOpen(t, tempPath(t), sqlite.Config{})
	})
}

func TestCleanupStore(t *testing.T) {
	storetest.RunCleanupStore(t, func(t *testing.T) filehub.MetaStore {
		return mustOpen(t, tempPath(t), sqlite.Config{})
	})
}

func TestPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	db := mustOpen(t, "rel.db", sqlite.Config{})
	if want := filepath.Join(dir, "rel.db"); db.Path() != want {
		t.Errorf("Path() = %q, want %q", db.Path(), want)
	}
}

func TestOpenInvalid(t *testing.T) {
	_, err := sqlite.Open(t.Context(), "", sqlite.Config{})
	if filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("Open(\"\") = %v, want EINVALID", err)
	}
	// A directory cannot be a database.
	_, err = sqlite.Open(t.Context(), t.TempDir(), sqlite.Config{})
	if filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
		t.Errorf("Open(directory) = %v, want EUNAVAILABLE", err)
	}
}

// TestTimePrecision checks that times keep their nanoseconds and come back
// in UTC.
func TestTimePrecision(t *testing.T) {
	db := mustOpen(t, tempPath(t), sqlite.Config{})
	f := newFile("precise")
	f.CreatedAt = time.Date(2025, 6, 7, 8, 9, 10, 987654321, time.FixedZone("X", 3600))
	if _, err := db.CreateFile(t.Context(), f, nil); err != nil {
		t.Fatal(err)
	}
	got, err := db.FindFile(t.Context(), f.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(f.CreatedAt) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v in UTC", got.CreatedAt, f.CreatedAt)
	}
}

// TestUnreferencedSince checks the column the cleanup service will scan,
// which filehub.Blob does not expose.
func TestUnreferencedSince(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	db := mustOpen(t, path, sqlite.Config{})
	raw := rawDB(t, path)
	f := newFile("unreferenced")
	since := func() sql.NullInt64 {
		t.Helper()
		var n sql.NullInt64
		if err := raw.QueryRowContext(ctx, `SELECT unreferenced_since FROM blobs WHERE sha256 = ?`, f.SHA256).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if _, err := db.CreateFile(ctx, f, nil); err != nil {
		t.Fatal(err)
	}
	if n := since(); n.Valid {
		t.Errorf("referenced blob has unreferenced_since %d", n.Int64)
	}
	before := time.Now()
	if _, err := db.PurgeFile(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	n := since()
	if !n.Valid || time.Unix(0, n.Int64).Before(before.Add(-time.Second)) {
		t.Errorf("after the last purge, unreferenced_since = %v, want about %v", n, before)
	}
	if _, err := db.CreateFile(ctx, newFile("unreferenced"), nil); err != nil {
		t.Fatal(err)
	}
	if n := since(); n.Valid {
		t.Errorf("revived blob still has unreferenced_since %d", n.Int64)
	}
}

func TestMigrations(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	db := mustOpen(t, path, sqlite.Config{NoMigrate: true})
	raw := rawDB(t, path)
	tables := func() []string {
		t.Helper()
		rows, err := raw.QueryContext(ctx, `SELECT name FROM sqlite_master
			WHERE type = 'table' AND name IN ('files', 'blobs', 'api_keys', 'events') ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		return names
	}
	status := func() []sqlite.Migration {
		t.Helper()
		st, err := db.MigrationStatus(ctx)
		if err != nil {
			t.Fatalf("MigrationStatus: %v", err)
		}
		if len(st) == 0 || st[0].Version != 1 || st[0].Name != "00001_init.sql" {
			t.Fatalf("MigrationStatus = %+v, want 00001_init.sql first", st)
		}
		return st
	}

	if got := tables(); len(got) != 0 {
		t.Fatalf("NoMigrate created tables %v", got)
	}
	if st := status(); st[0].AppliedAt != nil {
		t.Errorf("before Migrate, migration 1 applied at %v", st[0].AppliedAt)
	}
	if _, err := db.CreateFile(ctx, newFile("x"), nil); err == nil {
		t.Errorf("CreateFile without schema succeeded")
	}

	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if got := tables(); strings.Join(got, ",") != "api_keys,blobs,events,files" {
		t.Errorf("after Migrate, tables = %v", got)
	}
	st := status()
	for _, m := range st {
		if m.AppliedAt == nil {
			t.Errorf("after Migrate, migration %s is pending", m.Name)
		}
	}
	if err := db.Migrate(ctx); err != nil {
		t.Errorf("second Migrate: %v", err)
	}

	// Down, one at a time, to nothing.
	for range st {
		if err := db.MigrateDown(ctx); err != nil {
			t.Fatalf("MigrateDown: %v", err)
		}
	}
	if got := tables(); len(got) != 0 {
		t.Errorf("after MigrateDown of all, tables %v remain", got)
	}
	if st := status(); st[0].AppliedAt != nil {
		t.Errorf("after MigrateDown, migration 1 still applied")
	}
	if err := db.MigrateDown(ctx); filehub.ErrorCode(err) != filehub.ECONFLICT {
		t.Errorf("MigrateDown with nothing applied = %v, want ECONFLICT", err)
	}

	// And up again: the store works.
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate after down: %v", err)
	}
	f := newFile("after remigrate")
	if _, err := db.CreateFile(ctx, f, nil); err != nil {
		t.Errorf("CreateFile after re-migrating: %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	db, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// What a future filehub would leave behind.
	raw := rawDB(t, path)
	if _, err := raw.ExecContext(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, 1)`); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []sqlite.Config{{}, {NoMigrate: true}} {
		db, err := sqlite.Open(ctx, path, cfg)
		if err == nil {
			db.Close()
			t.Fatalf("Open(%+v) of a newer schema succeeded", cfg)
		}
		if filehub.ErrorCode(err) != filehub.EUNAVAILABLE || !strings.Contains(filehub.ErrorMessage(err), "99999") {
			t.Errorf("Open(%+v) = %v, want EUNAVAILABLE naming version 99999", cfg, err)
		}
	}
}

// TestWALMode checks the journal mode, which other processes' concurrent
// access relies on; it is a property of the file, so visible to any reader.
func TestWALMode(t *testing.T) {
	path := tempPath(t)
	mustOpen(t, path, sqlite.Config{})
	var mode string
	if err := rawDB(t, path).QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

// TestTwoHandles opens the same file twice, as the server and the `keys`
// command would, and writes through both at once.
func TestTwoHandles(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	a := mustOpen(t, path, sqlite.Config{})
	b := mustOpen(t, path, sqlite.Config{})

	f := newFile("shared")
	if _, err := a.CreateFile(ctx, f, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := b.FindFile(ctx, f.ID); err != nil || got.ID != f.ID {
		t.Fatalf("other handle: FindFile = %v, %v", got, err)
	}
	k := &filehub.APIKey{
		ID: filehub.NewID("k_"), Name: "cli", Scopes: []filehub.Scope{filehub.ScopeAdmin},
		CreatedAt: time.Now(), Hash: filehub.HashAPIKey("secret"),
	}
	if err := b.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if got, err := a.FindAPIKeyByHash(ctx, k.Hash); err != nil || got.ID != k.ID {
		t.Fatalf("other handle: FindAPIKeyByHash = %v, %v", got, err)
	}

	// Concurrent writers on both handles: every write lands, counts add up.
	const perHandle = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*perHandle)
	for _, db := range []*sqlite.DB{a, b} {
		for range perHandle {
			wg.Go(func() {
				if _, err := db.CreateFile(ctx, newFile("shared"), nil); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent CreateFile: %v", err)
	}
	for _, db := range []*sqlite.DB{a, b} {
		blob, err := db.FindBlob(ctx, f.SHA256)
		if err != nil || blob.RefCount != 2*perHandle+1 {
			t.Errorf("FindBlob = %+v, %v; want ref count %d", blob, err, 2*perHandle+1)
		}
	}
}

// gatedStore opens a store inside a synctest bubble whose writer is held up
// in a place callback until release is called, so that requests made
// meanwhile queue up and form the next batch. It returns the blocked
// request's result channel.
func gatedStore(t *testing.T, reg prometheus.Registerer) (db *sqlite.DB, release func(), blocked <-chan error) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), tempPath(t), sqlite.Config{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	entered := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		_, err := db.CreateFile(context.Background(), newFile("gate"), func(context.Context) error {
			close(entered)
			<-gate
			return nil
		})
		res <- err
	}()
	<-entered
	return db, sync.OnceFunc(func() { close(gate) }), res
}

// TestGroupCommitIsolation makes one request of a batch fail and checks that
// the others of the same batch commit.
func TestGroupCommitIsolation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		reg := prometheus.NewRegistry()
		db, release, blocked := gatedStore(t, reg)
		defer db.Close()

		const n = 10
		const failing = 4
		placeErr := filehub.Errorf(filehub.ESTORAGE, "injected place failure")
		files := make([]*filehub.File, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range files {
			files[i] = newFile(fmt.Sprintf("batched %d", i))
			wg.Go(func() {
				_, errs[i] = db.CreateFile(ctx, files[i], func(context.Context) error {
					if i == failing {
						return placeErr
					}
					return nil
				})
			})
		}
		// Every request is now waiting for the writer.
		synctest.Wait()
		release()
		wg.Wait()
		if err := <-blocked; err != nil {
			t.Fatalf("gate request: %v", err)
		}

		for i, f := range files {
			_, findErr := db.FindFile(ctx, f.ID)
			_, blobErr := db.FindBlob(ctx, f.SHA256)
			if i == failing {
				if !errors.Is(errs[i], placeErr) {
					t.Errorf("failing request: %v, want %v", errs[i], placeErr)
				}
				if findErr == nil || blobErr == nil {
					t.Errorf("failing request left a file (%v) or blob (%v)", findErr, blobErr)
				}
				continue
			}
			if errs[i] != nil || findErr != nil || blobErr != nil {
				t.Errorf("request %d: CreateFile %v, FindFile %v, FindBlob %v", i, errs[i], findErr, blobErr)
			}
		}
		events, err := db.ListEvents(ctx, 0, 100)
		if err != nil || len(events) != n {
			t.Errorf("ListEvents = %d events, %v; want %d (gate + %d successes)", len(events), err, n, n-1)
		}

		// The point of the test: the n requests were one batch.
		count, sum := batchStats(t, reg)
		if count != 2 || sum != n+1 {
			t.Errorf("write batches: %d batches of %v requests in total, want 2 batches (gate, then %d)", count, sum, n)
		}
	})
}

// batchStats returns the number of write batches and of requests in them.
func batchStats(t testing.TB, reg *prometheus.Registry) (count uint64, sum float64) {
	t.Helper()
	return histStats(t, reg, "filehub_sqlite_write_batch_size")
}

// histStats returns the sample count and sum of the histogram name.
func histStats(t testing.TB, reg *prometheus.Registry, name string) (count uint64, sum float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("no %s metric", name)
	return 0, 0
}

// TestPlacePanics checks that a panicking place callback fails its own
// request only and leaves the store working.
func TestPlacePanics(t *testing.T) {
	ctx := t.Context()
	db := mustOpen(t, tempPath(t), sqlite.Config{})
	f := newFile("panics")
	_, err := db.CreateFile(ctx, f, func(context.Context) error { panic("boom") })
	if filehub.ErrorCode(err) != filehub.EINTERNAL {
		t.Errorf("CreateFile with a panicking place = %v, want EINTERNAL", err)
	}
	if _, err := db.FindBlob(ctx, f.SHA256); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("FindBlob after the panic = %v, want ENOTFOUND", err)
	}
	if _, err := db.CreateFile(ctx, f, nil); err != nil {
		t.Errorf("CreateFile after the panic: %v", err)
	}
}

// TestCancelWhileQueued checks that a request whose context ends while it
// waits for the writer returns at once and writes nothing.
func TestCancelWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, release, blocked := gatedStore(t, nil)
		defer db.Close()

		ctx, cancel := context.WithCancel(t.Context())
		f := newFile("canceled")
		res := make(chan error, 1)
		go func() {
			_, err := db.CreateFile(ctx, f, nil)
			res <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-res; !errors.Is(err, context.Canceled) {
			t.Errorf("canceled queued CreateFile = %v, want context.Canceled", err)
		}
		release()
		if err := <-blocked; err != nil {
			t.Fatal(err)
		}
		if _, err := db.FindFile(t.Context(), f.ID); !errors.Is(err, filehub.ErrNotFound) {
			t.Errorf("FindFile of the canceled request = %v, want ENOTFOUND", err)
		}
	})
}

// TestCloseWithQueuedRequests checks that Close finishes the batch being
// written, fails the queued requests and stops the writer.
func TestCloseWithQueuedRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, release, blocked := gatedStore(t, nil)
		f := newFile("queued at close")
		res := make(chan error, 1)
		go func() {
			_, err := db.CreateFile(t.Context(), f, nil)
			res <- err
		}()
		synctest.Wait()
		closed := make(chan error, 1)
		go func() { closed <- db.Close() }()

		// The queued request fails without waiting for the batch.
		if err := <-res; filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
			t.Errorf("queued CreateFile at Close = %v, want EUNAVAILABLE", err)
		}
		release()
		if err := <-blocked; err != nil {
			t.Errorf("request being written at Close = %v, want success", err)
		}
		if err := <-closed; err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := db.Ping(t.Context()); filehub.ErrorCode(err) != filehub.EUNAVAILABLE {
			t.Errorf("Ping after Close = %v, want EUNAVAILABLE", err)
		}
	})
}

// TestErrorsHideSQL checks that client-facing messages carry no SQL.
func TestErrorsHideSQL(t *testing.T) {
	ctx := t.Context()
	db := mustOpen(t, tempPath(t), sqlite.Config{})
	f := newFile("hide")
	if _, err := db.CreateFile(ctx, f, nil); err != nil {
		t.Fatal(err)
	}
	_, err := db.CreateFile(ctx, f, nil)
	if filehub.ErrorCode(err) != filehub.ECONFLICT {
		t.Fatalf("duplicate = %v, want ECONFLICT", err)
	}
	k := &filehub.APIKey{ID: "k_1", Name: "a", Scopes: []filehub.Scope{filehub.ScopeRead}, CreatedAt: time.Now(), Hash: []byte{1}}
	if err := db.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	kerr := db.CreateAPIKey(ctx, k)
	for _, err := range []error{err, kerr} {
		msg := strings.ToUpper(filehub.ErrorMessage(err))
		for _, word := range []string{"INSERT", "SELECT", "UNIQUE", "CONSTRAINT", "SQLITE"} {
			if strings.Contains(msg, word) {
				t.Errorf("message %q contains %q", filehub.ErrorMessage(err), word)
			}
		}
	}
}

func TestCreateFileSizeMismatch(t *testing.T) {
	ctx := t.Context()
	db := mustOpen(t, tempPath(t), sqlite.Config{})
	f := newFile("sized")
	if _, err := db.CreateFile(ctx, f, nil); err != nil {
		t.Fatal(err)
	}
	g := newFile("sized")
	g.Size++
	if _, err := db.CreateFile(ctx, g, nil); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("CreateFile with a size not matching its blob = %v, want EINVALID", err)
	}
	if b, err := db.FindBlob(ctx, f.SHA256); err != nil || b.RefCount != 1 {
		t.Errorf("FindBlob = %+v, %v; want ref count 1", b, err)
	}
}

// BenchmarkCreateFile measures uploads recorded per second by 50 concurrent
// callers, with group commit and without it (MaxBatch 1, one transaction and
// one fsync per file) as the baseline of the same run.
func BenchmarkCreateFile(b *testing.B) {
	for _, bc := range []struct {
		name     string
		maxBatch int
	}{
		{"group", 0},
		{"single", 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			db := mustOpen(b, tempPath(b), sqlite.Config{MaxBatch: bc.maxBatch, Registerer: reg})
			var seq atomic.Int64
			b.SetParallelism(max(1, 50/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					f := newFile(fmt.Sprintf("bench %d", seq.Add(1)))
					if _, err := db.CreateFile(context.Background(), f, func(context.Context) error { return nil }); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
			if count, sum := batchStats(b, reg); count > 0 {
				b.ReportMetric(sum/float64(count), "files/batch")
			}
			if count, sum := histStats(b, reg, "filehub_sqlite_write_batch_duration_seconds"); count > 0 {
				b.ReportMetric(sum/float64(count)*1e6, "µs/batch")
			}
		})
	}
}

// TestBlobsWithoutRowid checks migration 4, which rebuilds blobs as a
// WITHOUT ROWID table, and its Down on a database with data: every column
// of every row survives both ways, the index is there, and files keep
// referring to their blobs with the foreign key enforced.
func TestBlobsWithoutRowid(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	db := mustOpen(t, path, sqlite.Config{})
	raw := rawDB(t, path)
	fk, err := sql.Open("sqlite", path+"?_busy_timeout=5000&_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	defer fk.Close()
	fk.SetMaxOpenConns(1)

	live := newFile("live content")
	if _, err := db.CreateFile(ctx, live, nil); err != nil {
		t.Fatal(err)
	}
	// A record with every optional column set, as no store call makes one.
	if _, err := raw.ExecContext(ctx, `INSERT INTO blobs (sha256, size, ref_count, created_at, unreferenced_since, marked_at, missing_since)
		VALUES (?, 7, 0, 1, 2, 3, 4)`, strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}

	rows := func() string {
		t.Helper()
		r, err := raw.QueryContext(ctx, `SELECT sha256, size, ref_count, created_at, unreferenced_since, marked_at, missing_since
			FROM blobs ORDER BY sha256`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var b strings.Builder
		for r.Next() {
			var sum string
			var size, refs, created int64
			var unref, marked, missing sql.NullInt64
			if err := r.Scan(&sum, &size, &refs, &created, &unref, &marked, &missing); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, sum, size, refs, created, unref, marked, missing)
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	check := func(when string, wantWithoutRowid bool, want string) {
		t.Helper()
		var ddl string
		if err := raw.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'blobs'`).Scan(&ddl); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if got := strings.Contains(ddl, "WITHOUT ROWID"); got != wantWithoutRowid {
			t.Errorf("%s: blobs is WITHOUT ROWID: %v, want %v:\n%s", when, got, wantWithoutRowid, ddl)
		}
		if got := rows(); got != want {
			t.Errorf("%s: blobs\n%s\nwant\n%s", when, got, want)
		}
		var n int
		if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master
			WHERE type = 'index' AND name = 'blobs_unreferenced_since' AND tbl_name = 'blobs'`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%s: blobs_unreferenced_since index: %d, %v", when, n, err)
		}
		var problems int
		if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&problems); err != nil || problems != 0 {
			t.Errorf("%s: foreign key check: %d problems, %v", when, problems, err)
		}
		if _, err := fk.ExecContext(ctx, `DELETE FROM blobs WHERE sha256 = ?`, live.SHA256); err == nil {
			t.Errorf("%s: deleting a referenced blob succeeded", when)
		}
		if _, err := fk.ExecContext(ctx, `UPDATE files SET sha256 = ? WHERE id = ?`, strings.Repeat("cd", 32), live.ID); err == nil {
			t.Errorf("%s: pointing a file at no blob succeeded", when)
		}
	}
	want := rows()
	check("migrated", true, want)

	// Roll back to before migration 4; later migrations come off first.
	for {
		st, err := db.MigrationStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st[3].Version != 4 {
			t.Fatalf("the fourth migration is version %d", st[3].Version)
		}
		if st[3].AppliedAt == nil {
			break
		}
		if err := db.MigrateDown(ctx); err != nil {
			t.Fatalf("MigrateDown: %v", err)
		}
	}
	check("after Down", false, want)

	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	check("after Up again", true, want)
	// The store works on the rebuilt table: a duplicate upload references
	// the existing blob.
	dup := newFile("live content")
	if _, err := db.CreateFile(ctx, dup, nil); err != nil {
		t.Fatal(err)
	}
	if b, err := db.FindBlob(ctx, live.SHA256); err != nil || b.RefCount != 2 {
		t.Errorf("FindBlob after a duplicate upload = %+v, %v; want 2 references", b, err)
	}
}

func TestProviderStore(t *testing.T) {
	storetest.RunProviderStore(t, func(t *testing.T) filehub.MetaStore {
		return mustOpen(t, tempPath(t), sqlite.Config{})
	})
}

func TestUploadStore(t *testing.T) {
	storetest.RunUploadStore(t, func(t *testing.T) filehub.MetaStore {
		return mustOpen(t, tempPath(t), sqlite.Config{})
	})
}

func TestChecker(t *testing.T) {
	storetest.RunChecker(t, func(t *testing.T) (filehub.MetaStore, storetest.SetRefCount) {
		db := mustOpen(t, tempPath(t), sqlite.Config{})
		return db, func(t *testing.T, sum string, n int64) {
			if _, err := rawDB(t, db.Path()).Exec(`UPDATE blobs SET ref_count = ? WHERE sha256 = ?`, n, sum); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestInstanceStore(t *testing.T) {
	storetest.RunInstanceStore(t, func(t *testing.T) filehub.MetaStore {
		return mustOpen(t, tempPath(t), sqlite.Config{})
	})
}
