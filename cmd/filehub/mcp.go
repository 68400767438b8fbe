package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/filehub/filehub/mcpserver"
)

func newMCPCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve filehub as a Model Context Protocol server on stdin/stdout",
		Long: `Serve filehub's files, provider pushes and cleanup as a Model Context Protocol
(MCP) server on standard input and output, talking to a running filehub over
its HTTP API with the API key: what a desktop MCP client's configuration
starts. The tools and resources are those of the server's own endpoint
(/v1/mcp); the server checks the key's scopes on every call and audits
changes with the key as actor. Logs go to standard error. See docs/mcp.md.`,
		Args: noArgs,
	}
	cf := addClientFlags(cmd)
	maxUpload := byteSize(mcpserver.DefaultMaxUpload)
	cmd.Flags().Var(&maxUpload, "mcp-max-upload", "largest content one upload_file call may carry (e.g. 16MiB)")
	logLevel := "warn"
	cmd.Flags().StringVar(&logLevel, "log-level", logLevel, "log level on standard error: debug, info, warn or error")
	configurable(cmd.Flags(), "mcp-max-upload")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		logger, err := newLogger(env.Stderr, logLevel, "text")
		if err != nil {
			return usageErrorf("%v", err)
		}
		c, done, err := cf.newClient()
		if err != nil {
			return err
		}
		defer done()
		wsURL, err := webSocketURL(cf.server)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		remote := &mcpserver.Remote{Client: c, WebSocketURL: wsURL, Key: cf.key, Logger: logger.With("component", "events")}
		key, err := remote.ProbeKey(ctx)
		if err != nil {
			return fmt.Errorf("check the API key with %s: %w", cf.server, err)
		}
		logger.Info("connected", "server", cf.server, "scopes", key.Scopes)
		srv, err := mcpserver.New(remote, mcpserver.Config{
			MaxUpload: int64(maxUpload),
			Key:       key,
			Version:   buildVersion(),
			Logger:    logger,
			// The server limits the key's requests; a second budget here
			// would only confuse.
			RateLimit: -1,
		})
		if err != nil {
			return err
		}
		return serveStdio(ctx, srv, env.Stdin, env.Stdout)
	}
	return cmd
}

// serveStdio serves one MCP session on in/out, with the event feed for its
// notifications, until the client closes its end or ctx ends.
func serveStdio(ctx context.Context, srv *mcpserver.Server, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer cancel() // the session is over: stop the event feed
		err := srv.ServeStdio(gctx, &mcp.IOTransport{Reader: io.NopCloser(in), Writer: nopWriteCloser{out}})
		if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	})
	g.Go(func() error { return srv.Run(gctx) })
	return g.Wait()
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
