// Package stores opens the metadata and blob stores that a filehub data dir
// or a pair of URLs names. The daemon (package server) and the CLI commands
// that work on the stores directly (keys, migrate, cleanup and audit with
// --data-dir or --db) share it, so that "which stores" means the same thing
// everywhere.
//
//	DB     ""             SQLite at <data-dir>/filehub.db
//	       postgres://…   PostgreSQL
//	Blobs  ""             local disk under <data-dir>/blobs and tmp/
//	       s3://…         an S3-compatible bucket
//
// A store on the local disk can be used by one server only, which the lock
// on <data-dir>/filehub.lock enforces (LockDataDir). Shared stores
// (PostgreSQL and S3) are meant to be used by several servers at once, so
// they take no lock: when neither store is local, the data dir is not used
// at all.
package stores

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/postgres"
	"github.com/filehub/filehub/s3"
	"github.com/filehub/filehub/sqlite"
)

// Target names the stores a command or the daemon works on.
type Target struct {
	DataDir string
	DB      string // "" for SQLite under DataDir
	Blobs   string // "" for local disk under DataDir
}

// LocalMeta reports whether the metadata store is SQLite under the data dir.
func (t Target) LocalMeta() bool { return t.DB == "" }

// LocalBlobs reports whether the blob store is the local disk.
func (t Target) LocalBlobs() bool { return t.Blobs == "" }

// MetaKind and BlobKind name the backends, for logs.
func (t Target) MetaKind() string {
	if t.LocalMeta() {
		return "sqlite"
	}
	return "postgres"
}

// BlobKind names the blob backend, for logs.
func (t Target) BlobKind() string {
	if t.LocalBlobs() {
		return "localfs"
	}
	return "s3"
}

// UsesDataDir reports whether either store lives in the data dir, which
// must then exist (or be created) and be locked by a server.
func (t Target) UsesDataDir() bool { return t.LocalMeta() || t.LocalBlobs() }

// Check refuses URLs of unknown kinds before anything is opened, so that a
// typo such as "postgre://" is a configuration mistake rather than a
// connection failure. Its messages name the CLI's flags, which is how
// operators know these settings; the CLI reports them as usage errors.
func (t Target) Check() error {
	if t.DB != "" && !isPostgresURL(t.DB) {
		return fmt.Errorf("--db %q: want empty (SQLite under --data-dir) or a postgres:// URL", RedactURL(t.DB))
	}
	if t.Blobs != "" && !strings.HasPrefix(t.Blobs, "s3://") {
		return fmt.Errorf("--blobs %q: want empty (local disk under --data-dir) or an s3://BUCKET?… URL", RedactURL(t.Blobs))
	}
	if t.UsesDataDir() && strings.TrimSpace(t.DataDir) == "" {
		return errors.New("--data-dir must not be empty")
	}
	return nil
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// RedactURL hides the secrets of a store URL, for messages and logs: the
// password of its userinfo and the value of every query parameter whose
// name says it is a secret (password=, sslpassword=, secret_key=, token=,
// X-Amz-Signature=, …), and password= in a key=value connection string.
// Everything else is kept as it was written, so that the operator
// recognises the URL.
func RedactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return keywordSecret.ReplaceAllString(s, "${1}xxxxx")
	}
	rest := s[i+3:]
	qpos := len(rest) // where the query or fragment begins
	if j := strings.IndexAny(rest, "?#"); j >= 0 {
		qpos = j
	}
	head, tail := rest[:qpos], rest[qpos:]
	// The userinfo ends at the last @ (a password may contain one) and
	// has no / (it would be the path's).
	if at := strings.LastIndex(head, "@"); at >= 0 && !strings.Contains(head[:at], "/") {
		if user, _, ok := strings.Cut(head[:at], ":"); ok {
			head = user + ":xxxxx" + head[at:]
		}
	}
	if strings.HasPrefix(tail, "?") {
		query, frag, hasFrag := strings.Cut(tail[1:], "#")
		pairs := strings.Split(query, "&")
		for n, pair := range pairs {
			k, v, ok := strings.Cut(pair, "=")
			switch {
			case ok && secretParam(k):
				pairs[n] = k + "=xxxxx"
			case strings.Contains(v, "://"): // a URL in a URL, e.g. an endpoint
				pairs[n] = k + "=" + RedactURL(v)
			}
		}
		tail = "?" + strings.Join(pairs, "&")
		if hasFrag {
			tail += "#" + frag
		}
	}
	return s[:i+3] + head + tail
}

