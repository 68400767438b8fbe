package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/check"
	"github.com/filehub/filehub/internal/stores"
)

// newCheckCommand is "filehub check", the fsck of filehub.
func newCheckCommand(env Env) *cobra.Command {
	var (
		req    api.CheckRequest
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "check [--read-data | --read-data-subset N%] [--repair] [--json]",
		Short: "Verify the stores: objects, sizes, content, reference counts, log IDs",
		Long: `Check the consistency of filehub's stores, like git fsck or restic check:
every blob record's object exists with the recorded size; every file's size
is its blob's; every reference count equals the files (live or in the trash)
pointing at the blob; event IDs have no gap inside the retained range, audit
IDs none at all. --read-data also re-hashes every object, --read-data-subset
10% a random tenth of them.

Problems are listed by kind, each with the blob's full SHA-256 and the file
ids concerned; the exit code is 1 when any is found (and not repaired).
Notices (objects without a record, unreferenced records without an object)
are what crashes leave behind and the cleanup service removes; they do not
fail the check.

--repair fixes what is safe to fix, each fix in the audit log: reference
counts are recounted, a missing object's files are flagged content_missing
(an upload of the same content re-creates the object; nothing else can),
a stale missing flag is cleared. Corrupt content is reported, never changed.

It talks to a running server (--server, --key: an admin key), or works on a
data directory or PostgreSQL + S3 directly (--data-dir, --db, --blobs):
read-only also while the server runs, --repair only on a stopped server's
data dir (its lock) or on shared stores.`,
		Args: noArgs,
	}
	tf := addCleanupTargetFlags(cmd)
	fs := cmd.Flags()
	fs.BoolVar(&req.ReadData, "read-data", false, "re-hash the content of every object")
	fs.StringVar(&req.ReadDataSubset, "read-data-subset", "", "re-hash a random part of the objects, a percentage such as 10%")
	fs.BoolVar(&req.Repair, "repair", false, "fix what is safe to fix (reference counts, missing-content flags), audited")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if req.ReadData && req.ReadDataSubset != "" {
			return usageErrorf("give --read-data or --read-data-subset, not both")
		}
		if req.ReadDataSubset != "" {
			if _, err := check.ParseSubset(req.ReadDataSubset); err != nil {
				return usageErrorf("--read-data-subset: %s", filehub.ErrorMessage(err))
			}
		}
		run, done, err := tf.openCheck(cmd, env, req.Repair)
		if err != nil {
			return err
		}
		defer done()
		rep, err := run(cmd.Context(), req)
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		if asJSON {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				return err
			}
		} else if err := printCheck(env, rep); err != nil {
			return err
		}
		if !rep.OK() {
			n := 0
			for _, p := range rep.Problems {
				if !p.Repaired {
					n++
				}
			}
			return fmt.Errorf("check found %d problem(s)", n)
		}
		return nil
	}
	return cmd
}

type checkFunc func(ctx context.Context, req api.CheckRequest) (*api.CheckReport, error)

// openCheck returns the check to run, on the server or on the stores, and
// a function that releases what it opened. A repair on a data dir takes
// its lock, as cleanup run does: only one process may write the stores'
// files there.
func (f *cleanupTargetFlags) openCheck(cmd *cobra.Command, env Env, repair bool) (checkFunc, func(), error) {
	fs := cmd.Flags()
	if !fs.Changed("data-dir") && !fs.Changed("db") && !fs.Changed("blobs") {
		c, done, err := f.client.newClient()
		if err != nil {
			return nil, nil, err
		}
		return c.Check, done, nil
	}
	if fs.Changed("server") {
		return nil, nil, usageErrorf("give either --server or --data-dir/--db, not both")
	}
	if fs.Changed("data-dir") && strings.TrimSpace(f.stores.DataDir) == "" {
		return nil, nil, usageErrorf("--data-dir must not be empty")
	}
	t := f.stores
	if err := checkStores(t); err != nil {
		return nil, nil, err
	}
	ctx := cmd.Context()
	var closers []func()
	release := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if t.UsesDataDir() {
		if _, err := os.Stat(t.DataDir); err != nil {
			return nil, nil, fmt.Errorf("data dir: %w", err)
		}
		if repair {
			lock, err := stores.LockDataDir(t.DataDir)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: repair through it (--server, --key) or stop it first", err)
			}
			closers = append(closers, func() { lock.Close() })
		}
	}
	meta, err := stores.OpenMeta(ctx, t, stores.MetaOptions{NoMigrate: true})
	if err != nil {
		release()
		return nil, nil, err
	}
	closers = append(closers, func() { meta.Close() })
	blobs, err := stores.OpenBlobs(ctx, t, stores.BlobOptions{})
	if err != nil {
		release()
		return nil, nil, err
	}
	closers = append(closers, func() { stores.CloseBlobs(blobs) })
	c := check.New(meta, blobs, check.Config{})
	actor := localActor(env)
	return func(ctx context.Context, req api.CheckRequest) (*api.CheckReport, error) {
		return c.Check(filehub.WithActor(ctx, actor), req)
	}, release, nil
}

// printCheck prints a report as a table of problems, then the notices and
// a summary line.
func printCheck(env Env, rep *api.CheckReport) error {
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	row := func(p api.CheckProblem) {
		target := p.SHA256
		if p.FirstID != 0 {
			target = fmt.Sprintf("ids %d-%d", p.FirstID, p.LastID)
		}
		state := ""
		if p.Repaired {
			state = "repaired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Kind, target, strings.Join(p.FileIDs, ","), state, p.Detail)
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintln(tw, "PROBLEM\tSHA256 / IDS\tFILES\tSTATE\tDETAIL")
		for _, p := range rep.Problems {
			row(p)
		}
	}
	if len(rep.Notices) > 0 {
		fmt.Fprintln(tw, "NOTICE\tSHA256\tFILES\t\tDETAIL")
		for _, p := range rep.Notices {
			row(p)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	read := ""
	if rep.ReadData {
		read = fmt.Sprintf(", %d objects re-hashed (%d bytes)", rep.BlobsRead, rep.BytesRead)
	}
	_, err := fmt.Fprintf(env.Stdout, "checked %d blobs, %d files, %d objects, %d events, %d audit entries%s: %d problems, %d notices\n",
		rep.Blobs, rep.Files, rep.Objects, rep.Events, rep.AuditEntries, read, len(rep.Problems), len(rep.Notices))
	return err
}
