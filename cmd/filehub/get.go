package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub/files"
)

func newGetCommand(env Env) *cobra.Command {
	var (
		output string
		force  bool
	)
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Download a file",
		Long: `Download a file and verify its SHA-256 against the server's.

By default the file is saved under its (sanitized) name in the current
directory. An existing file is never overwritten unless --force is given. The
content goes to a temporary file next to the target first and is renamed into
place only once complete and verified, so a failed download leaves nothing.
"-o -" writes to standard output (verified at the end: the command fails if
the content did not match).`,
		Args: exactArgs(1, "the file's ID"),
	}
	cf := addClientFlags(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "", "where to save the file: a path, a directory, or - for standard output (default: its name in the current directory)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id := args[0]
		c, done, err := cf.newClient()
		if err != nil {
			return err
		}
		defer done()

		d, err := c.Open(cmd.Context(), id)
		if err != nil {
			return fmt.Errorf("get %s: %w", id, err)
		}
		defer d.Close()

		if output == "-" {
			if _, err := io.Copy(env.Stdout, d.Body); err != nil {
				return fmt.Errorf("get %s: %w", id, downloadError(err))
			}
			return nil
		}

		dest, err := destination(output, d.Name, id)
		if err != nil {
			return err
		}
		if !force {
			// Checked before downloading so that the user is not made to
			// wait for a transfer that cannot be kept; checked again,
			// atomically, when the file is put in place.
			if _, err := os.Lstat(dest); err == nil {
				return fmt.Errorf("get %s: %s exists (use --force to overwrite)", id, dest)
			}
		}
		n, err := saveAtomically(dest, d.Body, force)
		if err != nil {
			return fmt.Errorf("get %s: %w", id, downloadError(err))
		}
		fmt.Fprintf(env.Stdout, "%s  %s  %s  sha256 %s verified\n", id, dest, sizeString(n), d.SHA256)
		return nil
	}
	return cmd
}

// downloadError explains a connection closed before the end of the content,
// which net/http reports as a bare "unexpected EOF".
func downloadError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("download cut short: %w", err)
	}
	return err
}

// destination returns where get saves a file: output if it names a file,
// the file's name inside output if it is a directory, and the file's name in
// the current directory if output is empty. The server sanitizes names, but
// the name is sanitized again here: a client must not trust a server to
// choose where it writes.
func destination(output, name, id string) (string, error) {
	base := files.SanitizeName(filepath.Base(name))
	if base == "" || base == "." || base == ".." {
		base = id
	}
	if output == "" {
		return base, nil
	}
	fi, err := os.Stat(output)
	switch {
	case err == nil && fi.IsDir():
		return filepath.Join(output, base), nil
	case err == nil || errors.Is(err, fs.ErrNotExist):
		return output, nil
	default:
		return "", err
	}
}

// saveAtomically writes r to a temporary file in dest's directory, syncs it
// and moves it to dest. Without overwrite, an existing dest is an error
// (a hard link fails rather than replaces, so there is no window in which a
// file created meanwhile could be clobbered). On error nothing is left.
func saveAtomically(dest string, r io.Reader, overwrite bool) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".filehub-get-*.part")
	if err != nil {
		return 0, err
	}
	// Removing the temporary name is right in every case: after a failure
	// it is garbage, after a link or rename it is gone or redundant.
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, r)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if overwrite {
		return n, os.Rename(tmp.Name(), dest)
	}
	if err := os.Link(tmp.Name(), dest); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return n, fmt.Errorf("%s exists (use --force to overwrite)", dest)
		}
		return n, err
	}
	return n, nil
}
