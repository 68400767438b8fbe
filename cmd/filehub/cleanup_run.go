package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/cleanup"
)

func newCleanupRunCommand(env Env) *cobra.Command {
	var (
		dryRun, force, asJSON bool
		only                  []string
		provOrphans           string
	)
	cmd := &cobra.Command{
		Use:   "run [--dry-run] [--force] [--only KIND] [--json]",
		Short: "Run a cleanup now and print its report",
		Long: `Run a cleanup now and print what was found, deleted and freed per kind, and
every target. Kinds: trash, orphan_object, unreferenced_blob, missing_object,
stale_temp, expired_upload, ws_session, provider_copy, provider_orphan.

--dry-run reports exactly what a run would do and changes nothing. A run
that would delete more than the safety cap (max_delete_fraction of all
blobs) deletes nothing and fails (exit 1) unless --force is given.

With --data-dir the run works on the data directory itself, which a running
server must not hold: run it through the server instead. Its defaults are
then --blob-grace, --upload-expiry, --max-delete-fraction and --ws-session-ttl, read like the
server's (FILEHUB_BLOB_GRACE, the config file), so one environment or file
gives both the same; settings stored with "cleanup config set" win over them.
Through a server, the server's own settings apply and these are ignored.`,
		Args: noArgs,
	}
	tf := addCleanupTargetFlags(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be done and change nothing")
	cmd.Flags().BoolVar(&force, "force", false, "proceed even past the safety cap")
	cmd.Flags().StringSliceVar(&only, "only", nil, "only these kinds (repeat or comma-separate)")
	cmd.Flags().StringVar(&provOrphans, "provider-orphans", cleanup.ProviderOrphansReport, "provider files no mapping names: report, or delete those older than the blob grace")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	def := DefaultServeConfig()
	local := cleanup.Config{}
	cmd.Flags().DurationVar(&local.BlobGrace, "blob-grace", def.BlobGrace, "with --data-dir: the default blob grace, as serve's flag")
	cmd.Flags().DurationVar(&local.UploadExpiry, "upload-expiry", def.UploadExpiry, "with --data-dir: the default upload expiry, as serve's flag")
	cmd.Flags().Float64Var(&local.MaxDeleteFraction, "max-delete-fraction", def.MaxDeleteFraction, "with --data-dir: the default safety cap, as serve's flag")
	cmd.Flags().DurationVar(&local.TrashGrace, "trash-grace", def.TrashGrace, "with --data-dir: the default trash grace, as serve's flag (reported in the settings)")
	cmd.Flags().DurationVar(&local.WSSessionTTL, "ws-session-ttl", def.WSSessionTTL, "with --data-dir: how long a WebSocket session may stay detached, as serve's flag")
	configurable(cmd.Flags(), "blob-grace", "upload-expiry", "max-delete-fraction", "trash-grace", "ws-session-ttl")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if provOrphans != cleanup.ProviderOrphansReport && provOrphans != cleanup.ProviderOrphansDelete {
			return usageErrorf("--provider-orphans: want report or delete, not %q", provOrphans)
		}
		req := api.CleanupRunRequest{DryRun: dryRun, Force: force, Only: only, ProviderOrphans: provOrphans}
		if _, err := cleanup.RunOptionsFrom(req, "cli"); err != nil {
			return usageErrorf("--only: %s", filehub.ErrorMessage(err))
		}
		if local.BlobGrace <= 0 || local.UploadExpiry <= 0 || local.TrashGrace <= 0 || local.WSSessionTTL <= 0 || !(local.MaxDeleteFraction > 0) {
			return usageErrorf("--blob-grace, --upload-expiry, --trash-grace, --ws-session-ttl and --max-delete-fraction must be positive")
		}
		svc, done, err := tf.openWith(cmd, env, true, local)
		if err != nil {
			return err
		}
		defer done()
		rep, err := svc.Run(cmd.Context(), req)
		if rep != nil {
			// Also for a refused run: its report lists what it would
			// have deleted.
			if asJSON {
				if perr := json.NewEncoder(env.Stdout).Encode(rep); perr != nil {
					return perr
				}
			} else if perr := writeReportTable(env.Stdout, rep); perr != nil {
				return perr
			}
		}
		if err != nil {
			if isCapRefusal(rep, err) {
				return fmt.Errorf("%w (nothing was deleted; check the targets with --dry-run, then run with --force)", err)
			}
			return fmt.Errorf("cleanup run: %w", err)
		}
		return nil
	}
	return cmd
}
