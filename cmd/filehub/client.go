package main

import (
	"crypto/tls"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/filehub/filehub"
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
	caCert string // PEM file of a private CA for https:// servers
}

// addClientFlags defines --server and --key on cmd.
func addClientFlags(cmd *cobra.Command) *clientFlags {
	f := &clientFlags{}
	cmd.Flags().StringVar(&f.server, "server", defaultServer, "base URL of the filehub server")
	cmd.Flags().StringVar(&f.key, "key", "", "API key secret; prefer the environment variable, command lines are visible to other users")
	cmd.Flags().StringVar(&f.caCert, "ca-cert", "", "PEM file of the CA that signed an https:// server's certificate (default: the system's roots)")
	configurable(cmd.Flags(), "server", "key", "ca-cert")
	return f
}

// newClient returns an API client and a function that releases its
// connections. Each command gets its own transport so that nothing lingers
// after it returns (which matters when tests run commands in-process).
func (f *clientFlags) newClient() (*client.Client, func(), error) {
	if strings.TrimSpace(f.key) == "" {
		return nil, nil, usageErrorf("no API key: set FILEHUB_KEY or pass --key")
	}
	tlsCfg, err := f.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
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

// tlsConfig returns the TLS settings of --ca-cert, nil (the system's roots)
// without it.
func (f *clientFlags) tlsConfig() (*tls.Config, error) {
	if f.caCert == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(f.caCert)
	if err != nil {
		return nil, usageErrorf("--ca-cert: %v", err)
	}
	pool, err := client.CertPool(pem)
	if err != nil {
		return nil, usageErrorf("--ca-cert %s: %s", f.caCert, filehub.ErrorMessage(err))
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
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
