package main_test

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // to plant a newer schema version

	main "github.com/filehub/filehub/cmd/filehub"
)

type migrateStatus struct {
	Version    int64 `json:"version"`
	Newest     int64 `json:"newest_known"`
	Migrations []struct {
		Version   int64   `json:"version"`
		Name      string  `json:"name"`
		AppliedAt *string `json:"applied_at"`
	} `json:"migrations"`
}

func mustMigrateStatus(t *testing.T, env map[string]string, args ...string) migrateStatus {
	t.Helper()
	r := MustCLI(t, env, append([]string{"migrate", "status", "--json"}, args...)...)
	var st migrateStatus
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("migrate status --json: %v\n%s", err, r.Stdout)
	}
	return st
}

// TestMigrateSQLite rolls a data dir's schema back and forth with the
// migrate command and checks what the server makes of each state: it
// upgrades an older schema itself, and refuses a newer one.
func TestMigrateSQLite(t *testing.T) {
	dataDir := t.TempDir()
	env := map[string]string{"FILEHUB_DATA_DIR": dataDir}
	MustFail(t, env, main.ExitFailure, "no filehub database", "migrate", "status")

	s := MustRunMain(t, dataDir, map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	st := mustMigrateStatus(t, env)
	// Versions need not be contiguous: branches take numbers ahead of
	// their merge (issue 15's 00007 before issue 10's 00006).
	last := len(st.Migrations) - 1
	if st.Version == 0 || st.Version != st.Newest || last < 1 || st.Migrations[last].Version != st.Newest {
		t.Fatalf("status of a served data dir: %+v", st)
	}
	newest, prev := st.Newest, st.Migrations[last-1].Version
	for _, m := range st.Migrations {
		if m.AppliedAt == nil || !strings.HasSuffix(m.Name, ".sql") {
			t.Errorf("migration %+v: want applied, named after its file", m)
		}
	}
	r := MustCLI(t, env, "migrate", "status")
	for _, want := range []string{"VERSION", "APPLIED", "schema version"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("migrate status lacks %q:\n%s", want, r.Stdout)
		}
	}

	// The running server holds the data dir: no schema change under it.
	MustFail(t, env, main.ExitFailure, "in use", "migrate", "down")
	MustFail(t, env, main.ExitFailure, "in use", "migrate", "up")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// One step, then down to version 1.
	r = MustCLI(t, env, "migrate", "down")
	if want := "rolled back version " + itoa(newest) + "\n"; r.Stdout != want {
		t.Errorf("migrate down printed %q, want %q", r.Stdout, want)
	}
	if st := mustMigrateStatus(t, env); st.Version != prev || st.Migrations[last].AppliedAt != nil {
		t.Errorf("after one step down: %+v", st)
	}
	MustCLI(t, nil, "migrate", "down", "--to", "1", "--data-dir", dataDir)
	if st := mustMigrateStatus(t, env); st.Version != 1 {
		t.Errorf("after down --to 1: version %d", st.Version)
	}
	r = MustCLI(t, env, "migrate", "down", "--to", "1")
	if !strings.Contains(r.Stdout, "at version 1 already") {
		t.Errorf("down to the current version printed %q", r.Stdout)
	}
	MustFail(t, env, main.ExitUsage, "--to", "migrate", "down", "--to", "-3")

	// up brings it back; a second up has nothing to do.
	r = MustCLI(t, env, "migrate", "up")
	if want := "migrated schema from version 1 to " + itoa(newest) + "\n"; r.Stdout != want {
		t.Errorf("migrate up printed %q, want %q", r.Stdout, want)
	}
	r = MustCLI(t, env, "migrate", "up")
	if !strings.Contains(r.Stdout, "up to date") {
		t.Errorf("second migrate up printed %q", r.Stdout)
	}

	// A server on an older schema upgrades it when it starts.
	MustCLI(t, env, "migrate", "down", "--to", "1")
	s = MustRunMain(t, dataDir, map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	assertStatus(t, s.URL+"/v1/files", testKey, 200)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := mustMigrateStatus(t, env); st.Version != newest {
		t.Errorf("the server left the schema at version %d, want %d", st.Version, newest)
	}

	// A newer filehub's schema: the server and this migrate refuse it,
	// naming the versions, so the operator knows to roll back with the
	// newer binary.
	plantSchemaVersion(t, filepath.Join(dataDir, "filehub.db"), newest+1)
	err := StartErr(t, dataDir, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "schema version "+itoa(newest+1)) {
		t.Errorf("server on a newer schema: %v, want a refusal naming version %d", err, newest+1)
	}
	MustFail(t, env, main.ExitFailure, "upgrade filehub", "migrate", "status")
	MustFail(t, env, main.ExitFailure, "upgrade filehub", "migrate", "down")
}

// plantSchemaVersion records version as applied, as a newer filehub's
// migration would.
func plantSchemaVersion(t *testing.T, path string, version int64) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, 1)`, version); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestCommandsOnSharedStores runs the commands that open the stores
// themselves (keys, migrate, cleanup, audit) on PostgreSQL and S3, next to
// a server using them.
func TestCommandsOnSharedStores(t *testing.T) {
	db := mustPostgresSchema(t)
	s3srv := newFakeS3(t)
	for _, kv := range s3srv.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // the S3 client of this process reads them
	}
	env := map[string]string{"FILEHUB_DB": db}

	// keys create on a new database creates the schema first.
	secret := strings.TrimSpace(MustCLI(t, env, "keys", "create", "--name", "ci", "--scope", "read").Stdout)
	admin := strings.TrimSpace(MustCLI(t, env, "keys", "create", "--name", "ops", "--scope", "admin").Stdout)
	st := mustMigrateStatus(t, env)
	if st.Version == 0 || st.Version != st.Newest {
		t.Fatalf("status after keys create: %+v", st)
	}
	MustCLI(t, env, "migrate", "down", "--to", "1")
	if st := mustMigrateStatus(t, nil, "--db", db); st.Version != 1 {
		t.Fatalf("after down --to 1 on PostgreSQL: version %d", st.Version)
	}
	MustFail(t, map[string]string{"FILEHUB_DB": "mysql://x"}, main.ExitUsage, "--db", "migrate", "status")

	// The server upgrades the schema and serves with the keys made before
	// (and makes no bootstrap key: keys exist).
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, func(c *main.ServeConfig) {
		c.DB = db
		c.Blobs = s3srv.URL
		c.CleanupInterval = 0
	})
	if st := mustMigrateStatus(t, env); st.Version != st.Newest {
		t.Errorf("the server left the schema at version %d", st.Version)
	}
	assertStatus(t, s.URL+"/v1/files", secret, 200)
	uploadFile(t, clientEnv(s, admin), "a.txt", "stored in the bucket")

	r := MustCLI(t, env, "keys", "list", "--json")
	if !strings.Contains(r.Stdout, `"ci"`) || !strings.Contains(r.Stdout, `"ops"`) || strings.Contains(r.Stdout, `"bootstrap"`) {
		t.Errorf("keys list on PostgreSQL: %s", r.Stdout)
	}

	// cleanup and audit directly on the shared stores, while the server
	// runs: no data dir, no lock; the lease keeps runs apart.
	r = MustCLI(t, nil, "cleanup", "run", "--json", "--db", db, "--blobs", s3srv.URL)
	var rep struct {
		Status string `json:"status"`
		Kinds  map[string]struct {
			Scanned int64 `json:"scanned"`
		} `json:"kinds"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("cleanup run --json: %v\n%s", err, r.Stdout)
	}
	if rep.Status != "ok" || rep.Kinds["orphan_object"].Scanned != 1 {
		t.Errorf("cleanup run on the shared stores: %s", r.Stdout)
	}
	MustCLI(t, nil, "audit", "--db", db, "--blobs", s3srv.URL)
	MustFail(t, nil, main.ExitUsage, "--data-dir", "cleanup", "report", "--db", db)
	// FILEHUB_DB alone does not turn a cleanup command into one on the
	// stores: it talks to the server, which sees the run made on them.
	r = MustCLI(t, map[string]string{"FILEHUB_DB": "postgres://127.0.0.1:1/none", "FILEHUB_SERVER": s.URL, "FILEHUB_KEY": admin},
		"cleanup", "report", "--last", "1", "--format", "json")
	if !strings.Contains(r.Stdout, `"trigger":"cli"`) {
		t.Errorf("cleanup report through the server lacks the run made on the stores:\n%s", r.Stdout)
	}
}
