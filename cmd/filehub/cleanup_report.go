package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/cleanup"
)

func newCleanupReportCommand(env Env) *cobra.Command {
	var (
		runID  int64
		last   int
		format string
	)
	cmd := &cobra.Command{
		Use:   "report [--run ID | --last N] [--format table|json|csv|markdown]",
		Short: "Print the reports of past cleanup runs",
		Long: `Print the reports of past cleanup runs, newest first: per kind what was
found, deleted (or, in a dry run, would be) and freed, and every target by
file id, sha256 or temp file name.

Formats: table (for people), json (one object per run, one per line),
csv (one row per target, with its run's and kind's totals; a kind without
targets has one row with empty target columns) and markdown.`,
		Args: noArgs,
	}
	tf := addCleanupTargetFlags(cmd)
	cmd.Flags().Int64Var(&runID, "run", 0, "the run with this id")
	cmd.Flags().IntVar(&last, "last", 1, "the last N runs")
	cmd.Flags().StringVar(&format, "format", "table", "table, json, csv or markdown")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if cmd.Flags().Changed("run") && cmd.Flags().Changed("last") {
			return usageErrorf("give either --run or --last, not both")
		}
		if runID < 0 || (cmd.Flags().Changed("run") && runID == 0) {
			return usageErrorf("--run must be a run id (a positive number)")
		}
		if last < 1 || last > 1000 {
			return usageErrorf("--last must be from 1 to 1000")
		}
		write, ok := reportWriters[format]
		if !ok {
			return usageErrorf("--format must be table, json, csv or markdown, not %q", format)
		}
		svc, done, err := tf.open(cmd, env, false)
		if err != nil {
			return err
		}
		defer done()
		var reps []*api.CleanupReport
		if runID > 0 {
			r, err := svc.RunByID(cmd.Context(), runID)
			if err != nil {
				return fmt.Errorf("cleanup report: %w", err)
			}
			reps = []*api.CleanupReport{r}
		} else if reps, err = svc.Runs(cmd.Context(), last); err != nil {
			return fmt.Errorf("cleanup report: %w", err)
		}
		if len(reps) == 0 && format == "table" {
			_, err := fmt.Fprintln(env.Stdout, "no cleanup runs yet")
			return err
		}
		return write(env.Stdout, reps)
	}
	return cmd
}

