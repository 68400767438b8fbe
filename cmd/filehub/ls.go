package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub"
)

// lsPageSize is how many files ls asks for per request: the server's cap.
const lsPageSize = 1000

func newLsCommand(env Env) *cobra.Command {
	var (
		limit  int
		all    bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the files on a filehub server, oldest first",
		Args:  noArgs,
	}
	cf := addClientFlags(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "list at most this many files")
	cmd.Flags().BoolVar(&all, "all", false, "list every file, however many (ignores --limit)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per file")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if limit < 1 && !all {
			return usageErrorf("--limit must be at least 1")
		}
		c, done, err := cf.newClient()
		if err != nil {
			return err
		}
		defer done()

		// Each page is printed as it arrives, so that --all lists any
		// number of files in the memory of one page, and the first lines
		// show before the last page is fetched. The table's columns are
		// aligned per page for the same reason.
		enc := json.NewEncoder(env.Stdout)
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		if !asJSON {
			fmt.Fprintln(tw, "ID\tSIZE\tCREATED\tTYPE\tNAME")
		}
		listed, cursor := 0, ""
		for {
			n := lsPageSize
			if !all {
				n = min(n, limit-listed)
			}
			page, next, err := c.List(cmd.Context(), n, cursor)
			if err != nil {
				return fmt.Errorf("list files: %w", err)
			}
			if err := printFiles(enc, tw, page, asJSON); err != nil {
				return err
			}
			listed += len(page)
			if next == "" || (!all && listed >= limit) {
				return nil
			}
			cursor = next
		}
	}
	return cmd
}

// printFiles prints one page of ls, as JSON lines or table rows.
func printFiles(enc *json.Encoder, tw *tabwriter.Writer, page []*filehub.File, asJSON bool) error {
	for _, f := range page {
		if asJSON {
			if err := enc.Encode(f); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.ID, sizeString(f.Size),
			f.CreatedAt.Local().Format(time.DateTime), f.ContentType, f.Name)
	}
	if asJSON {
		return nil
	}
	return tw.Flush()
}
