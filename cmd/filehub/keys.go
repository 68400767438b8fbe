package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/stores"
)

// The keys commands work on the metadata store directly rather than through
// the API, so that the first keys can be made before any exist and a locked
// out administrator can always get back in. SQLite's WAL mode lets them run
// while the server does; PostgreSQL is shared anyway.

func newKeysCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage API keys (on the data directory or --db, server running or not)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newKeysCreateCommand(env), newKeysListCommand(env), newKeysRevokeCommand(env))
	return cmd
}

// openKeysDB opens the metadata store for a keys command: SQLite under
// --data-dir, or the PostgreSQL database of --db. Unless create is set, a
// SQLite database must exist already: a typo in --data-dir should not
// quietly create an empty one.
func openKeysDB(ctx context.Context, t *storeTarget, create bool) (metaStore, error) {
	if err := checkStores(*t); err != nil {
		return nil, err
	}
	return stores.OpenMeta(ctx, *t, stores.MetaOptions{Create: create})
}

func newKeysCreateCommand(env Env) *cobra.Command {
	var (
		name   string
		scopes []string
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME --scope SCOPE[,SCOPE]",
		Short: "Create an API key and print its secret (only this once)",
		Long: `Create an API key and print its secret on standard output, and nothing else,
so that scripts can capture it. The secret is not stored and cannot be shown
again. Scopes: read, write, admin, metrics.`,
		Args: noArgs,
	}
	stores := addStoreFlags(cmd, false, true)
	cmd.Flags().StringVar(&name, "name", "", "name of the key, unique, used by keys revoke (required)")
	cmd.Flags().StringSliceVar(&scopes, "scope", nil, "scopes granted: read, write, admin, metrics (required)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		name = strings.TrimSpace(name)
		if name == "" {
			return usageErrorf("keys create needs --name")
		}
		if len(scopes) == 0 {
			return usageErrorf("keys create needs --scope (read, write, admin or metrics)")
		}
		var parsed []filehub.Scope
		for _, s := range scopes {
			sc, err := filehub.ParseScope(s)
			if err != nil {
				return usageErrorf("%s", filehub.ErrorMessage(err))
			}
			parsed = append(parsed, sc)
		}

		ctx := cmd.Context()
		db, err := openKeysDB(ctx, stores, true)
		if err != nil {
			return err
		}
		defer db.Close()

		// Names identify keys for revoke, so they must be unique. The
		// database enforces it (a unique constraint since migration 1), so
		// two concurrent creates cannot both succeed; a read first would
		// only add a window.
		secret := filehub.NewAPIKeySecret()
		k := &filehub.APIKey{
			ID:        filehub.NewID("k_"),
			Name:      name,
			Scopes:    parsed,
			CreatedAt: time.Now().UTC(),
			Hash:      filehub.HashAPIKey(secret),
		}
		if err := db.CreateAPIKey(ctx, k); err != nil {
			if filehub.ErrorCode(err) == filehub.ECONFLICT {
				return fmt.Errorf("a key named %q exists already (see keys list)", name)
			}
			return fmt.Errorf("create key: %w", err)
		}
		fmt.Fprintln(env.Stdout, secret)
		return nil
	}
	return cmd
}

func newKeysListCommand(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their secrets)",
		Args:  noArgs,
	}
	stores := addStoreFlags(cmd, false, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array instead of a table")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		db, err := openKeysDB(ctx, stores, false)
		if err != nil {
			return err
		}
		defer db.Close()
		keys, err := db.ListAPIKeys(ctx)
		if err != nil {
			return fmt.Errorf("list keys: %w", err)
		}
		if asJSON {
			if keys == nil {
				keys = []*filehub.APIKey{}
			}
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(keys)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tREVOKED")
		for _, k := range keys {
			sc := make([]string, len(k.Scopes))
			for i, s := range k.Scopes {
				sc[i] = string(s)
			}
			revoked := "-"
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(sc, ","),
				k.CreatedAt.Local().Format(time.DateTime), revoked)
		}
		return tw.Flush()
	}
	return cmd
}

func newKeysRevokeCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke an API key; requests with it get 401 from then on",
		Args:  exactArgs(1, "the key's ID or name"),
	}
	stores := addStoreFlags(cmd, false, true)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		db, err := openKeysDB(ctx, stores, false)
		if err != nil {
			return err
		}
		defer db.Close()
		k, err := db.RevokeAPIKey(ctx, args[0], time.Now().UTC())
		if err != nil {
			return fmt.Errorf("revoke %s: %w", args[0], err)
		}
		fmt.Fprintf(env.Stdout, "revoked key %s (%s)\n", k.ID, k.Name)
		return nil
	}
	return cmd
}
