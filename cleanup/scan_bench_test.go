package cleanup_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/sqlite"
)

// scanBlobs is the number of blob records, and of objects, in
// BenchmarkOrphanScan's data set (FILEHUB_BENCH_BLOBS, default 1,000,000).
func scanBlobs() int {
	if n, err := strconv.Atoi(os.Getenv("FILEHUB_BENCH_BLOBS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// scanData is a data directory holding n blob records and n objects: one
// record in every 1,000 has no object (missing), one in every 1,000 is
// unreferenced since the build, and as many objects as there are missing
// ones have no record (orphans). Everything else is a referenced record
// with its object. Objects are empty: the scan reads names and metadata,
// never content.
type scanData struct {
	dir                     string
	n                       int
	missing, unref, orphans int
}

// scanSum is the sum of the data set's i-th blob: sums are spread evenly
// over the fan-out directories and unrelated to insertion order, as real
// ones are.
func scanSum(i int) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	h := sha256.Sum256(b[:])
	return hex.EncodeToString(h[:])
}

// buildScanData creates the data set in dir and returns it with how long
// that took.
//
// The store has no bulk insert, and a million CreateFile calls would each
// commit (group-committed, but still about 7,000 files/s): the records go
// in through a second connection on the same database file instead, in
// transactions of 50,000 rows with synchronous=OFF, after sqlite.Open has
// created the schema and been closed again. A final checkpoint moves them
// from the WAL into the database file, as a long-running server's would
// be. Objects are created with os.WriteFile by parallel workers.
func buildScanData(tb testing.TB, dir string, n int) (*scanData, time.Duration) {
	tb.Helper()
	start := time.Now()
	ctx := context.Background()
	d := &scanData{dir: dir, n: n}

	meta, err := sqlite.Open(ctx, filepath.Join(dir, "filehub.db"), sqlite.Config{Logger: discard})
	if err != nil {
		tb.Fatal(err)
	}
	if err := meta.Close(); err != nil {
		tb.Fatal(err)
	}
	if _, err := localfs.Open(dir, localfs.Config{Logger: discard}); err != nil {
		tb.Fatal(err)
	}

	// Objects: every record's but the missing ones, plus the orphans.
	var next atomic.Int64
	var werr error
	var once sync.Once
	var wg sync.WaitGroup
	missing := func(i int) bool { return i%1000 == 2 }
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				sum := scanSum(i)
				if missing(i) {
					sum = scanSum(n + i) // an orphan in place of the missing object
				}
				p := filepath.Join(dir, "blobs", sum[:2], sum)
				if err := os.WriteFile(p, nil, 0o640); err != nil {
					once.Do(func() { werr = err })
					return
				}
			}
		})
	}

	// Records, while the workers create the objects.
	db, err := sql.Open("sqlite", filepath.Join(dir, "filehub.db"))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `PRAGMA synchronous = OFF`); err != nil {
		tb.Fatal(err)
	}
	const batch = 50_000
	created := start.UnixNano()
	for lo := 0; lo < n; lo += batch {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			tb.Fatal(err)
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO blobs (sha256, size, ref_count, created_at, unreferenced_since)
			VALUES (?, 0, ?, ?, ?)`)
		if err != nil {
			tb.Fatal(err)
		}
		for i := lo; i < min(lo+batch, n); i++ {
			ref, unref := 1, sql.NullInt64{}
			if i%1000 == 3 {
				ref, unref = 0, sql.NullInt64{Int64: created, Valid: true}
			}
			if _, err := stmt.ExecContext(ctx, scanSum(i), ref, created, unref); err != nil {
				tb.Fatal(err)
			}
		}
		if err := stmt.Close(); err != nil {
			tb.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		tb.Fatal(err)
	}
	wg.Wait()
	if werr != nil {
		tb.Fatal(werr)
	}
	for i := range n {
		switch {
		case missing(i):
			d.missing++
			d.orphans++
		case i%1000 == 3:
			d.unref++
		}
	}
	return d, time.Since(start)
}

// open returns the data set's stores and a cleanup service whose clock is
// two days ahead, so that the orphans and unreferenced blobs are past the
// default 24h blob grace. They are closed when tb ends.
func (d *scanData) open(tb testing.TB) *cleanup.Service {
	tb.Helper()
	meta, err := sqlite.Open(context.Background(), filepath.Join(d.dir, "filehub.db"), sqlite.Config{Logger: discard})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { meta.Close() })
	blobs, err := localfs.Open(d.dir, localfs.Config{Logger: discard})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := cleanup.New(context.Background(), meta, blobs, cleanup.Config{
		Now:        func() time.Time { return time.Now().Add(48 * time.Hour) },
		Logger:     discard,
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// check fails tb unless r is a dry run's report that found exactly the
// data set's orphans, missing objects and unreferenced blobs.
func (d *scanData) check(tb testing.TB, r *cleanup.Report, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("dry run: %v", err)
	}
	if r.Status != filehub.RunOK || !r.DryRun {
		tb.Fatalf("dry run: status %s, dry run %v", r.Status, r.DryRun)
	}
	for k, want := range map[cleanup.Kind][2]int{
		cleanup.KindOrphanObject:     {d.n, d.orphans},
		cleanup.KindMissingObject:    {d.n, d.missing},
		cleanup.KindUnreferencedBlob: {d.n, d.unref},
	} {
		kr := r.Kinds[k]
		if kr == nil || kr.Scanned != int64(want[0]) || kr.Found != int64(want[1]) || len(kr.Targets) != want[1] {
			tb.Fatalf("dry run: %s: %+v, want %d scanned and %d found", k, kr, want[0], want[1])
		}
	}
}

// bareScan is what any orphan detection must at least do: list every
// object (a plain directory walk, no stat) and read every blob record's sum
// (a plain table scan). It returns the counts.
func bareScan(ctx context.Context, blobDir string, db *sql.DB) (objects, records int, err error) {
	err = filepath.WalkDir(blobDir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			objects++
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	rows, err := db.QueryContext(ctx, `SELECT sha256 FROM blobs`)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var sum string
		if err := rows.Scan(&sum); err != nil {
			return 0, 0, err
		}
		records++
	}
	return objects, records, rows.Err()
}

// heapPeak samples the bytes of heap objects (live, or dead and not yet
// swept) every millisecond until stop, and returns the largest sample.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	var peak atomic.Uint64
	peak.Store(read())
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if v := read(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	return func() uint64 {
		close(quit)
		<-done
		return max(peak.Load(), read())
	}
}

// BenchmarkOrphanScan measures the cleanup service's orphan detection — a
// full dry run, whose cost is the scan merging the object walk with the
// blob records — against a bare directory walk plus a bare table scan of
// the same data set in the same run. Compare scan's ns/op with baseline's:
// the goal is at most 1.5 times. walk and records time the scan's two
// inputs alone: the localfs listing of sums (WalkSums, no stat) and the
// store's paged ListBlobs. peak-heap-B is the most heap in use
// during an operation (after a GC before it): it must not grow with the
// number of blobs beyond the report's targets (0.2% of them here).
//
//	FILEHUB_BENCH_BLOBS=1000000 go test -run '^$' -bench OrphanScan -benchtime 3x -count 2 ./cleanup/
func BenchmarkOrphanScan(b *testing.B) {
	// b has sub-benchmarks, so the testing package calls it once per
	// process (-count repeats each sub-benchmark in turn): the data set is
	// built once and removed with b's temp dir at the end.
	d, took := buildScanData(b, b.TempDir(), scanBlobs())
	b.Logf("data set: %d blob records and %d objects (%d orphans, %d missing, %d unreferenced) built in %v",
		d.n, d.n, d.orphans, d.missing, d.unref, took.Round(time.Millisecond))
	ctx := context.Background()

	measure := func(b *testing.B, op func() error) {
		b.ReportAllocs()
		var peak uint64
		for b.Loop() {
			b.StopTimer()
			runtime.GC()
			stop := heapPeak()
			b.StartTimer()
			err := op()
			b.StopTimer()
			peak = max(peak, stop())
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(peak), "peak-heap-B")
	}

	b.Run("baseline", func(b *testing.B) {
		db, err := sql.Open("sqlite", filepath.Join(d.dir, "filehub.db")+"?_query_only=1")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		measure(b, func() error {
			objects, records, err := bareScan(ctx, filepath.Join(d.dir, "blobs"), db)
			if err == nil && (objects != d.n || records != d.n) {
				err = fmt.Errorf("bare scan: %d objects and %d records, want %d of each", objects, records, d.n)
			}
			return err
		})
	})

	// The scan's two inputs alone, to show which one limits it: it reads
	// them concurrently, so it cannot be faster than the slower one.
	b.Run("walk", func(b *testing.B) {
		blobs, err := localfs.Open(d.dir, localfs.Config{Logger: discard})
		if err != nil {
			b.Fatal(err)
		}
		measure(b, func() error {
			n := 0
			err := blobs.WalkSums(ctx, func(string) error { n++; return nil })
			if err == nil && n != d.n {
				err = fmt.Errorf("walk: %d objects, want %d", n, d.n)
			}
			return err
		})
	})
	b.Run("records", func(b *testing.B) {
		meta, err := sqlite.Open(ctx, filepath.Join(d.dir, "filehub.db"), sqlite.Config{Logger: discard})
		if err != nil {
			b.Fatal(err)
		}
		defer meta.Close()
		measure(b, func() error {
			n, after := 0, ""
			for {
				page, err := meta.ListBlobs(ctx, after, 10_000)
				if err != nil {
					return err
				}
				n += len(page)
				if len(page) < 10_000 {
					break
				}
				after = page[len(page)-1].SHA256
			}
			if n != d.n {
				return fmt.Errorf("records: %d, want %d", n, d.n)
			}
			return nil
		})
	})

	b.Run("scan", func(b *testing.B) {
		s := d.open(b)
		measure(b, func() error {
			r, err := s.Run(ctx, cleanup.RunOptions{DryRun: true})
			if err == nil {
				d.check(b, r, nil)
			}
			return err
		})
	})
}

// TestOrphanScanDataSet checks BenchmarkOrphanScan's data set and both of
// its measurements on a small one: the bare scan counts every object and
// record, the dry run finds exactly what was planted.
func TestOrphanScanDataSet(t *testing.T) {
	d, _ := buildScanData(t, t.TempDir(), 3000)
	if d.orphans != 3 || d.missing != 3 || d.unref != 3 {
		t.Fatalf("planted %d orphans, %d missing, %d unreferenced; want 3 of each", d.orphans, d.missing, d.unref)
	}
	db, err := sql.Open("sqlite", filepath.Join(d.dir, "filehub.db")+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	objects, records, err := bareScan(context.Background(), filepath.Join(d.dir, "blobs"), db)
	if err != nil {
		t.Fatal(err)
	}
	if objects != d.n || records != d.n {
		t.Fatalf("bare scan: %d objects and %d records, want %d of each", objects, records, d.n)
	}
	s := d.open(t)
	r, err := s.Run(context.Background(), cleanup.RunOptions{DryRun: true})
	d.check(t, r, err)
}
