package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/filehub/filehub/internal/soak"
)

// soakCmd runs internal/soak: a mixed load against a real filehub serve
// with kill -9 restarts, then the verification; one JSON report on stdout,
// exit 1 when it found a problem.
//
//	filehub-load soak --bin ./filehub --duration 30m [--kill-every 8s] [--workers 4] [--watchers 2]
func soakCmd(args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var cfg soak.Config
	fs.StringVar(&cfg.Bin, "bin", "filehub", "the filehub binary to run")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "the server's data directory (default: a temporary one, removed)")
	fs.DurationVar(&cfg.Duration, "duration", 2*time.Minute, "how long the load runs")
	fs.DurationVar(&cfg.KillEvery, "kill-every", 8*time.Second, "mean time between kill -9s of the server (negative: never)")
	fs.DurationVar(&cfg.CutEvery, "cut-every", 3*time.Second, "how often the watchers' connections are cut")
	fs.IntVar(&cfg.Workers, "workers", 4, "concurrent workers")
	fs.IntVar(&cfg.Watchers, "watchers", 2, "filehub watch consumers")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the operation mix (0: random)")
	withRSS := fs.Bool("rss", false, "include every RSS sample in the report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := soak.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if !*withRSS {
		rep.RSS = nil
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		return fmt.Errorf("soak found %d problem(s)", len(rep.Problems))
	}
	return nil
}