// keywordSecret matches password=VALUE in a key=value connection string,
// the value quoted or not.
var keywordSecret = regexp.MustCompile(`(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// secretParam reports whether a URL query parameter named k holds a
// secret.
func secretParam(k string) bool {
	if u, err := url.QueryUnescape(k); err == nil {
		k = u
	}
	k = strings.ToLower(k)
	for _, w := range []string{"password", "passwd", "pwd", "secret", "token", "signature", "credential", "apikey", "api_key", "access_key"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// Describe names the stores for logs and messages, without secrets.
func (t Target) Describe() string {
	meta := "SQLite at " + filepath.Join(t.DataDir, "filehub.db")
	if !t.LocalMeta() {
		meta = "PostgreSQL at " + RedactURL(t.DB)
	}
	blobs := "local disk under " + t.DataDir
	if !t.LocalBlobs() {
		blobs = RedactURL(t.Blobs)
	}
	return meta + ", blobs on " + blobs
}

// Meta is what filehub needs of a metadata store: the MetaStore, the
// cleanup service's CleanupStore and the consistency check's Checker. Both
// backends implement all three.
type Meta interface {
	filehub.MetaStore
	filehub.CleanupStore
	filehub.Checker
}

// MetaOptions tune OpenMeta.
type MetaOptions struct {
	// Create lets a SQLite database be created; otherwise it must exist,
	// so that a typo in --data-dir does not quietly create an empty one.
	Create bool
	// NoMigrate leaves the schema as it is (filehub migrate manages it).
	NoMigrate  bool
	Logger     *slog.Logger          // default: discard
	Registerer prometheus.Registerer // default: no metrics
}

// OpenMeta opens the metadata store of t.
func OpenMeta(ctx context.Context, t Target, o MetaOptions) (Meta, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !t.LocalMeta() {
		db, err := postgres.Open(ctx, t.DB, postgres.Config{
			Logger:     o.Logger,
			Registerer: o.Registerer,
			NoMigrate:  o.NoMigrate,
		})
		if err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		return db, nil
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

// BlobOptions tune OpenBlobs.
type BlobOptions struct {
	// RemoveStaleTemp removes the uploads a crash left in the local
	// disk's tmp/. Only a server holding the data dir's lock may ask for
	// it; it is ignored for a bucket, where other instances' uploads may be
	// in flight (the cleanup service's stale_temp kind removes abandoned
	// ones there, after the upload expiry).
	RemoveStaleTemp bool
	Logger          *slog.Logger // default: discard
	// S3BufferMemory is s3.Config.BufferMemory for a bucket (0: its
	// default, negative: no budget); ignored for the local disk.
	S3BufferMemory int64
}

// OpenBlobs opens the blob store of t. Close it with CloseBlobs.
func OpenBlobs(ctx context.Context, t Target, o BlobOptions) (filehub.BlobStore, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !t.LocalBlobs() {
		// Credentials come from the standard AWS environment (the SDK's
		// default chain), never from the URL.
		store, err := s3.Open(ctx, t.Blobs, s3.Config{Logger: o.Logger, BufferMemory: o.S3BufferMemory})
		if err != nil {
			return nil, fmt.Errorf("open blob store: %w", err)
		}
		return store, nil
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

// CloseBlobs releases what a blob store holds (the S3 store's HTTP
// transport); the local disk store holds nothing.
func CloseBlobs(b filehub.BlobStore) error {
	if c, ok := b.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
