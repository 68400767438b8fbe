package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/sqlite"
)

// Choosing the stores, for serve and for every command that opens them
// itself (keys, migrate, cleanup and audit with --data-dir or --db):
//
//	--db     ""             SQLite at <data-dir>/filehub.db
//	         postgres://…   PostgreSQL
//	--blobs  ""             local disk under <data-dir>/blobs and tmp/
//	         s3://…         an S3-compatible bucket
//
// A store on the local disk can be used by one server only, which the lock
// on <data-dir>/filehub.lock enforces. Shared stores (PostgreSQL and S3) are
// meant to be used by several servers at once, so they take no lock: when
// neither store is local, the data dir is not used at all.

// storeTarget names the stores a command works on.
type storeTarget struct {
	DataDir string
	DB      string // "" for SQLite under DataDir
	Blobs   string // "" for local disk under DataDir
}

// localMeta reports whether the metadata store is SQLite under the data dir.
func (t storeTarget) localMeta() bool { return t.DB == "" }

// localBlobs reports whether the blob store is the local disk.
func (t storeTarget) localBlobs() bool { return t.Blobs == "" }

// metaKind and blobKind name the backends, for logs.
func (t storeTarget) metaKind() string {
	if t.localMeta() {
		return "sqlite"
	}
	return "postgres"
}

func (t storeTarget) blobKind() string {
	if t.localBlobs() {
		return "localfs"
	}
	return "s3"
}

// usesDataDir reports whether either store lives in the data dir, which
// must then exist (or be created) and be locked by a server.
func (t storeTarget) usesDataDir() bool { return t.localMeta() || t.localBlobs() }

// check refuses URLs of unknown kinds before anything is opened, so that a
// typo such as "postgre://" is a usage error rather than a connection
// failure.
func (t storeTarget) check() error {
	if t.DB != "" && !isPostgresURL(t.DB) {
		return usageErrorf("--db %q: want empty (SQLite under --data-dir) or a postgres:// URL", redactURL(t.DB))
	}
	if t.Blobs != "" && !strings.HasPrefix(t.Blobs, "s3://") {
		return usageErrorf("--blobs %q: want empty (local disk under --data-dir) or an s3://BUCKET?… URL", t.Blobs)
	}
	if t.usesDataDir() && strings.TrimSpace(t.DataDir) == "" {
		return usageErrorf("--data-dir must not be empty")
	}
	return nil
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// redactURL hides the password of a database URL, for messages and logs.
func redactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@")
	if at < 0 {
		return s
	}
	userinfo := rest[:at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return s[:i+3] + user + ":xxxxx" + rest[at:]
	}
	return s
}

// describe names the stores for logs and messages, without secrets.
func (t storeTarget) describe() string {
	meta := "SQLite at " + filepath.Join(t.DataDir, "filehub.db")
	if !t.localMeta() {
		meta = "PostgreSQL at " + redactURL(t.DB)
	}
	blobs := "local disk under " + t.DataDir
	if !t.localBlobs() {
		blobs = t.Blobs
	}
	return meta + ", blobs on " + blobs
}

// metaStore is what filehub needs of a metadata store: the MetaStore and
// the cleanup service's CleanupStore. Both backends implement both.
type metaStore interface {
	filehub.MetaStore
	filehub.CleanupStore
}

// metaOptions tune openMeta.
type metaOptions struct {
	// Create lets a SQLite database be created; otherwise it must exist,
	// so that a typo in --data-dir does not quietly create an empty one.
	Create bool
	// NoMigrate leaves the schema as it is (filehub migrate manages it).
	NoMigrate  bool
	Logger     *slog.Logger          // default: discard
	Registerer prometheus.Registerer // default: no metrics
}

// openMeta opens the metadata store of t.
func openMeta(ctx context.Context, t storeTarget, o metaOptions) (metaStore, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !t.localMeta() {
		return openPostgres(ctx, t.DB, o)
	}
	path := filepath.Join(t.DataDir, "filehub.db")
	if o.Create {
		if err := os.MkdirAll(t.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
	} else if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no filehub database at %s (wrong --data-dir?)", path)
	}
	db, err := sqlite.Open(ctx, path, sqlite.Config{
		Logger:     o.Logger,
		Registerer: o.Registerer,
		NoMigrate:  o.NoMigrate,
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}

// blobOptions tune openBlobs.
type blobOptions struct {
	// RemoveStaleTemp removes the uploads a crash left in the local
	// disk's tmp/. Only a server holding the data dir's lock may ask for
	// it; it is ignored for a bucket, where other instances' uploads may be
	// in flight (the cleanup service's stale_temp kind removes abandoned
	// ones there, after the upload expiry).
	RemoveStaleTemp bool
	Logger          *slog.Logger // default: discard
}

// openBlobs opens the blob store of t.
func openBlobs(ctx context.Context, t storeTarget, o blobOptions) (filehub.BlobStore, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !t.localBlobs() {
		return openS3(ctx, t.Blobs, o)
	}
	blobs, err := localfs.Open(t.DataDir, localfs.Config{
		RemoveStaleTemp: o.RemoveStaleTemp,
		Logger:          o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	return blobs, nil
}

// closeBlobs releases what a blob store holds (the S3 store's HTTP
// transport); the local disk store holds nothing.
func closeBlobs(b filehub.BlobStore) error {
	if c, ok := b.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// addStoreFlags defines --data-dir and --db on cmd (and --blobs if
// withBlobs), with serve's defaults. If configurable is set they also read
// FILEHUB_DATA_DIR, FILEHUB_DB and FILEHUB_BLOBS and the config file, as
// serve's do.
func addStoreFlags(cmd *cobra.Command, withBlobs, isConfigurable bool) *storeTarget {
	t := &storeTarget{}
	fs := cmd.Flags()
	fs.StringVar(&t.DataDir, "data-dir", DefaultServeConfig().DataDir, "data directory of the server (SQLite database, local blobs)")
	fs.StringVar(&t.DB, "db", "", "metadata database: empty for SQLite under --data-dir, or a postgres:// URL")
	names := []string{"data-dir", "db"}
	if withBlobs {
		fs.StringVar(&t.Blobs, "blobs", "", "blob storage: empty for the local disk under --data-dir, or an s3://BUCKET?endpoint=…&region=… URL")
		names = append(names, "blobs")
	}
	if isConfigurable {
		configurable(fs, names...)
	}
	return t
}
