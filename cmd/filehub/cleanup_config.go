package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/cleanup"
)

func newCleanupConfigCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config show|set",
		Short: "Show or change the cleanup settings (grace periods, interval, safety cap)",
		Long: `Show or change the cleanup settings without a restart. Changes are stored
in the metadata store and audited; the server's flags are only the defaults.

Keys: trash_grace, blob_grace, upload_expiry, interval (durations such as
24h) and max_delete_fraction (a number such as 0.1).

A change made through the server applies at once. One made with --data-dir
while the server runs applies from the server's next cleanup run (the trash
grace of new deletions included).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newCleanupConfigShowCommand(env), newCleanupConfigSetCommand(env))
	return cmd
}

func newCleanupConfigShowCommand(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the cleanup settings in effect",
		Args:  noArgs,
	}
	tf := addCleanupTargetFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the settings as one JSON object")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		svc, done, err := tf.open(cmd, env, false)
		if err != nil {
			return err
		}
		defer done()
		st, err := svc.Settings(cmd.Context())
		if err != nil {
			return fmt.Errorf("cleanup settings: %w", err)
		}
		return writeSettings(env.Stdout, st, asJSON)
	}
	return cmd
}

func newCleanupConfigSetCommand(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set KEY=VALUE…",
		Short: "Change cleanup settings (all or none) and print the settings in effect",
		Args:  minArgs(1, "KEY=VALUE pairs, e.g. blob_grace=48h"),
	}
	tf := addCleanupTargetFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the settings as one JSON object")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		kv := make(map[string]string, len(args))
		for _, a := range args {
			k, v, ok := strings.Cut(a, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || k == "" || v == "" {
				return usageErrorf("%q is not KEY=VALUE (e.g. blob_grace=48h)", a)
			}
			if _, dup := kv[k]; dup {
				return usageErrorf("%s is given twice", k)
			}
			kv[k] = v
		}
		svc, done, err := tf.open(cmd, env, false)
		if err != nil {
			return err
		}
		defer done()
		st, err := svc.UpdateSettings(cmd.Context(), kv)
		if err != nil {
			return fmt.Errorf("change cleanup settings: %w", err)
		}
		return writeSettings(env.Stdout, st, asJSON)
	}
	return cmd
}

// writeSettings prints settings as KEY VALUE lines or one JSON object.
func writeSettings(w io.Writer, st api.CleanupSettings, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(st)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, row := range [][2]string{
		{cleanup.SettingTrashGrace, time.Duration(st.TrashGrace).String()},
		{cleanup.SettingBlobGrace, time.Duration(st.BlobGrace).String()},
		{cleanup.SettingUploadExpiry, time.Duration(st.UploadExpiry).String()},
		{cleanup.SettingInterval, time.Duration(st.Interval).String()},
		{cleanup.SettingMaxDeleteFraction, strconv.FormatFloat(st.MaxDeleteFraction, 'g', -1, 64)},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}
