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

		var list []*filehub.File
		cursor := ""
		for {
			n := lsPageSize
			if !all {
				n = min(n, limit-len(list))
			}
			page, next, err := c.List(cmd.Context(), n, cursor)
			if err != nil {
				return fmt.Errorf("list files: %w", err)
			}
			list = append(list, page...)
			if next == "" || (!all && len(list) >= limit) {
				break
			}
			cursor = next
		}

		if asJSON {
			enc := json.NewEncoder(env.Stdout)
			for _, f := range list {
				if err := enc.Encode(f); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSIZE\tCREATED\tTYPE\tNAME")
		for _, f := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.ID, sizeString(f.Size),
				f.CreatedAt.Local().Format(time.DateTime), f.ContentType, f.Name)
		}
		return tw.Flush()
	}
	return cmd
}
