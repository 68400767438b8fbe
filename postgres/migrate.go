package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"io/fs"
	"path"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/filehub/filehub"
)

// migrationFS holds the schema migrations, one numbered file per version,
// numbered like sqlite's so that both report the same versions. A
// migration, once released, is never edited: changes get a new file.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration describes one schema migration known to this binary, as
// returned by MigrationStatus. It has the shape of sqlite.Migration.
type Migration struct {
	// Version is the migration's number (the file name's prefix).
	Version int64
	// Name is the migration's file name, such as "00001_init.sql".
	Name string
	// AppliedAt is when the migration was applied to this database, nil if
	// it is pending.
	AppliedAt *time.Time
}

// migrationLockID is the key of the session-level advisory lock goose holds
// while it migrates, so that several filehub processes starting at once
// against one database apply each migration once. ("filehubm" in ASCII.)
const migrationLockID int64 = 0x66696c656875626d

// provider returns a goose provider for the embedded migrations, running on
// a database/sql view of the pool (connections carry the configured
// search_path, so goose's version table lives in the store's schema). The
// caller must close the returned *sql.DB, which leaves the pool open.
func (db *DB) provider(locked bool) (*goose.Provider, *sql.DB, error) {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, nil, filehub.WrapError(filehub.EINTERNAL, "load schema migrations", err)
	}
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(db.logger),
	}
	if locked {
		l, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID))
		if err != nil {
			return nil, nil, filehub.WrapError(filehub.EINTERNAL, "load schema migrations", err)
		}
		opts = append(opts, goose.WithSessionLocker(l))
	}
	sdb := stdlib.OpenDBFromPool(db.pool)
	p, err := goose.NewProvider(goose.DialectPostgres, sdb, sub, opts...)
	if err != nil {
		sdb.Close()
		return nil, nil, filehub.WrapError(filehub.EINTERNAL, "load schema migrations", err)
	}
	return p, sdb, nil
}

// checkVersion returns an EUNAVAILABLE error if the database's schema is
// newer than the newest migration this binary knows.
func (db *DB) checkVersion(ctx context.Context) error {
	p, sdb, err := db.provider(false)
	if err != nil {
		return err
	}
	defer sdb.Close()
	return db.checkVersionWith(ctx, p)
}

func (db *DB) checkVersionWith(ctx context.Context, p *goose.Provider) error {
	current, newest, err := p.GetVersions(ctx)
	if err != nil {
		return migrateError(ctx, "read schema version", err)
	}
	if current > newest {
		return filehub.Errorf(filehub.EUNAVAILABLE,
			"database schema %s has version %d but this filehub knows only up to %d: upgrade filehub",
			db.schemaName(), current, newest)
	}
	return nil
}

func (db *DB) schemaName() string {
	if db.schema == "" {
		return "(search_path)"
	}
	return db.schema
}

// Migrate applies every pending migration, each in its own transaction,
// holding an advisory lock so that concurrent Migrates (of several
// processes) apply each migration once. It returns EUNAVAILABLE if the
// schema is newer than this binary knows or a migration fails (the
// migrations before it stay applied).
func (db *DB) Migrate(ctx context.Context) error {
	if db.closed.Load() {
		return errClosed
	}
	p, sdb, err := db.provider(true)
	if err != nil {
		return err
	}
	defer sdb.Close()
	if err := db.checkVersionWith(ctx, p); err != nil {
		return err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return migrateError(ctx, "apply schema migrations", err)
	}
	for _, r := range results {
		db.logger.Info("postgres: migration applied", "schema", db.schemaName(),
			"migration", path.Base(r.Source.Path), "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// MigrateDown rolls back the most recently applied migration. The store is
// not usable by this binary until Migrate runs again; it is meant for the
// `filehub migrate down` command on a DB opened with Config.NoMigrate.
// It returns ECONFLICT if no migration is applied.
func (db *DB) MigrateDown(ctx context.Context) error {
	if db.closed.Load() {
		return errClosed
	}
	p, sdb, err := db.provider(true)
	if err != nil {
		return err
	}
	defer sdb.Close()
	r, err := p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return filehub.Errorf(filehub.ECONFLICT, "no schema migration to roll back")
	}
	if err != nil {
		return migrateError(ctx, "roll back schema migration", err)
	}
	db.logger.Info("postgres: migration rolled back", "schema", db.schemaName(),
		"migration", path.Base(r.Source.Path), "version", r.Source.Version, "duration", r.Duration)
	return nil
}

// MigrationStatus lists the migrations this binary knows, oldest first,
// with when each was applied to this database.
func (db *DB) MigrationStatus(ctx context.Context) ([]Migration, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	p, sdb, err := db.provider(false)
	if err != nil {
		return nil, err
	}
	defer sdb.Close()
	st, err := p.Status(ctx)
	if err != nil {
		return nil, migrateError(ctx, "read schema migrations", err)
	}
	out := make([]Migration, 0, len(st))
	for _, s := range st {
		m := Migration{Version: s.Source.Version, Name: path.Base(s.Source.Path)}
		if s.State == goose.StateApplied {
			at := s.AppliedAt.UTC()
			m.AppliedAt = &at
		}
		out = append(out, m)
	}
	return out, nil
}

// migrateError maps a goose error: database errors as usual, anything else
// (a broken migration file) as EUNAVAILABLE, since the store cannot serve.
func migrateError(ctx context.Context, op string, err error) error {
	mapped := mapError(ctx, op, err)
	if filehub.ErrorCode(mapped) == filehub.EINTERNAL {
		return unavailable(op, err)
	}
	return mapped
}
