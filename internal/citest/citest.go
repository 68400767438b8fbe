// Package citest tells tests whether they run in continuous integration,
// where a test that needs a service must fail rather than skip when the
// service is not configured: a skipped test in CI is a test that silently
// stopped running.
package citest

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// PostgresEnv names the PostgreSQL server the tests use, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const PostgresEnv = "FILEHUB_TEST_POSTGRES"

// InCI reports whether the CI environment variable is set to a true value
// ("true", "1", "yes", ...), as CI systems set it. "false" and "0" are not.
func InCI() bool { return isTrue(os.Getenv("CI")) }

func isTrue(v string) bool {
	v = strings.TrimSpace(v)
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	switch strings.ToLower(v) {
	case "yes", "on", "y":
		return true
	}
	return false
}

// PostgresDSN returns the value of FILEHUB_TEST_POSTGRES. When it is not
// set the test is skipped, or, in CI, fails.
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	dsn := strings.TrimSpace(os.Getenv(PostgresEnv))
	if dsn == "" {
		Unconfigured(tb, PostgresEnv+" is not set: the test needs PostgreSQL (e.g. "+PostgresEnv+
			"=postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	return dsn
}

// Unconfigured skips the test for the reason given, or fails it in CI.
func Unconfigured(tb testing.TB, reason string) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("in CI (CI=%s): %s", os.Getenv("CI"), reason)
	}
	tb.Skip(reason)
}
