package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsclient"
)

// newWatchCommand is "filehub watch": the event stream of a running server,
// through the WebSocket client library, which resumes across disconnects
// and re-subscribes from the last printed event after a server restart.
func newWatchCommand(env Env) *cobra.Command {
	var (
		since    int64
		asJSON   bool
		allowGap bool
	)
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print file events (created, deleted, restored, purged) as they happen",
		Long: `Print every event of the server's event log after --since, then every new one
as it is written, until interrupted. Each event is printed exactly once and
in order, across disconnects and server restarts.

If the events after --since have already been trimmed from the log, watch
fails (exit 1) rather than skip them silently, unless --allow-gap is given.`,
		Args: noArgs,
	}
	cf := addClientFlags(cmd)
	cmd.Flags().Int64Var(&since, "since", 0, "print the events after this event id (0: from the oldest retained)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per event")
	cmd.Flags().BoolVar(&allowGap, "allow-gap", false, "if events after --since were trimmed, warn and continue from the oldest retained one")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if since < 0 {
			return usageErrorf("--since must not be negative")
		}
		if strings.TrimSpace(cf.key) == "" {
			return usageErrorf("no API key: set FILEHUB_KEY or pass --key")
		}
		wsURL, err := webSocketURL(cf.server)
		if err != nil {
			return err
		}
		tlsCfg, err := cf.tlsConfig()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		c, err := wsclient.Dial(ctx, wsURL, wsclient.Options{Key: cf.key, IgnoreMessages: true, TLSConfig: tlsCfg})
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted before the first connection
			}
			return fmt.Errorf("connect to %s: %w", cf.server, err)
		}
		defer func() { _ = c.Close() }() // always nil: the session is simply abandoned

		last := since
		enc := json.NewEncoder(env.Stdout)
		print := func(ev filehub.Event) error {
			if ev.ID <= last {
				return nil
			}
			last = ev.ID
			if asJSON {
				return enc.Encode(ev)
			}
			name, id := "", ""
			if ev.File != nil {
				name, id = ev.File.Name, ev.File.ID
			}
			_, err := fmt.Fprintf(env.Stdout, "%d\t%s\t%s\t%s\t%s\n",
				ev.ID, ev.Time.Local().Format(time.DateTime), ev.Type, id, name)
			return err
		}
		err = c.Subscribe(ctx, since, print)
		if errors.Is(err, wsclient.ErrGap) && allowGap {
			fmt.Fprintf(env.Stderr, "filehub: warning: %s; continuing with the oldest retained event\n", filehub.ErrorMessage(err))
			err = c.Subscribe(ctx, 0, print)
		}
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil // interrupted: a normal end for watch
		}
		return fmt.Errorf("watch events: %w", err)
	}
	return cmd
}

// webSocketURL turns a --server base URL (http or https) into the URL of
// its WebSocket endpoint.
func webSocketURL(server string) (string, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || u.Host == "" {
		return "", usageErrorf("--server %q is not a URL like http://127.0.0.1:8080", server)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", usageErrorf("--server %q: scheme must be http or https", server)
	}
	u.Path += "/v1/ws"
	return u.String(), nil
}
