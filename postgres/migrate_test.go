package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/postgres"
)

// newFile returns a complete file record for content.
func newFile(content string) *filehub.File {
	h := sha256.Sum256([]byte(content))
	return &filehub.File{
		ID:          filehub.NewID("f_"),
		Name:        "name.txt",
		Size:        int64(len(content)),
		SHA256:      hex.EncodeToString(h[:]),
		ContentType: "text/plain",
		CreatedAt:   time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC),
		OwnerKeyID:  "k_test",
	}
}

// tables lists the tables of schema, sorted.
func tables(t *testing.T, schema string) []string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT table_name FROM information_schema.tables
		WHERE table_schema = $1 AND table_name <> 'goose_db_version' ORDER BY table_name`, schema)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMigrations(t *testing.T) {
	ctx := t.Context()
	schema := freshSchema(t)
	db := mustOpen(t, postgres.Config{Schema: schema, NoMigrate: true})
	status := func() []postgres.Migration {
		t.Helper()
		st, err := db.MigrationStatus(ctx)
		if err != nil {
			t.Fatalf("MigrationStatus: %v", err)
		}
		// The same versions and names as sqlite's, so `filehub migrate
		// status` reads the same on both.
		var names []string
		for _, m := range st {
			names = append(names, m.Name)
		}
		want := []string{"00001_init.sql", "00002_events_time.sql", "00003_cleanup.sql"}
		if len(names) < len(want) || !slices.Equal(names[:len(want)], want) || st[0].Version != 1 {
			t.Fatalf("MigrationStatus = %+v, want %v first", st, want)
		}
		return st
	}

	if got := tables(t, schema); len(got) != 0 {
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
	want := "api_keys,audit_log,blobs,cleanup_runs,cleanup_settings,events,files,instances,leases,log_counters,provider_files,uploads,ws_session_frames,ws_session_results,ws_sessions"
	if got := tables(t, schema); strings.Join(got, ",") != want {
		t.Errorf("after Migrate, tables = %v, want %s", got, want)
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

	// Down, one at a time, to nothing; each step leaves a usable earlier
	// schema (checked by the tables it should have).
	for i := range st {
		if err := db.MigrateDown(ctx); err != nil {
			t.Fatalf("MigrateDown #%d: %v", i+1, err)
		}
	}
	if got := tables(t, schema); len(got) != 0 {
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
	if events, err := db.ListEvents(ctx, 0, 10); err != nil || len(events) != 1 || events[0].ID != 1 {
		t.Errorf("events after re-migrating = %v, %v; want one with id 1", events, err)
	}
}

// TestMigrateConcurrently opens one fresh schema from several stores at
// once, as several filehub processes starting together would: the
// migration lock makes each migration apply once and every Open succeed.
func TestMigrateConcurrently(t *testing.T) {
	schema := freshSchema(t)
	dsn := testDSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			db, err := postgres.Open(t.Context(), dsn, postgres.Config{Schema: schema})
			if err != nil {
				errs <- err
				return
			}
			errs <- db.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
	db := mustOpen(t, postgres.Config{Schema: schema, NoMigrate: true})
	if _, err := db.CreateFile(t.Context(), newFile("after concurrent migrate"), nil); err != nil {
		t.Errorf("CreateFile: %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := t.Context()
	schema := freshSchema(t)
	db, err := postgres.Open(ctx, testDSN(t), postgres.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// What a future filehub would leave behind.
	adminExec(t, `INSERT INTO `+schema+`.goose_db_version (version_id, is_applied) VALUES (99999, true)`)
	for _, cfg := range []postgres.Config{{Schema: schema}, {Schema: schema, NoMigrate: true}} {
		db, err := postgres.Open(ctx, testDSN(t), cfg)
		if err == nil {
			db.Close()
			t.Fatalf("Open(%+v) of a newer schema succeeded", cfg)
		}
		if filehub.ErrorCode(err) != filehub.EUNAVAILABLE || !strings.Contains(filehub.ErrorMessage(err), "99999") {
			t.Errorf("Open(%+v) = %v, want EUNAVAILABLE naming version 99999", cfg, err)
		}
	}
}

func TestOpenInvalidDSN(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://user:secret@host:notaport/db", postgres.Config{})
	if filehub.ErrorCode(err) != filehub.EINVALID || strings.Contains(err.Error(), "secret") {
		t.Errorf("Open(bad DSN) = %v, want EINVALID without the password", err)
	}
}

// TestTimePrecision checks that times keep their microseconds and come back
// in UTC.
func TestTimePrecision(t *testing.T) {
	db := mustOpen(t, postgres.Config{})
	f := newFile("precise")
	f.CreatedAt = time.Date(2025, 6, 7, 8, 9, 10, 987654000, time.FixedZone("X", 3600))
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
