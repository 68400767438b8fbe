package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/filehub/filehub/internal/loadgen"
)

// raiseFileLimit lifts the soft limit on open files to the hard limit: every
// WebSocket connection is a file descriptor, on both ends.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return lim.Cur, nil
}

// listening is the line a server command prints once it accepts
// connections.
type listening struct {
	URL string `json:"url"`
	Key string `json:"key,omitempty"`
	PID int    `json:"pid"`
}

func printListening(l listening) error {
	l.PID = os.Getpid()
	return json.NewEncoder(os.Stdout).Encode(l)
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func wsServer(args []string) error {
	fs := flag.NewFlagSet("ws-server", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9100", "address to listen on")
	dir := fs.String("dir", "", "directory for the stores (required)")
	key := fs.String("key", os.Getenv("FILEHUB_KEY"), "secret of the read-write key to create (default $FILEHUB_KEY, else a new one)")
	perKey := fs.Int("max-conns-per-key", 20000, "connection limit per key")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memProfile := fs.String("memprofile", "", "on SIGINT or SIGTERM, write a heap profile to this file before closing connections")
	sessions := fs.String("ws-sessions", "durable", "where WebSocket sessions live: durable (in SQLite, the daemon's default) or memory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *dir == "" {
		return errors.New("ws-server: --dir is required")
	}
	if _, err := raiseFileLimit(); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o750); err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	srv, err := loadgen.StartWSServer(ctx, loadgen.WSServerConfig{
		Dir: *dir, Addr: *listen, Key: *key, MaxConnsPerKey: *perKey, Sessions: *sessions,
	})
	if err != nil {
		return err
	}
	if err := printListening(listening{URL: srv.URL, Key: srv.Key}); err != nil {
		srv.Close()
		return err
	}
	<-ctx.Done()
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			srv.Close()
			return err
		}
	}
	return srv.Close()
}

// writeHeapProfile writes the in-use heap, after a collection, to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func wsBare(args []string) error {
	fs := flag.NewFlagSet("ws-bare", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9101", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := raiseFileLimit(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: loadgen.BareEcho(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signalContext()
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := printListening(listening{URL: "ws://" + ln.Addr().String() + "/"}); err != nil {
		ln.Close()
		return err
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func wsIdle(args []string) error {
	fs := flag.NewFlagSet("ws-idle", flag.ContinueOnError)
	var cfg loadgen.IdleConfig
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:9100/v1/ws", "WebSocket endpoint")
	fs.StringVar(&cfg.Key, "key", os.Getenv("FILEHUB_KEY"), "bearer key (default $FILEHUB_KEY; none for ws-bare)")
	fs.IntVar(&cfg.Conns, "n", 10000, "connections to open and hold")
	fs.IntVar(&cfg.Concurrency, "c", 64, "connections being opened at once")
	fs.DurationVar(&cfg.Settle, "settle", 3*time.Second, "wait after the last connection opened before measuring")
	fs.DurationVar(&cfg.Hold, "hold", 0, "keep the connections open this long after measuring")
	fs.IntVar(&cfg.ServerPID, "pid", 0, "server process id, to report its memory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	limit, err := raiseFileLimit()
	if err != nil {
		return err
	}
	if uint64(cfg.Conns)+64 > limit {
		return fmt.Errorf("ws-idle: %d connections need more open files than the limit %d", cfg.Conns, limit)
	}
	ctx, stop := signalContext()
	defer stop()
	res, err := loadgen.RunIdle(ctx, cfg)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return err
	}
	if res.Failures > 0 {
		return fmt.Errorf("%d connections failed; first: %s", res.Failures, res.FirstError)
	}
	return nil
}

func wsFanout(args []string) error {
	fs := flag.NewFlagSet("ws-fanout", flag.ContinueOnError)
	var cfg loadgen.FanoutConfig
	fs.StringVar(&cfg.Target, "target", loadgen.TargetFilehub, "server kind: filehub or centrifugo")
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:9100/v1/ws", "WebSocket endpoint (Centrifugo: ws://HOST/connection/websocket)")
	fs.StringVar(&cfg.APIURL, "api-url", "", "HTTP base the events are produced through (filehub: derived from --url; Centrifugo: http://HOST/api)")
	fs.StringVar(&cfg.Key, "key", os.Getenv("FILEHUB_KEY"), "filehub bearer key (default $FILEHUB_KEY)")
	fs.StringVar(&cfg.APIKey, "api-key", "", "Centrifugo HTTP API key")
	fs.StringVar(&cfg.TokenSecret, "token-secret", "", "Centrifugo HMAC secret for connection tokens")
	fs.StringVar(&cfg.Channel, "channel", "fanout:events", "Centrifugo channel")
	fs.IntVar(&cfg.Subscribers, "n", 1000, "subscribed connections")
	fs.IntVar(&cfg.Events, "events", 2000, "events to produce")
	fs.Float64Var(&cfg.Rate, "rate", 0, "events per second (0: as fast as the server takes them)")
	fs.IntVar(&cfg.Producers, "producers", 16, "event-producing HTTP requests in flight")
	fs.DurationVar(&cfg.Timeout, "timeout", time.Minute, "wait for the last delivery after the last event")
	fs.IntVar(&cfg.ServerPID, "pid", 0, "server process id, to report its CPU time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	limit, err := raiseFileLimit()
	if err != nil {
		return err
	}
	if uint64(cfg.Subscribers)+uint64(max(cfg.Producers, 16))+64 > limit {
		return fmt.Errorf("ws-fanout: %d connections need more open files than the limit %d", cfg.Subscribers, limit)
	}
	ctx, stop := signalContext()
	defer stop()
	res, err := loadgen.RunFanout(ctx, cfg)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return err
	}
	if res.Missing > 0 || res.Duplicates > 0 || res.ProduceFailures > 0 {
		return fmt.Errorf("%d missing, %d duplicate or out-of-order deliveries, %d produce failures; first error: %s",
			res.Missing, res.Duplicates, res.ProduceFailures, res.FirstError)
	}
	return nil
}
