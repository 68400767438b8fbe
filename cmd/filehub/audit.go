package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub"
)

// auditPageSize is how many entries audit asks for per request: the cap.
const auditPageSize = 1000

func newAuditCommand(env Env) *cobra.Command {
	var (
		since  string
		action string
		runID  int64
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "audit [--since TIME|DURATION] [--action ACTION] [--json]",
		Short: "Print the audit log: deletes, restores, purges and every cleanup action",
		Long: `Print the audit log, oldest first: who (an API key id, "system" for the
scheduler, "cli:<user>" for commands run on the data dir) did what to which
file, blob or temp file, when, why and in which cleanup run.

--since takes a time (2026-11-27T06:00:00Z, 2026-11-27) or a duration
before now (24h). Actions: file.deleted, file.restored, file.purged,
blob.swept, object.deleted, object.missing, object.found, temp.removed,
cleanup.skipped, setting.changed.`,
		Args: noArgs,
	}
	tf := addCleanupTargetFlags(cmd)
	cmd.Flags().StringVar(&since, "since", "", "only entries at or after this time, or this long ago")
	cmd.Flags().StringVar(&action, "action", "", "only entries with this action")
	cmd.Flags().Int64Var(&runID, "run", 0, "only entries of this cleanup run")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per entry")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		filter := filehub.AuditFilter{Action: strings.TrimSpace(action), RunID: runID, Limit: auditPageSize}
		if since != "" {
			t, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			filter.Since = t
		}
		if runID < 0 {
			return usageErrorf("--run must be a run id (a positive number)")
		}
		svc, done, err := tf.open(cmd, env, false)
		if err != nil {
			return err
		}
		defer done()

		enc := json.NewEncoder(env.Stdout)
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		if !asJSON {
			fmt.Fprintln(tw, "ID\tTIME\tACTOR\tACTION\tTARGET\tBYTES\tRUN\tREASON")
		}
		for {
			entries, next, err := svc.AuditPage(cmd.Context(), filter)
			if err != nil {
				return fmt.Errorf("read audit log: %w", err)
			}
			for _, a := range entries {
				if asJSON {
					if err := enc.Encode(a); err != nil {
						return err
					}
					continue
				}
				run := ""
				if a.RunID != 0 {
					run = strconv.FormatInt(a.RunID, 10)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s:%s\t%d\t%s\t%s\n", a.ID, a.Time.Local().Format(time.DateTime),
					a.Actor, a.Action, a.TargetKind, a.Target, a.Bytes, run, a.Reason)
			}
			if next == 0 {
				break
			}
			filter.AfterID = next
		}
		if asJSON {
			return nil
		}
		return tw.Flush()
	}
	return cmd
}

// parseSince reads --since: an RFC 3339 time, a date, or a duration before
// now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usageErrorf("--since %q: a duration means that long ago and must not be negative", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageErrorf("--since %q is neither a time (2026-11-27T06:00:00Z, 2026-11-27) nor a duration (24h)", s)
}