// reportWriters print reports in each --format.
var reportWriters = map[string]func(io.Writer, []*api.CleanupReport) error{
	"table": func(w io.Writer, reps []*api.CleanupReport) error {
		for i, r := range reps {
			if i > 0 {
				fmt.Fprintln(w)
			}
			if err := writeReportTable(w, r); err != nil {
				return err
			}
		}
		return nil
	},
	"json": func(w io.Writer, reps []*api.CleanupReport) error {
		enc := json.NewEncoder(w)
		for _, r := range reps {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	},
	"csv":      writeReportCSV,
	"markdown": writeReportMarkdown,
}

// reportKinds returns the kinds a report covers, in run order.
func reportKinds(r *api.CleanupReport) []string {
	var ks, known []string
	for _, k := range cleanup.Kinds {
		known = append(known, string(k))
		if _, ok := r.Kinds[string(k)]; ok {
			ks = append(ks, string(k))
		}
	}
	// Kinds this version does not know, last, so that nothing is hidden.
	var other []string
	for k := range r.Kinds {
		if !slices.Contains(known, k) {
			other = append(other, k)
		}
	}
	slices.Sort(other)
	return append(ks, other...)
}

// targetName is a target's identity: file id, sha256 or temp file name.
func targetName(t api.CleanupTarget) string {
	switch {
	case t.FileID != "":
		return t.FileID
	case t.SHA256 != "":
		return t.SHA256
	}
	return t.Name
}

// runSummary is the one-line description of a run.
func runSummary(r *api.CleanupReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cleanup run %d: %s", r.RunID, r.Status)
	if r.DryRun {
		b.WriteString(" (dry run: nothing was changed; counts are what a run would do)")
	}
	fmt.Fprintf(&b, ", %s by %s, started %s", r.Trigger, r.Actor, r.StartedAt.Local().Format(time.DateTime))
	if !r.FinishedAt.IsZero() {
		fmt.Fprintf(&b, ", took %s", r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "; freed %s", sizeString(r.BytesFreed))
	if r.Errors > 0 {
		fmt.Fprintf(&b, "; %d errors", r.Errors)
	}
	return b.String()
}

// writeReportTable prints a report for people: a summary line, the totals
// per kind and every target.
func writeReportTable(w io.Writer, r *api.CleanupReport) error {
	fmt.Fprintln(w, runSummary(r))
	if r.Error != "" {
		fmt.Fprintf(w, "error: %s\n", r.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSCANNED\tFOUND\tDELETED\tFREED\tSKIPPED")
	var targets int
	for _, k := range reportKinds(r) {
		kr := r.Kinds[k]
		note := ""
		if kr.Unsupported {
			note = "\t(not supported by the blob store)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d%s\n", k, kr.Scanned, kr.Found, kr.Deleted, sizeString(kr.BytesFreed), kr.Skipped, note)
		targets += len(kr.Targets)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if targets == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tTARGET\tSIZE\tACTION\tREASON")
	for _, k := range reportKinds(r) {
		for _, t := range r.Kinds[k].Targets {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k, targetName(t), sizeString(t.Bytes), t.Action, t.Reason)
		}
	}
	return tw.Flush()
}

// csvHeader is the header row of --format csv.
var csvHeader = []string{
	"run_id", "started_at", "status", "dry_run", "kind", "found", "deleted", "bytes_freed", "skipped",
	"target", "target_bytes", "action", "reason",
}

func writeReportCSV(w io.Writer, reps []*api.CleanupReport) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, r := range reps {
		for _, k := range reportKinds(r) {
			kr := r.Kinds[k]
			row := []string{
				strconv.FormatInt(r.RunID, 10), r.StartedAt.UTC().Format(time.RFC3339), r.Status, strconv.FormatBool(r.DryRun),
				string(k), strconv.FormatInt(kr.Found, 10), strconv.FormatInt(kr.Deleted, 10),
				strconv.FormatInt(kr.BytesFreed, 10), strconv.FormatInt(kr.Skipped, 10),
			}
			if len(kr.Targets) == 0 {
				if err := cw.Write(append(row, "", "", "", "")); err != nil {
					return err
				}
				continue
			}
			for _, t := range kr.Targets {
				rec := append(slices.Clip(row), targetName(t), strconv.FormatInt(t.Bytes, 10), t.Action, t.Reason)
				if err := cw.Write(rec); err != nil {
					return err
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// mdCell escapes a value for a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

func writeReportMarkdown(w io.Writer, reps []*api.CleanupReport) error {
	for i, r := range reps {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "## Cleanup run %d\n\n%s\n", r.RunID, mdCell(runSummary(r)))
		if r.Error != "" {
			fmt.Fprintf(w, "\n**Error:** %s\n", mdCell(r.Error))
		}
		fmt.Fprint(w, "\n| Kind | Scanned | Found | Deleted | Freed | Skipped |\n|---|---:|---:|---:|---:|---:|\n")
		for _, k := range reportKinds(r) {
			kr := r.Kinds[k]
			fmt.Fprintf(w, "| %s | %d | %d | %d | %s | %d |\n", k, kr.Scanned, kr.Found, kr.Deleted, sizeString(kr.BytesFreed), kr.Skipped)
		}
		header := false
		for _, k := range reportKinds(r) {
			for _, t := range r.Kinds[k].Targets {
				if !header {
					fmt.Fprint(w, "\n| Kind | Target | Bytes | Action | Reason |\n|---|---|---:|---|---|\n")
					header = true
				}
				fmt.Fprintf(w, "| %s | `%s` | %d | %s | %s |\n", k, mdCell(targetName(t)), t.Bytes, t.Action, mdCell(t.Reason))
			}
		}
	}
	return nil
}
