package main

import (
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/filehub/filehub/client"
)

// defaultServer is the server the client commands talk to when neither
// --server nor FILEHUB_SERVER says otherwise: serve's default --listen.
const defaultServer = "http://127.0.0.1:8080"

// clientFlags are the settings shared by every command that talks to a
// running server.
type clientFlags struct {
	server string
	key    string
}

// addClientFlags defines --server and --key on cmd.
func addClientFlags(cmd *cobra.Command) *clientFlags {
	f := &clientFlags{}
	cmd.Flags().StringVar(&f.server, "server", defaultServer, "base URL of the filehub server")
	cmd.Flags().StringVar(&f.key, "key", "", "API key secret; prefer the environment variable, command lines are visible to other users")
	configurable(cmd.Flags(), "server", "key")
	return f
}

// newClient returns an API client and a function that releases its
// connections. Each command gets its own transport so that nothing lingers
// after it returns (which matters when tests run commands in-process).
func (f *clientFlags) newClient() (*client.Client, func(), error) {
	if strings.TrimSpace(f.key) == "" {
		return nil, nil, usageErrorf("no API key: set FILEHUB_KEY or pass --key")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Connecting and waiting for headers are bounded; the body of an upload
	// or download may take as long as it takes.
	tr.ResponseHeaderTimeout = 5 * time.Minute
	hc := &http.Client{Transport: tr}
	c := client.New(f.server, f.key, client.WithHTTPClient(hc), client.WithUserAgent("filehub-cli/"+buildVersion()))
	return c, tr.CloseIdleConnections, nil
}

// newTusUploader returns the resumable uploader of "filehub upload" and a
// function that releases its connections.
func (f *clientFlags) newTusUploader(c *client.Client) (*tusUploader, func()) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 5 * time.Minute
	return &tusUploader{
		server: strings.TrimRight(strings.TrimSpace(f.server), "/"),
		key:    strings.TrimSpace(f.key),
		hc:     &http.Client{Transport: tr},
		c:      c,
		onSent: func(int64) {},
	}, tr.CloseIdleConnections
}

// isTerminal reports whether w is a terminal, where progress bars and
// tables for people make sense.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// sizeString formats a byte count for people: 4.8 MiB.
func sizeString(n int64) string {
	if n < 0 {
		return "?"
	}
	return humanize.IBytes(uint64(n))
}
