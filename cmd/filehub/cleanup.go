package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/cleanup"
	"github.com/filehub/filehub/client"
	"github.com/filehub/filehub/internal/stores"
)

// newCleanupCommand is "filehub cleanup": run the cleanup service, read its
// reports and change its settings, on a running server or on a data dir.
// Each subcommand lives in its own file (cleanup_run.go, cleanup_report.go,
// cleanup_config.go); what they share is here.
func newCleanupCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Run cleanups, read their reports, change their settings",
		Long: `The cleanup service purges expired trash, deletes objects and blob records
nothing refers to once their grace period has passed, reports blob records
whose object is missing, and removes abandoned uploads. See docs/cleanup.md
for what is deleted when.

The subcommands talk to a running server (--server, --key: an admin key), or,
with --data-dir, work directly on a data directory: "cleanup run" only on a
stopped server's, the others also while the server runs.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newCleanupRunCommand(env), newCleanupReportCommand(env), newCleanupConfigCommand(env))
	return cmd
}

// cleanupAPI is what the cleanup and audit commands need, the same whether
// they talk to a server or open a data dir.
type cleanupAPI interface {
	Run(ctx context.Context, req api.CleanupRunRequest) (*api.CleanupReport, error)
	Runs(ctx context.Context, last int) ([]*api.CleanupReport, error)
	RunByID(ctx context.Context, id int64) (*api.CleanupReport, error)
	Settings(ctx context.Context) (api.CleanupSettings, error)
	UpdateSettings(ctx context.Context, kv map[string]string) (api.CleanupSettings, error)
	// AuditPage returns a page of entries matching filter and the AfterID
	// of the next page, 0 on the last one.
	AuditPage(ctx context.Context, filter filehub.AuditFilter) ([]*filehub.AuditEntry, int64, error)
}

// cleanupTargetFlags choose where a cleanup command works.
type cleanupTargetFlags struct {
	client *clientFlags
	stores storeTarget
}

// addCleanupTargetFlags defines --server, --key, --data-dir, --db and
// --blobs on cmd. The last three are deliberately not configurable: a
// FILEHUB_DATA_DIR or FILEHUB_DB meant for the server must not silently
// turn a command against the running server into one that opens its
// stores.
func addCleanupTargetFlags(cmd *cobra.Command) *cleanupTargetFlags {
	f := &cleanupTargetFlags{client: addClientFlags(cmd)}
	fs := cmd.Flags()
	fs.StringVar(&f.stores.DataDir, "data-dir", "", "work directly on this data directory's stores instead of through --server")
	fs.StringVar(&f.stores.DB, "db", "", "work directly on this metadata database (a postgres:// URL) instead of through --server; the blobs are then --blobs, or under --data-dir")
	fs.StringVar(&f.stores.Blobs, "blobs", "", "with --db or --data-dir: the blob store (an s3:// URL) instead of the local disk under --data-dir")
	return f
}

// open returns the API to work with and a function that releases it.
// exclusive asks for the data dir's lock, which a running server holds:
// only one process may delete from a data dir.
func (f *cleanupTargetFlags) open(cmd *cobra.Command, env Env, exclusive bool) (cleanupAPI, func(), error) {
	return f.openWith(cmd, env, exclusive, cleanup.Config{})
}

// openWith is open with the cleanup service's defaults for --data-dir.
func (f *cleanupTargetFlags) openWith(cmd *cobra.Command, env Env, exclusive bool, defaults cleanup.Config) (cleanupAPI, func(), error) {
	fs := cmd.Flags()
	direct := fs.Changed("data-dir") || fs.Changed("db") || fs.Changed("blobs")
	if !direct {
		c, done, err := f.client.newClient()
		if err != nil {
			return nil, nil, err
		}
		return remoteCleanup{c}, done, nil
	}
	if fs.Changed("server") {
		return nil, nil, usageErrorf("give either --server or --data-dir/--db, not both")
	}
	if fs.Changed("data-dir") && strings.TrimSpace(f.stores.DataDir) == "" {
		return nil, nil, usageErrorf("--data-dir must not be empty")
	}
	if err := checkStores(f.stores); err != nil {
		return nil, nil, err
	}
	return openLocalCleanup(cmd.Context(), f.stores, env, exclusive, defaults)
}

// openLocalCleanup opens the stores of t and a cleanup service on them with
// cfg's defaults (settings stored in the database win over them).
//
// exclusive takes the data dir's lock when a store is on the local disk:
// the server holds it, and only one process may delete from a data dir.
// Shared stores need no lock: the cleanup lease in the database lets one
// run at a time, whichever process starts it, and abandoned uploads in a
// bucket are only removed after the upload expiry.
func openLocalCleanup(ctx context.Context, t storeTarget, env Env, exclusive bool, cfg cleanup.Config) (cleanupAPI, func(), error) {
	dir := t.DataDir
	var closers []func()
	release := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if exclusive && t.UsesDataDir() {
		if _, err := os.Stat(dir); err != nil {
			return nil, nil, fmt.Errorf("data dir: %w", err)
		}
		lock, err := stores.LockDataDir(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: run the cleanup through it (--server, --key) or stop it first", err)
		}
		closers = append(closers, func() { lock.Close() })
	}
	db, err := stores.OpenMeta(ctx, t, stores.MetaOptions{})
	if err != nil {
		release()
		return nil, nil, err
	}
	closers = append(closers, func() { db.Close() })
	// Without RemoveStaleTemp: a running server's uploads in progress are
	// in tmp/, and only the cleanup's upload expiry may judge them.
	blobs, err := stores.OpenBlobs(ctx, t, stores.BlobOptions{})
	if err != nil {
		release()
		return nil, nil, err
	}
	closers = append(closers, func() { stores.CloseBlobs(blobs) })
	cfg.InstanceID = "cli:" + instanceID()
	cfg.Logger = slog.New(slog.DiscardHandler)
	svc, err := cleanup.New(ctx, db, blobs, cfg)
	if err != nil {
		release()
		return nil, nil, err
	}
	return localCleanup{svc: svc, actor: localActor(env)}, release, nil
}

// localActor names the person running a command on the data dir in the
// audit log, where an API key's id would otherwise be.
func localActor(env Env) string {
	if u := env.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

// localCleanup is the cleanup service on a data dir opened by this process.
type localCleanup struct {
	svc   *cleanup.Service
	actor string
}

func (l localCleanup) ctx(ctx context.Context) context.Context {
	return filehub.WithActor(ctx, l.actor)
}

func (l localCleanup) Run(ctx context.Context, req api.CleanupRunRequest) (*api.CleanupReport, error) {
	opts, err := cleanup.RunOptionsFrom(req, "cli")
	if err != nil {
		return nil, err
	}
	rep, err := l.svc.Run(l.ctx(ctx), opts)
	return cleanup.ReportWire(rep), err
}

func (l localCleanup) Runs(ctx context.Context, last int) ([]*api.CleanupReport, error) {
	reps, err := l.svc.Runs(ctx, last)
	if err != nil {
		return nil, err
	}
	return cleanup.ReportsWire(reps), nil
}

func (l localCleanup) RunByID(ctx context.Context, id int64) (*api.CleanupReport, error) {
	rep, err := l.svc.RunByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return cleanup.ReportWire(rep), nil
}

func (l localCleanup) Settings(ctx context.Context) (api.CleanupSettings, error) {
	st, err := l.svc.Settings(ctx)
	return cleanup.SettingsWire(st), err
}

func (l localCleanup) UpdateSettings(ctx context.Context, kv map[string]string) (api.CleanupSettings, error) {
	st, err := l.svc.UpdateSettings(l.ctx(ctx), kv)
	return cleanup.SettingsWire(st), err
}

func (l localCleanup) AuditPage(ctx context.Context, filter filehub.AuditFilter) ([]*filehub.AuditEntry, int64, error) {
	if filter.Limit <= 0 {
		filter.Limit = 100
	}
	entries, err := l.svc.Audit(ctx, filter)
	if err != nil || len(entries) < filter.Limit {
		return entries, 0, err
	}
	return entries, entries[len(entries)-1].ID, nil
}

// remoteCleanup is a running server's cleanup service, through the API.
type remoteCleanup struct{ c *client.Client }

// Run returns no report with an error: the server answers a refused run
// with a problem only (naming the run, whose report can be read).
func (r remoteCleanup) Run(ctx context.Context, req api.CleanupRunRequest) (*api.CleanupReport, error) {
	return r.c.CleanupRun(ctx, req)
}

func (r remoteCleanup) Runs(ctx context.Context, last int) ([]*api.CleanupReport, error) {
	return r.c.CleanupRuns(ctx, last)
}

func (r remoteCleanup) RunByID(ctx context.Context, id int64) (*api.CleanupReport, error) {
	return r.c.CleanupRunByID(ctx, id)
}

func (r remoteCleanup) Settings(ctx context.Context) (api.CleanupSettings, error) {
	return r.c.CleanupSettings(ctx)
}

func (r remoteCleanup) UpdateSettings(ctx context.Context, kv map[string]string) (api.CleanupSettings, error) {
	return r.c.UpdateCleanupSettings(ctx, kv)
}

func (r remoteCleanup) AuditPage(ctx context.Context, filter filehub.AuditFilter) ([]*filehub.AuditEntry, int64, error) {
	return r.c.Audit(ctx, filter)
}

// isCapRefusal reports whether err is the safety cap's refusal.
func isCapRefusal(rep *api.CleanupReport, err error) bool {
	if rep != nil {
		return rep.Status == filehub.RunRefused
	}
	var fe *filehub.Error
	return errors.As(err, &fe) && fe.Code == filehub.ECONFLICT && strings.Contains(fe.Message, "safety cap")
}
