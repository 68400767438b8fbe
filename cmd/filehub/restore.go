package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub"
)

func newRestoreCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restore ID…",
		Short: "Restore deleted files before they are purged",
		Args:  minArgs(1, "the IDs of the files to restore"),
	}
	cf := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, done, err := cf.newClient()
		if err != nil {
			return err
		}
		defer done()
		return eachID(cmd.Context(), "restore", args, c.Restore, func(f *filehub.File) {
			fmt.Fprintf(env.Stdout, "restored %s  %s\n", f.ID, f.Name)
		})
	}
	return cmd
}
