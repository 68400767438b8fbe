package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// s3Server serves an in-memory S3-compatible bucket (gofakes3), so the
// upload benchmarks can run filehub with --blobs s3://… without MinIO. It
// prints the --blobs URL on standard output. Its figures are those of a
// fast, local object store: a real one adds network round trips (each
// upload is a PUT, a HEAD and a server-side COPY) that dominate small
// uploads.
func s3Server(args []string) error {
	fs := flag.NewFlagSet("s3-server", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9000", "address to listen on")
	bucket := fs.String("bucket", "filehub-bench", "bucket to create")
	if err := fs.Parse(args); err != nil {
		return err
	}
	backend := s3mem.New()
	if err := backend.CreateBucket(*bucket); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: gofakes3.New(backend).Server(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signalContext()
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	endpoint := "http://" + ln.Addr().String()
	fmt.Fprintf(os.Stdout, "s3://%s?endpoint=%s&region=us-east-1&path_style=true\n", *bucket, url.QueryEscape(endpoint))
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
