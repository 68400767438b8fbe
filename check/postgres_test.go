package check_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/internal/citest"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/postgres"
)

// TestPostgres runs the check on PostgreSQL (with blobs on disk; the blob
// side is the same code for S3): a skewed count and a deleted object are
// found, and --repair fixes the count.
func TestPostgres(t *testing.T) {
	dsn := citest.PostgresDSN(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])
	admin := func(q string) {
		t.Helper()
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	admin("CREATE SCHEMA " + schema)
	t.Cleanup(func() { admin("DROP SCHEMA " + schema + " CASCADE") })
	meta, err := postgres.Open(t.Context(), dsn, postgres.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	dir := t.TempDir()
	blobs, err := localfs.Open(dir, localfs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{dir: dir, meta: meta, blobs: blobs}
	skewed := fx.put(t, "miscounted")
	deleted := fx.put(t, "deleted")
	fx.put(t, "fine")
	if rep := fx.check(t, api.CheckRequest{ReadData: true}); !rep.OK() || rep.Blobs != 3 || rep.Events != 3 {
		t.Fatalf("healthy store: %+v", rep)
	}
	admin(fmt.Sprintf(`UPDATE %s.blobs SET ref_count = 4 WHERE sha256 = '%s'`, schema, skewed.SHA256))
	if err := os.Remove(fx.objectPath(deleted.SHA256)); err != nil {
		t.Fatal(err)
	}
	got := kinds(fx.check(t, api.CheckRequest{Repair: true}))
	if p := got[api.CheckRefCount]; len(p) != 1 || p[0].SHA256 != skewed.SHA256 || !p[0].Repaired {
		t.Errorf("ref_count = %+v, want %s repaired", p, skewed.SHA256)
	}
	if p := got[api.CheckMissingObject]; len(p) != 1 || p[0].SHA256 != deleted.SHA256 || p[0].FileIDs[0] != deleted.ID {
		t.Errorf("missing_object = %+v, want %s", p, deleted.SHA256)
	}
	if b, err := meta.FindBlob(t.Context(), skewed.SHA256); err != nil || b.RefCount != 1 {
		t.Errorf("after repair: %+v, %v; want ref count 1", b, err)
	}
}
