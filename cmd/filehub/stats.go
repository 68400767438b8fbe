package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// newStatsCommand is "filehub stats": the server's totals, from
// GET /v1/stats.
func newStatsCommand(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats [--json]",
		Short: "Show how many files and bytes a filehub server stores, its trash and deduplication savings",
		Long: `Show the server's totals, counted by its metadata store in one snapshot:
live files and their logical bytes, the bytes of their distinct contents
(stored) and what deduplication saves, the trash (deleted files not purged
yet), and every blob record, including contents only the trash points at
and unreferenced ones the cleanup has not removed yet. Needs a key with the
read scope.`,
		Args: noArgs,
	}
	cf := addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the totals as one JSON object")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, done, err := cf.newClient()
		if err != nil {
			return err
		}
		defer done()
		st, err := c.Stats(cmd.Context())
		if err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		if asJSON {
			return json.NewEncoder(env.Stdout).Encode(st)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		row := func(label string, n, bytes int64) {
			fmt.Fprintf(tw, "%s\t%d\t%d bytes\t%s\t\n", label, n, bytes, humanBytes(bytes))
		}
		row("live files", st.Files, st.LogicalBytes)
		fmt.Fprintf(tw, "stored (distinct contents)\t\t%d bytes\t%s\t\n", st.StoredBytes, humanBytes(st.StoredBytes))
		fmt.Fprintf(tw, "deduplication saves\t\t%d bytes\t%s\t\n", st.DedupSavingsBytes, humanBytes(st.DedupSavingsBytes))
		row("trash", st.TrashFiles, st.TrashBytes)
		row("blobs", st.Blobs, st.BlobBytes)
		row("unreferenced blobs", st.UnreferencedBlobs, st.UnreferencedBytes)
		return tw.Flush()
	}
	return cmd
}

// humanBytes formats n in binary units with one decimal ("1.5 MiB").
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
