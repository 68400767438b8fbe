package cleanup_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/postgres"
)

// pgHooked is a PostgreSQL store with a hook before SweepBlob, like
// hookedStore.
type pgHooked struct {
	*postgres.DB
	beforeSweep func()
}

func (h *pgHooked) SweepBlob(ctx context.Context, f filehub.Fence, sum string, before time.Time,
	del func(ctx context.Context) error, audit filehub.AuditEntry) (bool, error) {
	if h.beforeSweep != nil {
		h.beforeSweep()
	}
	return h.DB.SweepBlob(ctx, f, sum, before, del, audit)
}

// pgSchema creates a schema of the test's own in FILEHUB_TEST_POSTGRES and
// drops it at the end; the test is skipped without the variable.
func pgSchema(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("FILEHUB_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("FILEHUB_TEST_POSTGRES is not set")
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("FILEHUB_TEST_POSTGRES is set but PostgreSQL cannot be reached: %v", err)
	}
	defer conn.Close(context.Background())
	b := make([]byte, 6)
	rand.Read(b)
	schema := "cleanup_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	return schema
}

// TestStalledRunIsFencedOnPostgres is TestStalledRunIsFencedInTheStore with
// two instances as two processes would be: each with its own connection
// pool to one PostgreSQL schema. A stalls before its sweep past the lease;
// B takes the lease and holds it while A's stale sweep reaches the store,
// which refuses it. Only B sweeps, and every live file is intact.
func TestStalledRunIsFencedOnPostgres(t *testing.T) {
	schema := pgSchema(t)
	dsn := os.Getenv("FILEHUB_TEST_POSTGRES")
	open := func() *postgres.DB {
		db, err := postgres.Open(t.Context(), dsn, postgres.Config{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	dbA, dbB := open(), open()
	blobs, err := localfs.Open(t.TempDir(), localfs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	fs, err := files.New(dbA, blobs, files.Config{MinFreeSpace: -1, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	upload := func(content string) *filehub.File {
		up, err := fs.Upload(t.Context(), strings.NewReader(content), "f.txt", "k_test")
		if err != nil {
			t.Fatal(err)
		}
		return up.File
	}
	live := upload("live content")
	unref := upload("content of a rolled-back upload")
	if err := fs.Discard(t.Context(), unref.ID); err != nil {
		t.Fatal(err)
	}
	clk.Advance(8 * day)

	newService := func(meta filehub.MetaStore, mod func(*cleanup.Config)) *cleanup.Service {
		cfg := cleanup.Config{Now: clk.Now, Registerer: prometheus.NewRegistry(), Logger: discard}
		mod(&cfg)
		s, err := cleanup.New(t.Context(), meta, blobs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	bHolds, releaseB := make(chan struct{}), make(chan struct{})
	b := newService(dbB, func(c *cleanup.Config) {
		c.InstanceID = "b"
		c.BeforePhase = func(ph string) error {
			if ph == cleanup.PhasePlan {
				close(bHolds)
				<-releaseB
			}
			return nil
		}
	})
	type result struct {
		r   *cleanup.Report
		err error
	}
	bDone := make(chan result, 1)
	hooked := &pgHooked{DB: dbA}
	started := false
	hooked.beforeSweep = func() {
		if started {
			return
		}
		started = true
		clk.Advance(cleanup.DefaultLeaseTTL + time.Second)
		go func() {
			r, err := b.Run(context.Background(), cleanup.RunOptions{Trigger: "test"})
			bDone <- result{r, err}
		}()
		<-bHolds
	}
	a := newService(hooked, func(c *cleanup.Config) { c.InstanceID = "a" })
	aReport, aErr := a.Run(context.Background(), cleanup.RunOptions{Trigger: "test"})
	close(releaseB)
	if !started {
		t.Fatal("A never reached its sweep")
	}
	bRes := <-bDone
	if bRes.err != nil || bRes.r.Status != filehub.RunOK {
		t.Fatalf("B's run: %+v, %v", bRes.r, bRes.err)
	}
	if !errors.Is(aErr, filehub.ErrLeaseLost) || aReport.Status != filehub.RunFailed {
		t.Fatalf("A's run = %+v, %v; want failed with ErrLeaseLost", aReport, aErr)
	}
	if a, b := aReport.Kinds[cleanup.KindUnreferencedBlob].Deleted, bRes.r.Kinds[cleanup.KindUnreferencedBlob].Deleted; a != 0 || b != 1 {
		t.Errorf("unreferenced blob swept by A %d, by B %d; want 0 and 1", a, b)
	}
	_, rc, err := fs.Open(t.Context(), live.ID)
	if err != nil {
		t.Fatalf("live file after both runs: %v", err)
	}
	rc.Close()
}
