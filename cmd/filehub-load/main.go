// Command filehub-load generates load against a filehub server, or serves
// the baselines that filehub's figures are compared with. It runs as its own
// process so that the server's memory and CPU can be measured without the
// load generator's.
//
//	filehub-load reference --listen 127.0.0.1:9090 --dir /tmp/ref
//	filehub-load upload --url http://127.0.0.1:8080/v1/files --key $KEY -n 2000 -c 50 --size 4KiB --pid $SERVER_PID
//
// upload prints one JSON line: uploads, failures, uploads/s, MB/s, p50/p99
// latency and, with --pid, the server's peak RSS.
//
// For WebSocket sessions:
//
//	filehub-load ws-server --listen 127.0.0.1:9100 --dir /tmp/ws --key $KEY
//	filehub-load ws-bare --listen 127.0.0.1:9101
//	filehub-load ws-idle --url ws://127.0.0.1:9100/v1/ws --key $KEY -n 10000 --pid $SERVER_PID
//
// ws-server runs the filehub daemon (package server, as `filehub serve`
// does) on SQLite and the local disk in --dir; ws-bare runs the baseline, a bare
// gorilla/websocket echo server. Both print one JSON line with their URL,
// key and process id. ws-idle opens N sessions (hello, welcome, then idle)
// and prints one JSON line with the server's VmRSS before and after, and
// the difference per connection.
//
//	filehub-load ws-fanout --url ws://127.0.0.1:9100/v1/ws --key $KEY -n 1000 --events 2000 --rate 200 --pid $SERVER_PID
//	filehub-load ws-fanout --target centrifugo --url ws://127.0.0.1:8000/connection/websocket \
//	    --api-url http://127.0.0.1:8000/api --api-key $API_KEY --token-secret $SECRET -n 1000 --events 2000 --rate 200
//
// ws-fanout subscribes N connections to the server's event stream (filehub:
// events.subscribe; Centrifugo: a channel with history and recovery),
// produces events through the server's HTTP API (filehub: real deletes and
// restores; Centrifugo: /api/publish of the same event JSON) and prints one
// JSON line: deliveries/s, p50/p99 produce-to-receive latency, the server's
// CPU time, and the exactly-once check (every subscriber got every event
// once, in order). scripts/bench-fanout.sh alternates the two servers.
//
// For filehub on S3 (scripts/bench-uploads.sh with BLOBS=fake):
//
//	filehub-load s3-server --listen 127.0.0.1:9000 --bucket filehub-bench
//
// serves an in-memory S3-compatible bucket (gofakes3) and prints its
// --blobs URL.
//
// The soak test (internal/soak):
//
//	filehub-load soak --bin ./filehub --duration 30m
//
// runs uploads (30% duplicates), ranged downloads, deletes and restores
// against a real filehub serve that it kills with SIGKILL and restarts at
// random intervals, with filehub watch consumers behind a connection-cutting
// proxy and cleanups every 2 s, then verifies every acknowledged file, every
// watcher's stream, filehub check --read-data and the server's memory; it
// prints a JSON report and exits 1 on a problem.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/filehub/filehub/internal/loadgen"
	"github.com/filehub/filehub/internal/refserver"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "filehub-load:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  filehub-load upload --url URL [--key KEY] [-n COUNT] [-c CONCURRENCY] [--size SIZE] [--duplicate] [--pid PID] [--tus]
  filehub-load reference [--listen ADDR] --dir DIR
  filehub-load ws-server [--listen ADDR] --dir DIR [--key KEY] [--ws-sessions durable|memory] [--cpuprofile FILE]
  filehub-load ws-bare [--listen ADDR]
  filehub-load ws-idle --url URL [--key KEY] [-n CONNS] [-c CONCURRENCY] [--settle D] [--hold D] [--pid PID]
  filehub-load ws-fanout [--target filehub|centrifugo] --url URL [--key KEY] [--api-url URL --api-key KEY --token-secret S] [-n SUBS] [--events N] [--rate R] [--pid PID]
  filehub-load s3-server [--listen ADDR] [--bucket NAME]
  filehub-load soak --bin FILEHUB [--duration D] [--kill-every D] [--workers N] [--watchers N] [--data-dir DIR]`

func run(args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "upload":
		return upload(args[1:])
	case "reference":
		return reference(args[1:])
	case "ws-server":
		return wsServer(args[1:])
	case "ws-bare":
		return wsBare(args[1:])
	case "ws-idle":
		return wsIdle(args[1:])
	case "ws-fanout":
		return wsFanout(args[1:])
	case "s3-server":
		return s3Server(args[1:])
	case "soak":
		return soakCmd(args[1:])
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func upload(args []string) error {
	fs := flag.NewFlagSet("upload", flag.ContinueOnError)
	var cfg loadgen.Config
	var size string
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080/v1/files", "upload endpoint")
	fs.StringVar(&cfg.Key, "key", os.Getenv("FILEHUB_KEY"), "bearer key (default $FILEHUB_KEY)")
	fs.IntVar(&cfg.Count, "n", 1000, "number of uploads")
	fs.IntVar(&cfg.Concurrency, "c", 10, "uploads in flight at once")
	fs.StringVar(&size, "size", "4KiB", "bytes per upload (B, KiB, MiB, GiB)")
	fs.BoolVar(&cfg.Duplicate, "duplicate", false, "upload identical content every time")
	fs.IntVar(&cfg.ServerPID, "pid", 0, "server process id, to report its peak RSS")
	fs.BoolVar(&cfg.Tus, "tus", false, "upload to a tus creation endpoint (creation-with-upload, one request each), e.g. tusd's /files/")
	if err := fs.Parse(args); err != nil {
		return err
	}
	n, err := parseSize(size)
	if err != nil {
		return err
	}
	cfg.Size = n
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := res.WriteJSON(os.Stdout); err != nil {
		return err
	}
	if res.Failures > 0 {
		return fmt.Errorf("%d uploads failed; first: %s", res.Failures, res.FirstError)
	}
	return nil
}

func reference(args []string) error {
	fs := flag.NewFlagSet("reference", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9090", "address to listen on")
	dir := fs.String("dir", "", "directory to store uploads in (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("reference: --dir is required")
	}
	if err := os.MkdirAll(*dir, 0o750); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reference handler listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: &refserver.Handler{Dir: *dir}, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// parseSize reads "4096", "4KiB", "10MiB", "1GiB", "10MB".
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return n * u.mult, nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n, nil
}
