package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newPushCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "push ID --provider NAME",
		Short: "Make sure a file's content is at a model provider and print its provider file ID",
		Long: `Make sure a file's content is stored at a model provider the server is
configured with (FILEHUB_PROVIDER_<NAME>_API_KEY on the server; see
docs/providers.md) and print the provider's file ID. Content the provider
already has from an earlier push is not uploaded again.`,
		Args: exactArgs(1, "the ID of the file to push"),
	}
	var provider string
	cmd.Flags().StringVar(&provider, "provider", "", "name of the provider (e.g. kimi, glm, openai)")
	cf := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if strings.TrimSpace(provider) == "" {
			return usageErrorf("--provider is required")
		}
		c, done, err := cf.newClient()
		if err != nil {
			return err
		}
		defer done()
		res, err := c.Push(cmd.Context(), args[0], provider)
		if err != nil {
			return fmt.Errorf("push %s to %s: %w", args[0], provider, err)
		}
		how := "uploaded"
		if res.Reused {
			how = "already there"
		}
		fmt.Fprintf(env.Stdout, "%s  %s  %s (%s)\n", args[0], res.Provider, res.ProviderFileID, how)
		return nil
	}
	return cmd
}
