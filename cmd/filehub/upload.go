package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/client"
)

func newUploadCommand(env Env) *cobra.Command {
	var (
		asJSON     bool
		noProgress bool
		name       string
	)
	cmd := &cobra.Command{
		Use:   "upload FILE…",
		Short: "Upload files to a filehub server",
		Long: `Upload files to a filehub server. For each file, print its id, name, size and
whether its content was already stored (deduplicated); with --json, print one
JSON object per file instead. A progress bar is shown on standard error when it
is a terminal. "-" uploads standard input (name it with --name).

Files are uploaded one after another; the first failure stops the command.`,
		Args: minArgs(1, "the files to upload"),
	}
	cf := addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per uploaded file")
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "never show a progress bar")
	cmd.Flags().StringVar(&name, "name", "", "name to store the file under (default: the file's base name; needs a single FILE)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if name != "" && len(args) > 1 {
			return usageErrorf("--name needs exactly one FILE")
		}
		c, done, err := cf.newClient()
		if err != nil {
			return err
		}
		defer done()
		progress := !noProgress && isTerminal(env.Stderr)
		for _, path := range args {
			up, err := uploadOne(cmd, c, env, path, name, progress)
			if err != nil {
				return err
			}
			if asJSON {
				if err := json.NewEncoder(env.Stdout).Encode(up); err != nil {
					return err
				}
				continue
			}
			how := "stored"
			if up.Deduplicated {
				how = "deduplicated (content already stored)"
			}
			fmt.Fprintf(env.Stdout, "%s  %s  %s  %s\n", up.ID, up.Name, sizeString(up.Size), how)
		}
		return nil
	}
	return cmd
}

// uploadOne uploads the file at path ("-": standard input).
func uploadOne(cmd *cobra.Command, c *client.Client, env Env, path, name string, progress bool) (*api.Upload, error) {
	var (
		r    io.Reader
		size int64 = -1
	)
	if path == "-" {
		if name == "" {
			name = "stdin"
		}
		r = env.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("upload %s: not a regular file", path)
		}
		size = fi.Size()
		r = f
		if name == "" {
			name = filepath.Base(path)
		}
	}
	if progress {
		bar := progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(env.Stderr),
			progressbar.OptionSetDescription(name),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionThrottle(100e6), // 100ms: redraws cost more than they tell
			progressbar.OptionClearOnFinish(),
			progressbar.OptionFullWidth(),
		)
		defer func() { _ = bar.Exit() }() // only redraws the terminal
		pr := progressbar.NewReader(r, bar)
		r = &pr
	}
	up, err := c.Upload(cmd.Context(), name, r, size)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", path, err)
	}
	return up, nil
}
