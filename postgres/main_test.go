package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/filehub/filehub/internal/citest"
	"github.com/filehub/filehub/postgres"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// defaultDSN is the server CI runs and developers' machines usually have.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	dsnOnce sync.Once
	dsnVal  string
	dsnErr  error // set: fail; dsnVal empty and no error: skip
)

// testDSN returns the DSN of the test server. With FILEHUB_TEST_POSTGRES
// set, an unreachable server fails the test (CI must not skip silently);
// unset, the test fails in CI (CI set to a true value), and elsewhere the
// default server is tried and the test skipped if none answers.
func testDSN(tb testing.TB) string {
	tb.Helper()
	dsnOnce.Do(func() {
		dsn, set := os.LookupEnv("FILEHUB_TEST_POSTGRES")
		if !set || dsn == "" {
			if citest.InCI() {
				dsnErr = fmt.Errorf("CI is set but FILEHUB_TEST_POSTGRES is not: the PostgreSQL tests must run in CI, not skip")
				return
			}
			if reachable(defaultDSN) == nil {
				dsnVal = defaultDSN
			}
			return
		}
		if err := reachable(dsn); err != nil {
			dsnErr = fmt.Errorf("FILEHUB_TEST_POSTGRES is set but the server does not answer: %w", err)
			return
		}
		dsnVal = dsn
	})
	if dsnErr != nil {
		tb.Fatal(dsnErr)
	}
	if dsnVal == "" {
		tb.Skip("no PostgreSQL reachable: set FILEHUB_TEST_POSTGRES to run the PostgreSQL tests")
	}
	return dsnVal
}

func reachable(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// adminExec runs statements on a connection of its own.
func adminExec(tb testing.TB, sql ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testDSN(tb))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range sql {
		if _, err := conn.Exec(ctx, q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
}

// freshSchema creates an empty schema, dropped when the test ends, and
// returns its name.
func freshSchema(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "test_" + hex.EncodeToString(b[:])
	adminExec(tb, "CREATE SCHEMA "+name)
	tb.Cleanup(func() { adminExec(tb, "DROP SCHEMA "+name+" CASCADE") })
	return name
}

// mustOpen opens a store on a fresh schema (unless cfg names one) and
// closes it when the test ends.
func mustOpen(tb testing.TB, cfg postgres.Config) *postgres.DB {
	tb.Helper()
	dsn := testDSN(tb)
	if cfg.Schema == "" {
		cfg.Schema = freshSchema(tb)
	}
	return mustOpenDSN(tb, dsn, cfg)
}

func mustOpenDSN(tb testing.TB, dsn string, cfg postgres.Config) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), dsn, cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}
