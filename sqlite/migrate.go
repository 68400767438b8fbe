package sqlite

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"path"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/filehub/filehub"
)

// migrationFS holds the schema migrations, one numbered file per version.
// A migration, once released, is never edited: changes get a new file.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration describes one schema migration known to this binary, as
// returned by MigrationStatus.
type Migration struct {
	// Version is the migration's number (the file name's prefix).
	Version int64
	// Name is the migration's file name, such as "00001_init.sql".
	Name string
	// AppliedAt is when the migration was applied to this database, nil if
	// it is pending.
	AppliedAt *time.Time
}

// provider returns a goose provider for the embedded migrations running on
// the write connection, so migrations are serialized with every other write
// of the process.
func (db *DB) provider() (*goose.Provider, error) {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectSQLite3, db.wdb, sub,
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(db.logger),
	)
}

// checkVersion returns an EUNAVAILABLE error if the database's schema is
// newer than the newest migration this binary knows.
func (db *DB) checkVersion(ctx context.Context) error {
	p, err := db.provider()
	if err != nil {
		return filehub.WrapError(filehub.EINTERNAL, "load schema migrations", err)
	}
	current, newest, err := p.GetVersions(ctx)
	if err != nil {
		return mapError(ctx, "read schema version", err)
	}
	if current > newest {
		return filehub.Errorf(filehub.EUNAVAILABLE,
			"database %s has schema version %d but this filehub knows only up to %d: upgrade filehub",
			db.path, current, newest)
	}
	return nil
}

// Migrate applies every pending migration, each in its own transaction. It
// returns EUNAVAILABLE if the schema is newer than this binary knows or a
// migration fails (the migrations before it stay applied).
func (db *DB) Migrate(ctx context.Context) error {
	if db.closed.Load() {
		return errClosed
	}
	if err := db.checkVersion(ctx); err != nil {
		return err
	}
	p, err := db.provider()
	if err != nil {
		return filehub.WrapError(filehub.EINTERNAL, "load schema migrations", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		// Another process may have applied the same migration between our
		// check for pending ones and our attempt: then all is well.
		if current, newest, verr := p.GetVersions(ctx); verr == nil && current == newest {
			return nil
		}
		return migrateError(ctx, "apply schema migrations", err)
	}
	for _, r := range results {
		db.logger.Info("sqlite: migration applied", "path", db.path,
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
	p, err := db.provider()
	if err != nil {
		return filehub.WrapError(filehub.EINTERNAL, "load schema migrations", err)
	}
	r, err := p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return filehub.Errorf(filehub.ECONFLICT, "no schema migration to roll back")
	}
	if err != nil {
		return migrateError(ctx, "roll back schema migration", err)
	}
	db.logger.Info("sqlite: migration rolled back", "path", db.path,
		"migration", path.Base(r.Source.Path), "version", r.Source.Version, "duration", r.Duration)
	return nil
}

// MigrationStatus lists the migrations this binary knows, oldest first,
// with when each was applied to this database.
func (db *DB) MigrationStatus(ctx context.Context) ([]Migration, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	p, err := db.provider()
	if err != nil {
		return nil, filehub.WrapError(filehub.EINTERNAL, "load schema migrations", err)
	}
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

// migrateError maps a goose error: SQLite errors as usual, anything else
// (a broken migration file) as EUNAVAILABLE, since the store cannot serve.
func migrateError(ctx context.Context, op string, err error) error {
	mapped := mapError(ctx, op, err)
	if filehub.ErrorCode(mapped) == filehub.EINTERNAL {
		return unavailable(op, err)
	}
	return mapped
}
