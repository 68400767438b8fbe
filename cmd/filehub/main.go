// Command filehub is the filehub daemon and its command-line client in one
// binary.
//
//	filehub serve                 run the server (SQLite + local disk under --data-dir)
//	filehub keys create|list|revoke
//	filehub upload FILE…          store files on a running server
//	filehub ls | get | rm | restore
//	filehub watch                 follow the event stream
//	filehub cleanup run|report|config
//	filehub audit                 the audit log
//	filehub migrate up|down|status  the database schema
//	filehub version
//
// The daemon is assembled by package server; serve.go turns the command
// line into its server.Config and runs it. Settings come from flags,
// FILEHUB_* environment variables and an optional TOML file, in that order
// of precedence (see config.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/client"
)

func main() {
	os.Exit(Execute(context.Background(), os.Args[1:], Env{
		Stdin:     os.Stdin,
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		Getenv:    os.Getenv,
		LookupEnv: os.LookupEnv,
	}))
}

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1 // the command ran and failed
	ExitUsage   = 2 // the command line was wrong
)

// Env is what a command sees of its process: standard streams and the
// environment. Tests pass their own to run commands in-process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// LookupEnv tells an empty variable from an unset one (os.LookupEnv).
	// Nil: a variable is set when Getenv returns non-empty.
	LookupEnv func(string) (string, bool)

	// serve replaces runServe, so tests can see the configuration serve
	// would run with.
	serve func(ctx context.Context, cfg ServeConfig, env Env) error
}

// lookupEnv is env.LookupEnv, or Getenv's answer with empty as unset.
func (env Env) lookupEnv(name string) (string, bool) {
	if env.LookupEnv != nil {
		return env.LookupEnv(name)
	}
	v := env.Getenv(name)
	return v, v != ""
}

// Execute runs the filehub command line args and returns the exit code.
// Failures are reported as one line on env.Stderr.
func Execute(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	root := newRootCommand(env)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(env.Stderr, "filehub: %s\n", describe(err))
	if isUsageError(err) {
		return ExitUsage
	}
	return ExitFailure
}

// newRootCommand builds the command tree. Every subcommand lives in its own
// file and is added here.
func newRootCommand(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "filehub",
		Short: "filehub stores files deduplicated by content and serves them over HTTP",
		Long: `filehub is a self-hosted file store: "filehub serve" runs the daemon, the
other commands manage its API keys or talk to a running server.

Settings: every configurable flag also reads FILEHUB_<FLAG> from the
environment (e.g. FILEHUB_DATA_DIR) and a key of the same name from the TOML
file given by --config (or FILEHUB_CONFIG). A flag on the command line wins
over the environment, which wins over the file.`,
		// Errors are printed once, as one line, by Execute. Cobra's usage
		// dump would bury the message for runtime failures.
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.PersistentFlags().String("config", "", "TOML config file whose keys are flag names (env FILEHUB_CONFIG)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageErrorf("%v (see \"%s --help\")", err, cmd.CommandPath())
	})
	root.CompletionOptions.DisableDefaultCmd = true

	root.AddCommand(
		newServeCommand(env),
		newKeysCommand(env),
		newUploadCommand(env),
		newLsCommand(env),
		newGetCommand(env),
		newRmCommand(env),
		newRestoreCommand(env),
		newStatsCommand(env),
		newPushCommand(env),
		newMCPCommand(env),
		newWatchCommand(env),
		newCleanupCommand(env),
		newAuditCommand(env),
		newCheckCommand(env),
		newMigrateCommand(env),
		newVersionCommand(env),
	)

	// Apply the environment and config file before any command runs. The
	// set of keys a file may hold is the union over all commands.
	known := configKeys(root)
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		return applyConfig(cmd, env.lookupEnv, known)
	}
	return root
}

// usageError is a mistake on the command line (exit code 2), as opposed to
// a failure while running the command (exit code 1).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func isUsageError(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// Argument validators that report usage errors. Cobra's own return plain
// errors, which would exit with 1.

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usageErrorf("unknown command %q for %q (see \"%s --help\")", args[0], cmd.CommandPath(), cmd.CommandPath())
		}
		return usageErrorf("%s takes no arguments", cmd.CommandPath())
	}
	return nil
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s needs exactly %d argument(s): %s", cmd.CommandPath(), n, what)
		}
		return nil
	}
}

func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErrorf("%s needs at least %d argument(s): %s", cmd.CommandPath(), n, what)
		}
		return nil
	}
}

// describe turns err into the one line shown to the user. A filehub.Error
// prints as "filehub: <code>: <message>", which is meant for logs; here the
// code is replaced by the message alone (plus its cause, which for a CLI is
// the user's own business: "connection refused" is what they need to know).
func describe(err error) string {
	msg := err.Error()
	var fe *filehub.Error
	if errors.As(err, &fe) {
		friendly := fe.Message
		if friendly == "" {
			friendly = fe.Code
		}
		var re *client.RequestError
		switch {
		case errors.As(fe.Err, &re):
			// The status adds nothing to the server's message; the request
			// id lets an operator find the request in the server's logs.
			if re.RequestID != "" {
				friendly += " (request " + re.RequestID + ")"
			}
		case fe.Err != nil:
			friendly += ": " + fe.Err.Error()
		}
		msg = strings.Replace(msg, fe.Error(), friendly, 1)
	}
	msg = strings.TrimPrefix(msg, "filehub: ")
	// One line, whatever the cause says.
	return strings.Join(strings.Fields(msg), " ")
}
