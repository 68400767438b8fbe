package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub"
)

func newRmCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rm ID…",
		Short: "Delete files (they can be restored until the server's trash grace period ends)",
		Args:  minArgs(1, "the IDs of the files to delete"),
	}
	cf := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, done, err := cf.newClient()
		if err != nil {
			return err
		}
		defer done()
		return eachID(cmd.Context(), "delete", args, c.Delete, func(f *filehub.File) {
			until := ""
			if f.PurgeAfter != nil {
				until = " (restorable until " + f.PurgeAfter.Local().Format(time.DateTime) + ")"
			}
			fmt.Fprintf(env.Stdout, "deleted %s  %s%s\n", f.ID, f.Name, until)
		})
	}
	return cmd
}

// eachID applies op to every id, reporting successes with ok, and keeps
// going after a failure so that one bad ID does not leave the rest undone.
// The failures are returned as one error.
func eachID(ctx context.Context, verb string, ids []string, op func(context.Context, string) (*filehub.File, error), ok func(*filehub.File)) error {
	var failed []string
	var first error
	for _, id := range ids {
		f, err := op(ctx, id)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("%s %s: %w", verb, id, err)
			}
			failed = append(failed, id+": "+describe(err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		ok(f)
	}
	switch len(failed) {
	case 0:
		return nil
	case 1:
		return first
	}
	return fmt.Errorf("could not %s %d of %d files: %s", verb, len(failed), len(ids), strings.Join(failed, "; "))
}
