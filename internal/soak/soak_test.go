package soak_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/filehub/filehub/internal/soak"
)

// soakDuration is how long CI's soak runs its load: the 2 minutes issue 15
// asks of CI, plus about 20-40 s to build the binary (cached) and to
// verify. FILEHUB_SOAK_DURATION overrides it.
const soakDuration = 2 * time.Minute

// TestSoak runs the soak against the real binary with a kill -9 every
// 5 s on average (in the first two thirds), and fails on any problem it
// reports: a lost or changed file, a watcher's gap or repeat, a dirty
// check, memory or goroutines that grew.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak runs for over two minutes")
	}
	d := soakDuration
	if s := os.Getenv("FILEHUB_SOAK_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "filehub")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+2*d)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../cmd/filehub").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	rep, err := soak.Run(ctx, soak.Config{Bin: bin, DataDir: dir, Duration: d, KillEvery: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	rep.RSS = nil // the samples are long; the summary is enough here
	b, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("soak report:\n%s", b)
	for _, p := range rep.Problems {
		t.Errorf("problem: %s", p)
	}
	if rep.Restarts < 2 || rep.Uploads == 0 || rep.Downloads == 0 || rep.Deletes == 0 || rep.FilesVerified == 0 {
		t.Errorf("the soak did too little to prove anything: %d restarts, %d uploads, %d downloads, %d deletes, %d files verified",
			rep.Restarts, rep.Uploads, rep.Downloads, rep.Deletes, rep.FilesVerified)
	}
	if rep.Check == nil || !rep.Check.OK() {
		t.Errorf("check after the soak: %+v", rep.Check)
	}
	// "Did not grow": the trend of the final process's RSS over the last
	// half of its life predicts less than 8 MiB (or 15% of its mean) of
	// growth across that window. CI's window is ~10 s, where a slope in
	// MiB/min is dominated by the GC's sawtooth and a young process's
	// warming caches, so the bound is on the growth itself; a leak of the
	// load's scale (uploads of 1-64 KiB at ~250 ops/s) exceeds it. The
	// 30-minute run is where the slope itself means something.
	if rep.RSSMean > 0 && rep.RSSGrowth > max(8, 0.15*rep.RSSMean) {
		t.Errorf("server RSS grew %.1f MiB over the last %s (%.1f MiB/min, mean %.1f MiB)",
			rep.RSSGrowth, rep.RSSWindow, rep.RSSSlope, rep.RSSMean)
	}
	if rep.GoroutinesMid > 0 && rep.GoroutinesEnd > rep.GoroutinesMid+50 {
		t.Errorf("server goroutines grew from %d to %d", rep.GoroutinesMid, rep.GoroutinesEnd)
	}
	if t.Failed() {
		if logs, err := os.ReadFile(filepath.Join(dir, "soak-server.log")); err == nil {
			t.Logf("server log (tail):\n%s", tail(logs, 8000))
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
