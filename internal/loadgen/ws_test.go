package loadgen_test

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub/internal/loadgen"
)

func TestRunIdleAgainstBareEcho(t *testing.T) {
	srv := httptest.NewServer(loadgen.BareEcho())
	defer srv.Close()
	res, err := loadgen.RunIdle(context.Background(), loadgen.IdleConfig{
		URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Conns: 20, Concurrency: 4,
		Settle: time.Millisecond, ServerPID: os.Getpid(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conns != 20 || res.Failures != 0 {
		t.Fatalf("conns %d failures %d (%s)", res.Conns, res.Failures, res.FirstError)
	}
	if res.ServerRSSBefore <= 0 || res.ServerRSSAfter <= 0 || res.ServerPeakRSS <= 0 {
		t.Fatalf("memory not read: %+v", res)
	}
}

func TestRunIdleAgainstFilehub(t *testing.T) {
	srv, err := loadgen.StartWSServer(context.Background(), loadgen.WSServerConfig{
		Dir: t.TempDir(), MaxConnsPerKey: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	res, err := loadgen.RunIdle(context.Background(), loadgen.IdleConfig{
		URL: srv.URL, Key: srv.Key, Conns: 30, Concurrency: 4, Settle: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conns != 30 || res.Failures != 0 {
		t.Fatalf("conns %d failures %d (%s)", res.Conns, res.Failures, res.FirstError)
	}
}

func TestRunIdleCountsRefusals(t *testing.T) {
	srv, err := loadgen.StartWSServer(context.Background(), loadgen.WSServerConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	res, err := loadgen.RunIdle(context.Background(), loadgen.IdleConfig{
		URL: srv.URL, Key: "fhk_wrong", Conns: 3, Concurrency: 1, Settle: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conns != 0 || res.Failures != 3 || !strings.Contains(res.FirstError, "401") {
		t.Fatalf("got %+v, want 3 failures with HTTP 401", res)
	}
}
