// Package soak runs a mixed load against a real `filehub serve` process for
// a given duration while the server is killed with SIGKILL and restarted at
// random intervals, then verifies that nothing acknowledged was lost:
// `filehub check --read-data` is clean, every file acknowledged and not
// deleted is present and byte-exact, every `filehub watch` consumer (each
// through a proxy that cuts its connections) saw every event once and in
// order, and the server's memory and goroutines did not grow.
//
// The load: uploads (30% of them repeating earlier content), ranged
// downloads verified by hash, deletes and restores, with the cleanup
// service running every 2 s at graces of a second or two, so that
// purges, sweeps and dedup revivals race the uploads. Each worker touches
// only the files it uploaded, so that every outcome it sees is one it
// can predict.
package soak

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/client"
	"github.com/filehub/filehub/internal/chaosproxy"
)

// Config configures a soak run. Bin is required; every other field says
// its default.
type Config struct {
	// Bin is the filehub binary to run.
	Bin string
	// DataDir is the server's data directory. Default: a new temporary
	// directory, removed at the end.
	DataDir string
	// Duration is how long the load runs. Default 2m.
	Duration time.Duration
	// Workers run the file operations. Default 4.
	Workers int
	// Watchers are `filehub watch` processes. Default 2.
	Watchers int
	// KillEvery is the mean time between SIGKILLs (each at a uniformly
	// random time between half and one and a half of it). Default 8s;
	// negative: never. Kills stop in the last third of the run, so that
	// the final process lives long enough to measure its memory.
	KillEvery time.Duration
	// CutEvery is how often the watchers' proxy cuts every connection.
	// Default 3s.
	CutEvery time.Duration
	// Seed makes the operation mix repeatable (not the timing). Default:
	// random.
	Seed uint64
	// Logger receives progress. Default: discard.
	Logger *slog.Logger
}

// Sample is one reading of the server's memory.
type Sample struct {
	At  time.Duration `json:"at"` // since the start
	RSS int64         `json:"rss"`
	Pid int           `json:"pid"`
}

// Report is the outcome of a run. Problems lists every verification that
// failed; a clean run has none.
type Report struct {
	Duration      time.Duration `json:"duration"`
	Uploads       int64         `json:"uploads"`
	Duplicates    int64         `json:"duplicates"`
	Downloads     int64         `json:"downloads"`
	Deletes       int64         `json:"deletes"`
	Restores      int64         `json:"restores"`
	Errors        int64         `json:"errors"` // failed requests (the server was down, mostly)
	OpsPerSecond  float64       `json:"ops_per_second"`
	Restarts      int           `json:"restarts"`
	FilesVerified int           `json:"files_verified"`
	LastEventID   int64         `json:"last_event_id"`
	WatcherEvents []int         `json:"watcher_events"`
	// RSSSlope is the final server process's RSS growth over the last
	// half of its samples, in MiB per minute (least squares).
	RSSSlope float64 `json:"rss_slope_mib_per_min"`
	RSSMean  float64 `json:"rss_mean_mib"`
	// RSSGrowth is the slope times the window it was measured over
	// (RSSWindow): the growth in MiB the trend line predicts across it.
	RSSGrowth float64       `json:"rss_growth_mib"`
	RSSWindow time.Duration `json:"rss_window"`
	// Goroutines of the final server process once the kills have stopped
	// (two thirds into the run) and at the end (go_goroutines).
	GoroutinesMid int              `json:"goroutines_mid"`
	GoroutinesEnd int              `json:"goroutines_end"`
	RSS           []Sample         `json:"rss"`
	Check         *api.CheckReport `json:"check,omitempty"`
	Problems      []string         `json:"problems"`

	mu sync.Mutex // guards Problems while the run goes on
}

func (r *Report) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// run is the state of one soak run.
type run struct {
	cfg    Config
	key    string
	addr   string // the server's fixed 127.0.0.1:port
	url    string
	rep    *Report
	start  time.Time
	srv    *server
	proxy  *chaosproxy.Proxy
	client *client.Client
	ops    atomic.Int64

	watchers []*watcher
	files    []map[string]*file // by worker; each touched by its worker only
	rss      []Sample           // the sampler's, read after it stopped
}

func (c *Config) defaults() {
	if c.Duration <= 0 {
		c.Duration = 2 * time.Minute
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Watchers <= 0 {
		c.Watchers = 2
	}
	if c.KillEvery == 0 {
		c.KillEvery = 8 * time.Second
	}
	if c.CutEvery <= 0 {
		c.CutEvery = 3 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run runs one soak. Its error is for a run that could not be carried out
// (the binary does not start); what the run found is in Report.Problems.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if cfg.Bin == "" {
		return nil, errors.New("soak: Config.Bin is required")
	}
	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "filehub-soak-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.DataDir = dir
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var kb [16]byte
	for i := range kb {
		kb[i] = byte(rand.Uint32())
	}
	r := &run{cfg: cfg, key: "fh_soak" + hex.EncodeToString(kb[:]), addr: addr, url: "http://" + addr,
		rep: &Report{Problems: []string{}}, start: time.Now()}
	r.srv = &server{bin: cfg.Bin, dir: cfg.DataDir, addr: addr, key: r.key, log: cfg.Logger}
	if err := r.srv.start(ctx); err != nil {
		return nil, err
	}
	defer r.srv.stop()
	r.proxy, err = chaosproxy.New(addr)
	if err != nil {
		return nil, err
	}
	defer r.proxy.Close()
	r.client = client.New(r.url, r.key)
	r.load(ctx)
	r.verify(ctx)
	r.rep.Duration = time.Since(r.start).Round(time.Millisecond)
	r.rep.Restarts = r.srv.restarts
	r.rep.OpsPerSecond = float64(r.ops.Load()) / cfg.Duration.Seconds()
	return r.rep, nil
}

// freeAddr returns a free loopback port, which the server binds again at
// every restart so that clients and the proxy keep one address.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// content returns the bytes of content number k: 1 to 64 KiB, derived
// from k alone so that duplicates and verification need no copy.
func content(k uint64) []byte {
	rng := rand.New(rand.NewPCG(k, k^0x9e3779b97f4a7c15))
	b := make([]byte, 1024+rng.IntN(63<<10))
	for i := 0; i < len(b); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// logPath is where the server's stderr goes.
func (r *run) logPath() string { return filepath.Join(r.cfg.DataDir, "soak-server.log") }
