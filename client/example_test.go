package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/client"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/sqlite"
)

// Example uploads a file to a filehub server, uploads it again (and is told
// it was deduplicated), then downloads it. The server runs in-process on a
// temporary directory so that the example runs as a test; against a real
// server, only the client lines are needed.
func Example() {
	ctx := context.Background()
	url, key, stop := startServer(ctx)
	defer stop()

	c := client.New(url, key)

	up, err := c.Upload(ctx, "notes.txt", strings.NewReader("hello, filehub\n"), -1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored", up.Name, up.Size, "bytes, deduplicated:", up.Deduplicated)

	again, err := c.Upload(ctx, "copy.txt", strings.NewReader("hello, filehub\n"), -1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored", again.Name, "deduplicated:", again.Deduplicated)

	d, err := c.Open(ctx, up.ID)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	body, err := io.ReadAll(d.Body) // verified against the file's SHA-256
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %q\n", d.Name, body)

	_, err = c.Stat(ctx, "f_nosuchfile")
	fmt.Println("missing file:", filehub.ErrorCode(err))

	// Output:
	// stored notes.txt 15 bytes, deduplicated: false
	// stored copy.txt deduplicated: true
	// notes.txt: "hello, filehub\n"
	// missing file: not_found
}

// startServer runs the API on 127.0.0.1 with stores in a temporary
// directory and an admin key, as `filehub serve` would.
func startServer(ctx context.Context) (url, key string, stop func()) {
	dir, err := os.MkdirTemp("", "filehub-example")
	if err != nil {
		log.Fatal(err)
	}
	meta, err := sqlite.Open(ctx, filepath.Join(dir, "filehub.db"), sqlite.Config{})
	if err != nil {
		log.Fatal(err)
	}
	blobs, err := localfs.Open(dir, localfs.Config{})
	if err != nil {
		log.Fatal(err)
	}
	svc, err := files.New(meta, blobs, files.Config{MinFreeSpace: -1})
	if err != nil {
		log.Fatal(err)
	}
	key = filehub.NewAPIKeySecret()
	err = meta.CreateAPIKey(ctx, &filehub.APIKey{ID: filehub.NewID("k_"), Name: "example",
		Scopes: []filehub.Scope{filehub.ScopeAdmin}, CreatedAt: time.Now(), Hash: filehub.HashAPIKey(key)})
	if err != nil {
		log.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(httpapi.New(svc, meta, httpapi.Config{Logger: quiet}))
	return srv.URL, key, func() {
		srv.Close()
		meta.Close()
		os.RemoveAll(dir)
	}
}
