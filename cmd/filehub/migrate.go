package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/internal/stores"
	"github.com/filehub/filehub/postgres"
	"github.com/filehub/filehub/sqlite"
)

// migrationState is one schema migration known to this binary, whatever
// the database.
type migrationState = api.MigrationState

// migrator is the schema management both metadata stores offer.
type migrator interface {
	// Migrate applies every pending migration.
	Migrate(ctx context.Context) error
	// MigrateDown rolls back the newest applied migration; ECONFLICT if
	// none is applied.
	MigrateDown(ctx context.Context) error
	// status lists the migrations this binary knows, oldest first.
	status(ctx context.Context) ([]migrationState, error)
}

type sqliteMigrator struct{ *sqlite.DB }

func (m sqliteMigrator) status(ctx context.Context) ([]migrationState, error) {
	st, err := m.MigrationStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]migrationState, len(st))
	for i, s := range st {
		out[i] = migrationState{Version: s.Version, Name: s.Name, AppliedAt: s.AppliedAt}
	}
	return out, nil
}

// migratorOf returns the schema management of a store openMeta returned.
func migratorOf(s metaStore) (migrator, error) {
	switch s := s.(type) {
	case *sqlite.DB:
		return sqliteMigrator{s}, nil
	case *postgres.DB:
		return postgresMigrator{s}, nil
	}
	return nil, errNoMigrator
}

// schemaVersion returns the newest applied version in st (0 if none) and
// the newest version this binary knows.
func schemaVersion(st []migrationState) (current, newest int64) {
	for _, m := range st {
		newest = max(newest, m.Version)
		if m.AppliedAt != nil {
			current = max(current, m.Version)
		}
	}
	return current, newest
}

func newMigrateCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate up|down|status",
		Short: "Manage the database schema (upgrade, roll back, show)",
		Long: `Manage the metadata database's schema: SQLite under --data-dir, or the
PostgreSQL database given by --db.

"filehub serve" applies pending migrations itself when it starts, and
refuses to start on a schema newer than it knows. To roll back a release,
run "migrate down --to VERSION" with the NEW binary (only it knows how to
undo its migrations), then start the old one; "migrate status" of the old
binary shows the VERSION it needs. See docs/operations.md.

On SQLite, up and down need the server stopped (they take the data dir's
lock). On PostgreSQL stop every server before "down".`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newMigrateUpCommand(env), newMigrateDownCommand(env), newMigrateStatusCommand(env))
	return cmd
}

// openMigrator opens the metadata store of t without migrating it. With
// exclusive, a SQLite data dir is locked first, so that no server runs on
// it meanwhile.
func openMigrator(ctx context.Context, t *storeTarget, exclusive bool) (migrator, func(), error) {
	if err := checkStores(*t); err != nil {
		return nil, nil, err
	}
	var lock *os.File
	if exclusive && t.LocalMeta() {
		if _, err := os.Stat(t.DataDir); err != nil {
			return nil, nil, fmt.Errorf("data dir: %w", err)
		}
		l, err := stores.LockDataDir(t.DataDir)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: stop it first", err)
		}
		lock = l
	}
	db, err := stores.OpenMeta(ctx, *t, stores.MetaOptions{NoMigrate: true})
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, nil, err
	}
	m, err := migratorOf(db)
	if err != nil {
		db.Close()
		if lock != nil {
			lock.Close()
		}
		return nil, nil, err
	}
	return m, func() {
		db.Close()
		if lock != nil {
			lock.Close()
		}
	}, nil
}

func newMigrateUpCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration",
		Args:  noArgs,
	}
	t := addStoreFlags(cmd, false, true)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		m, done, err := openMigrator(ctx, t, true)
		if err != nil {
			return err
		}
		defer done()
		before, err := m.status(ctx)
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if err := m.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
		after, err := m.status(ctx)
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		from, _ := schemaVersion(before)
		to, _ := schemaVersion(after)
		if from == to {
			fmt.Fprintf(env.Stdout, "schema is up to date at version %d\n", to)
			return nil
		}
		fmt.Fprintf(env.Stdout, "migrated schema from version %d to %d\n", from, to)
		return nil
	}
	return cmd
}

func newMigrateDownCommand(env Env) *cobra.Command {
	to := int64(-1)
	cmd := &cobra.Command{
		Use:   "down [--to VERSION]",
		Short: "Roll back the newest migration, or every one newer than --to",
		Long: `Roll back the newest applied migration, or with --to VERSION every migration
newer than VERSION, newest first, each in its own transaction. --to 0 rolls
back everything (and so drops every record).

Run it with the binary that applied the migrations: an older one does not
know how to undo them. The server refuses to start until "migrate up" (or a
binary that knows only up to VERSION) runs.`,
		Args: noArgs,
	}
	t := addStoreFlags(cmd, false, true)
	cmd.Flags().Int64Var(&to, "to", -1, "roll back until the schema is at this version (default: one migration)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if cmd.Flags().Changed("to") && to < 0 {
			return usageErrorf("--to must be a schema version (0 or more)")
		}
		ctx := cmd.Context()
		m, done, err := openMigrator(ctx, t, true)
		if err != nil {
			return err
		}
		defer done()
		st, err := m.status(ctx)
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		current, _ := schemaVersion(st)
		target := to
		if target < 0 {
			if current == 0 {
				return fmt.Errorf("no schema migration to roll back")
			}
			target = current - 1 // one step; versions need not be dense, the loop below stops after one
		}
		if current <= target {
			fmt.Fprintf(env.Stdout, "schema is at version %d already\n", current)
			return nil
		}
		for current > target {
			if err := m.MigrateDown(ctx); err != nil {
				return fmt.Errorf("roll back version %d: %w", current, err)
			}
			fmt.Fprintf(env.Stdout, "rolled back version %d\n", current)
			if to < 0 {
				break
			}
			if st, err = m.status(ctx); err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
			current, _ = schemaVersion(st)
		}
		return nil
	}
	return cmd
}

func newMigrateStatusCommand(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show the schema version and every migration this binary knows",
		Args:  noArgs,
	}
	t := addStoreFlags(cmd, false, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		m, done, err := openMigrator(ctx, t, false)
		if err != nil {
			return err
		}
		defer done()
		st, err := m.status(ctx)
		if err != nil {
			return fmt.Errorf("read schema migrations: %w", err)
		}
		current, newest := schemaVersion(st)
		if asJSON {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(api.MigrationStatus{Version: current, NewestKnown: newest, Migrations: st})
		}
		return printMigrations(env.Stdout, st, current, newest)
	}
	return cmd
}

func printMigrations(w io.Writer, st []migrationState, current, newest int64) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
	for _, m := range st {
		applied := "pending"
		if m.AppliedAt != nil {
			applied = m.AppliedAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", strconv.FormatInt(m.Version, 10), m.Name, applied)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "schema version %d; this filehub knows up to %d\n", current, newest)
	return nil
}

// errNoMigrator is returned for a store without schema management, which
// openMeta never returns.
var errNoMigrator = filehub.Errorf(filehub.EINTERNAL, "this metadata store has no schema migrations")
