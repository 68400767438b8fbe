package main_test

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/filehub/filehub/api"
	main "github.com/filehub/filehub/cmd/filehub"
)

func mustCheckReport(t *testing.T, out string) *api.CheckReport {
	t.Helper()
	var r api.CheckReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("check report %q: %v", out, err)
	}
	return &r
}

func problemOf(rep *api.CheckReport, kind string) *api.CheckProblem {
	for i := range rep.Problems {
		if rep.Problems[i].Kind == kind {
			return &rep.Problems[i]
		}
	}
	return nil
}

// TestCheck damages a running server's stores three ways (corrupt content,
// a deleted object, a skewed count) and checks that `filehub check` finds
// each through the server and on the data dir, exits 1, and that
// --repair fixes the count.
func TestCheck(t *testing.T) {
	dataDir := t.TempDir()
	s := MustRunMain(t, dataDir, map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	env := clientEnv(s, testKey)
	corrupt := uploadFile(t, env, "a.txt", "content to corrupt")
	deleted := uploadFile(t, env, "b.txt", "content to delete")
	skewed := uploadFile(t, env, "c.txt", "content to miscount")

	rep := mustCheckReport(t, MustCLI(t, env, "check", "--read-data", "--json").Stdout)
	if !rep.OK() || rep.Blobs != 3 || rep.BlobsRead != 3 {
		t.Fatalf("check of a healthy server = %+v", rep)
	}
	if out := MustCLI(t, env, "check").Stdout; !strings.Contains(out, "checked 3 blobs, 3 files") {
		t.Errorf("table output %q lacks the summary", out)
	}

	object := func(sum string) string { return filepath.Join(dataDir, "blobs", sum[:2], sum) }
	if err := os.WriteFile(object(corrupt.SHA256), []byte("CONTENT TO CORRUPT"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(object(deleted.SHA256)); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dataDir, "filehub.db")+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE blobs SET ref_count = 3 WHERE sha256 = ?`, skewed.SHA256); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// Through the server, and on the data dir while the server runs.
	for _, target := range []struct {
		env  map[string]string
		args []string
	}{{env, nil}, {map[string]string{}, []string{"--data-dir", dataDir}}} {
		args := append([]string{"check", "--read-data", "--json"}, target.args...)
		r := CLI(t, target.env, nil, args...)
		if r.Code != main.ExitFailure || !strings.Contains(r.Stderr, "check found 3 problem(s)") {
			t.Fatalf("filehub %v: exit %d, stderr %q; want 1 and 3 problems", args, r.Code, r.Stderr)
		}
		rep := mustCheckReport(t, r.Stdout)
		for kind, f := range map[string]uploaded{api.CheckCorruptObject: corrupt, api.CheckMissingObject: deleted, api.CheckRefCount: skewed} {
			p := problemOf(rep, kind)
			if p == nil || p.SHA256 != f.SHA256 || len(p.FileIDs) != 1 || p.FileIDs[0] != f.ID {
				t.Errorf("filehub %v: %s = %+v, want blob %s of file %s", args, kind, p, f.SHA256, f.ID)
			}
		}
	}
	// --repair through the server fixes the count, not the content.
	r := CLI(t, env, nil, "check", "--repair", "--json")
	if r.Code != main.ExitFailure {
		t.Fatalf("check --repair: exit %d, want 1 (the missing object stays)", r.Code)
	}
	if p := problemOf(mustCheckReport(t, r.Stdout), api.CheckRefCount); p == nil || !p.Repaired {
		t.Errorf("check --repair: ref_count = %+v, want repaired", p)
	}
	rep = mustCheckReport(t, CLI(t, env, nil, "check", "--json").Stdout)
	if problemOf(rep, api.CheckRefCount) != nil || problemOf(rep, api.CheckMissingObject) == nil {
		t.Errorf("after repair: %+v, want only the missing object", rep.Problems)
	}
	audit := MustCLI(t, env, "audit", "--action", "blob.refcount_repaired").Stdout
	if !strings.Contains(audit, skewed.SHA256) {
		t.Errorf("audit lacks the repair: %s", audit)
	}
	// A repair on the data dir needs the lock the server holds.
	MustFail(t, map[string]string{}, main.ExitFailure, "in use by another filehub server", "check", "--repair", "--data-dir", dataDir)
	MustFail(t, env, main.ExitUsage, "percentage", "check", "--read-data-subset", "0%")
}

// TestCheckOnSharedStores runs check directly on PostgreSQL and S3 (--db,
// --blobs) next to the server using them: clean, then a deleted object
// is found by its sum and file.
func TestCheckOnSharedStores(t *testing.T) {
	db := mustPostgresSchema(t)
	s3srv := newFakeS3(t)
	for _, kv := range s3srv.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // the S3 client of this process reads them
	}
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, func(c *main.ServeConfig) {
		c.DB, c.Blobs, c.CleanupInterval = db, s3srv.URL, 0
	})
	env := clientEnv(s, testKey)
	kept := uploadFile(t, env, "a.txt", "kept in the bucket")
	lost := uploadFile(t, env, "b.txt", "lost from the bucket")

	rep := mustCheckReport(t, MustCLI(t, nil, "check", "--read-data", "--json", "--db", db, "--blobs", s3srv.URL).Stdout)
	if !rep.OK() || rep.Blobs != 2 || rep.BlobsRead != 2 || rep.Objects != 2 {
		t.Fatalf("check of healthy shared stores = %+v", rep)
	}
	var key string
	for _, k := range s3srv.keys(t, "") {
		if strings.HasSuffix(k, lost.SHA256) {
			key = k
		}
	}
	if key == "" {
		t.Fatalf("no object of %s in the bucket", lost.SHA256)
	}
	if _, err := s3srv.backend.DeleteObject(s3srv.bucket, key); err != nil {
		t.Fatal(err)
	}
	r := CLI(t, nil, nil, "check", "--json", "--db", db, "--blobs", s3srv.URL)
	if r.Code != main.ExitFailure {
		t.Fatalf("check after deleting an object: exit %d, stderr %s", r.Code, r.Stderr)
	}
	p := problemOf(mustCheckReport(t, r.Stdout), api.CheckMissingObject)
	if p == nil || p.SHA256 != lost.SHA256 || len(p.FileIDs) != 1 || p.FileIDs[0] != lost.ID {
		t.Errorf("missing_object = %+v, want %s of file %s (not %s)", p, lost.SHA256, lost.ID, kept.ID)
	}
}
