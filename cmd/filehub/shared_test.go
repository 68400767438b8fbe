package main_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/filehub/filehub/internal/citest"
)

// Helpers for tests against the shared stores: a PostgreSQL schema of their
// own and an in-process S3-compatible server.

// postgresEnv names the PostgreSQL server the tests use; CI sets it (see
// .ci/run), e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const postgresEnv = "FILEHUB_TEST_POSTGRES"

// mustPostgresSchema creates a schema of the test's own in the database of
// FILEHUB_TEST_POSTGRES, drops it when the test ends, and returns a URL
// whose connections use it (search_path). The test is skipped if the
// variable is not set (failed in CI), and fails if it is set but the server
// cannot be reached: CI must not pass by skipping.
func mustPostgresSchema(t *testing.T) string {
	t.Helper()
	base := citest.PostgresDSN(t) // skips, or fails in CI, when unset
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("%s is set but PostgreSQL cannot be reached: %v", postgresEnv, err)
	}
	defer conn.Close(context.Background())
	b := make([]byte, 6)
	rand.Read(b)
	schema := "filehub_cmd_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withQuery(t, base, "search_path", schema)
}

// withQuery returns rawURL with the query parameter k set to v.
func withQuery(t *testing.T, rawURL, k, v string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("%s: %v", postgresEnv, err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// withHost returns rawURL with its host:port replaced.
func withHost(t *testing.T, rawURL, host string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = host
	return u.String()
}

// postgresHost returns the host:port of a postgres URL.
func postgresHost(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return u.Hostname() + ":5432"
	}
	return u.Host
}

// fakeS3 is an S3-compatible server in the test process, on 127.0.0.1,
// speaking the real protocol to the real client.
type fakeS3 struct {
	backend *s3mem.Backend
	bucket  string
	URL     string // the --blobs URL
	// Env holds the credentials a filehub process needs (the fake server
	// does not check them, but the SDK will not sign without).
	Env []string
}

const fakeS3Bucket = "filehub-test"

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(fakeS3Bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return &fakeS3{
		backend: backend,
		bucket:  fakeS3Bucket,
		URL:     "s3://" + fakeS3Bucket + "?endpoint=" + url.QueryEscape(srv.URL) + "&region=us-east-1&path_style=true",
		Env: []string{
			"AWS_ACCESS_KEY_ID=filehub-test",
			"AWS_SECRET_ACCESS_KEY=filehub-test-secret",
			"AWS_REGION=us-east-1",
			// Never ask an instance metadata service for credentials.
			"AWS_EC2_METADATA_DISABLED=true",
		},
	}
}

// keys returns the keys of the bucket's objects under prefix.
func (f *fakeS3) keys(t *testing.T, prefix string) []string {
	t.Helper()
	var keys []string
	page := gofakes3.ListBucketPage{MaxKeys: 1000}
	for {
		list, err := f.backend.ListBucket(f.bucket, &gofakes3.Prefix{HasPrefix: true, Prefix: prefix}, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list.Contents {
			keys = append(keys, c.Key)
		}
		if !list.IsTruncated || len(list.Contents) == 0 {
			return keys
		}
		page.Marker, page.HasMarker = list.Contents[len(list.Contents)-1].Key, true
	}
}
