package main_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/filehub/filehub/client"
	main "github.com/filehub/filehub/cmd/filehub"
	"github.com/filehub/filehub/internal/fakeprovider"
)

// TestPushEndToEnd runs the daemon with the provider "test" configured
// from the environment and pointed at a stand-in of the files API, and
// pushes with the CLI.
func TestPushEndToEnd(t *testing.T) {
	fp := fakeprovider.New(t, "sk-provider")
	srv := MustRunMain(t, t.TempDir(), map[string]string{
		"FILEHUB_BOOTSTRAP_KEY":               testKey,
		"FILEHUB_PROVIDER_TEST_API_KEY":       "sk-provider",
		"FILEHUB_PROVIDER_TEST_BASE_URL":      fp.URL,
		"FILEHUB_PROVIDER_TEST_PURPOSE":       "file-extract",
		"FILEHUB_PROVIDER_TEST_MAX_FILE_SIZE": "1KiB",
	}, nil)
	c := client.New(srv.URL, testKey)
	ctx := context.Background()
	up, err := c.Upload(ctx, "report.txt", strings.NewReader("quarterly numbers"), -1)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FILEHUB_SERVER": srv.URL, "FILEHUB_KEY": testKey}

	r := MustCLI(t, env, "push", up.ID, "--provider", "test")
	held := fp.Files()
	if len(held) != 1 || held[0].Filename != "report.txt" || held[0].Purpose != "file-extract" {
		t.Fatalf("the provider holds %+v", held)
	}
	if want := up.ID + "  test  " + held[0].ID + " (uploaded)\n"; r.Stdout != want {
		t.Errorf("push printed %q, want %q", r.Stdout, want)
	}
	r = MustCLI(t, env, "push", up.ID, "--provider", "test")
	if !strings.Contains(r.Stdout, held[0].ID+" (already there)") {
		t.Errorf("second push printed %q", r.Stdout)
	}

	// Concurrent pushes through the HTTP API of another content upload it
	// once.
	other, err := c.Upload(ctx, "other.txt", strings.NewReader("other content"), -1)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := c.Push(ctx, other.ID, "test"); err != nil {
				t.Errorf("Push: %v", err)
			}
		})
	}
	wg.Wait()
	if fp.Uploads() != 2 {
		t.Errorf("the provider received %d uploads, want 2", fp.Uploads())
	}

	// Errors: an unknown provider, a file over the configured limit, the
	// provider's own refusal passed on.
	MustFail(t, env, main.ExitFailure, `unknown provider "kimi"`, "push", up.ID, "--provider", "kimi")
	big, err := c.Upload(ctx, "big.bin", bytes.NewReader(make([]byte, 2048)), -1)
	if err != nil {
		t.Fatal(err)
	}
	MustFail(t, env, main.ExitFailure, "accepts up to 1024", "push", big.ID, "--provider", "test")
	fresh, err := c.Upload(ctx, "fresh.txt", strings.NewReader("fresh"), -1)
	if err != nil {
		t.Fatal(err)
	}
	fp.Inject("POST /files", fakeprovider.Fault{Status: 400})
	MustFail(t, env, main.ExitFailure, "injected 400", "push", fresh.ID, "--provider", "test")
	MustFail(t, env, main.ExitUsage, "--provider is required", "push", up.ID)
}

func TestPushWithoutProviders(t *testing.T) {
	srv := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	c := client.New(srv.URL, testKey)
	up, err := c.Upload(context.Background(), "a.txt", strings.NewReader("a"), -1)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FILEHUB_SERVER": srv.URL, "FILEHUB_KEY": testKey}
	MustFail(t, env, main.ExitFailure, `unknown provider "kimi"`, "push", up.ID, "--provider", "kimi")
}

func TestServeRefusesBadProviderConfig(t *testing.T) {
	err := StartErr(t, t.TempDir(), map[string]string{
		"FILEHUB_BOOTSTRAP_KEY":          testKey,
		"FILEHUB_PROVIDER_KIMI_BASE_URL": "https://x/v1",
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "FILEHUB_PROVIDER_KIMI_API_KEY") {
		t.Errorf("Run = %v, want the missing API key named", err)
	}
}
