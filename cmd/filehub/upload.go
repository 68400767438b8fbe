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
		resumable  bool
	)
	cmd := &cobra.Command{
		Use:   "upload FILE…",
		Short: "Upload files to a filehub server",
		Long: `Upload files to a filehub server. For each file, print its id, name, size and
whether its content was already stored (deduplicated); with --json, print one
JSON object per file instead. A progress bar is shown on standard error when it
is a terminal. "-" uploads standard input (name it with --name).

Files are uploaded one after another; the first failure stops the command.

Files larger than 16 MiB are uploaded resumably (tus, /v1/uploads/) in 8 MiB
chunks, each checked by its SHA-256: a network error is retried from where the
server is, and running the same command again after an interruption (Ctrl-C,
a lost connection, a server restart) continues the upload instead of starting
over; the upload's URL is kept under the user's cache directory until it has
finished. --resumable=true or --resumable=false decides for every size.`,
		Args: minArgs(1, "the files to upload"),
	}
	cf := addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per uploaded file")
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "never show a progress bar")
	cmd.Flags().StringVar(&name, "name", "", "name to store the file under (default: the file's base name; needs a single FILE)")
	cmd.Flags().BoolVar(&resumable, "resumable", false, "upload with tus and resume an interrupted upload of the same file (default: for files above 16 MiB)")
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
		mode := resumeAuto
		if cmd.Flags().Changed("resumable") {
			mode = resumeOff
			if resumable {
				mode = resumeOn
			}
		}
		tu, tdone := cf.newTusUploader(c)
		defer tdone()
		for _, path := range args {
			up, err := uploadOne(cmd, c, env, path, name, progress, tu, mode)
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

// When to upload resumably.
const (
	resumeAuto = iota // above resumableThreshold
	resumeOn
	resumeOff
)

// uploadOne uploads the file at path ("-": standard input, never resumably).
func uploadOne(cmd *cobra.Command, c *client.Client, env Env, path, name string, progress bool, tu *tusUploader, mode int) (*api.Upload, error) {
	var (
		r     io.Reader
		size  int64 = -1
		f     *os.File
		state string
	)
	if path == "-" {
		if name == "" {
			name = "stdin"
		}
		r = env.Stdin
	} else {
		var err error
		f, err = os.Open(path)
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
		if mode == resumeOn || (mode == resumeAuto && fi.Size() > resumableThreshold) {
			if state, err = statePath(tu.server, path, fi); err != nil {
				return nil, fmt.Errorf("upload %s: no place for the resume state: %w", path, err)
			}
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
		tu.onSent = func(off int64) { _ = bar.Set64(off) }
	} else {
		tu.onSent = func(int64) {}
	}
	if state != "" {
		up, err := tu.upload(cmd.Context(), f, size, name, state)
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", path, err)
		}
		return up, nil
	}
	up, err := c.Upload(cmd.Context(), name, r, size)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", path, err)
	}
	return up, nil
}
