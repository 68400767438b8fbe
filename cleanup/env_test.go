package cleanup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/sqlite"
)

// Compile-time checks that the default stores have what cleanup needs.
var (
	_ filehub.CleanupStore = (*sqlite.DB)(nil)
	_ filehub.BlobWalker   = (*localfs.Store)(nil)
	_ filehub.SumWalker    = (*localfs.Store)(nil)
	_ filehub.TempCleaner  = (*localfs.Store)(nil)
)

var discard = slog.New(slog.DiscardHandler)

// clock is an injected clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a data dir with real stores, a file service and a clock.
type env struct {
	t     *testing.T
	dir   string
	meta  *sqlite.DB
	blobs *localfs.Store
	files *files.Service
	clock *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	meta, err := sqlite.Open(context.Background(), filepath.Join(dir, "filehub.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	blobs, err := localfs.Open(dir, localfs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, meta: meta, blobs: blobs, clock: newClock()}
	e.files, err = files.New(meta, blobs, files.Config{MinFreeSpace: -1, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// service returns a cleanup service on e's stores with e's clock; mod, if
// not nil, adjusts the config first.
func (e *env) service(mod func(*cleanup.Config)) *cleanup.Service {
	e.t.Helper()
	cfg := cleanup.Config{Now: e.clock.Now, Registerer: prometheus.NewRegistry(), Logger: discard}
	if mod != nil {
		mod(&cfg)
	}
	s, err := cleanup.New(e.t.Context(), e.meta, e.blobs, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func sum(content string) string {
	h := sha256.Sum256([]byte(content))
	return hex.EncodeToString(h[:])
}

// upload stores content as a file and returns it.
func (e *env) upload(content string) *filehub.File {
	e.t.Helper()
	up, err := e.files.Upload(context.Background(), strings.NewReader(content), "f.txt", "k_test")
	if err != nil {
		e.t.Fatalf("Upload: %v", err)
	}
	return up.File
}

// plantOrphan commits an object with no record.
func (e *env) plantOrphan(content string) string {
	e.t.Helper()
	ctx := context.Background()
	st, err := e.blobs.Stage(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close(ctx)
	if _, err := io.WriteString(st, content); err != nil {
		e.t.Fatal(err)
	}
	if err := st.Commit(ctx, sum(content)); err != nil {
		e.t.Fatal(err)
	}
	return sum(content)
}

// plantUnreferenced leaves a blob record without references (an upload
// rolled back) and returns its sum.
func (e *env) plantUnreferenced(content string) string {
	e.t.Helper()
	f := e.upload(content)
	if err := e.files.Discard(context.Background(), f.ID); err != nil {
		e.t.Fatal(err)
	}
	return f.SHA256
}

// plantTemp leaves an abandoned staged upload last written at mod.
func (e *env) plantTemp(name string, mod time.Time) {
	e.t.Helper()
	p := filepath.Join(e.dir, "tmp", name)
	if err := os.WriteFile(p, []byte("partial upload"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chtimes(p, mod, mod); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) objectExists(sum string) bool {
	_, err := e.blobs.Stat(context.Background(), sum)
	return err == nil
}

// mustDownload fails unless file f downloads with its hash.
func (e *env) mustDownload(f *filehub.File) {
	e.t.Helper()
	_, rc, err := e.files.Open(context.Background(), f.ID)
	if err != nil {
		e.t.Fatalf("Open(%s): %v", f.ID, err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		e.t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		e.t.Fatalf("file %s: content hash %s, want %s", f.ID, got, f.SHA256)
	}
}

// mustCheckLive fails unless every live file downloads with its hash, and
// returns how many there are.
func (e *env) mustCheckLive() int {
	e.t.Helper()
	n, cursor := 0, ""
	for {
		page, next, err := e.meta.ListFiles(context.Background(), filehub.FileFilter{Limit: 1000, Cursor: cursor})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, f := range page {
			e.mustDownload(f)
			n++
		}
		if next == "" {
			return n
		}
		cursor = next
	}
}

func (e *env) audit(filter filehub.AuditFilter) []*filehub.AuditEntry {
	e.t.Helper()
	var out []*filehub.AuditEntry
	for {
		filter.Limit = 1000
		page, err := e.meta.ListAudit(context.Background(), filter)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out
		}
		filter.AfterID = page[len(page)-1].ID
	}
}

// dump returns every row of every table except cleanup_runs (which a dry
// run writes) and sqlite_sequence, and every file under the data dir except
// the database's own, as text, for before/after comparisons.
func (e *env) dump() string {
	e.t.Helper()
	db, err := sql.Open("sqlite", e.meta.Path()+"?_query_only=1")
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	var b bytes.Buffer
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		e.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	for _, tbl := range tables {
		// A dry run is recorded, and its tenure of the lease too: a
		// released lease keeps its row so that generations only grow.
		if tbl == "cleanup_runs" || tbl == "sqlite_sequence" || tbl == "leases" {
			continue
		}
		rows, err := db.Query(`SELECT * FROM "` + tbl + `" ORDER BY 1`)
		if err != nil {
			e.t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %v\n", tbl, vals)
		}
		rows.Close()
	}
	var paths []string
	err = filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(filepath.Base(p), "filehub.db") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		paths = append(paths, fmt.Sprintf("%s %d %d %v", p, fi.Size(), fi.ModTime().UnixNano(), fi.Mode()))
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(paths)
	b.WriteString(strings.Join(paths, "\n"))
	return b.String()
}

// targets returns a kind's targets as "file_id/sha256/name" strings, sorted.
func targets(r *cleanup.Report, k cleanup.Kind) []string {
	kr := r.Kinds[k]
	if kr == nil {
		return nil
	}
	var out []string
	for _, t := range kr.Targets {
		out = append(out, t.FileID+"/"+t.SHA256+"/"+t.Name)
	}
	slices.Sort(out)
	return out
}
