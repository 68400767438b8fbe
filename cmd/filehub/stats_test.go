package main_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/filehub/filehub/api"
	main "github.com/filehub/filehub/cmd/filehub"
)

// TestCLIStats: filehub stats prints the server's totals as a table and
// as JSON, and a refusal as one line.
func TestCLIStats(t *testing.T) {
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	c := NewClient(t, s.URL, testKey)
	ctx := context.Background()
	for _, name := range []string{"a.txt", "b.txt"} {
		if _, err := c.Upload(ctx, name, strings.NewReader("twice the same"), -1); err != nil {
			t.Fatal(err)
		}
	}
	gone, err := c.Upload(ctx, "c.txt", strings.NewReader(strings.Repeat("x", 3000)), -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	env := clientEnv(s, testKey)

	r := MustCLI(t, env, "stats", "--json")
	var st api.Stats
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("stats --json printed %q: %v", r.Stdout, err)
	}
	if st.Files != 2 || st.LogicalBytes != 28 || st.StoredBytes != 14 || st.DedupSavingsBytes != 14 ||
		st.TrashFiles != 1 || st.TrashBytes != 3000 || st.Blobs != 2 || st.BlobBytes != 3014 {
		t.Errorf("stats --json: %+v", st)
	}

	r = MustCLI(t, env, "stats")
	for _, want := range []string{
		`live files\s+2\s+28 bytes\s+28 B`,
		`deduplication saves\s+14 bytes`,
		`trash\s+1\s+3000 bytes\s+2\.9 KiB`,
		`blobs\s+2\s+3014 bytes`,
	} {
		if !regexp.MustCompile(want).MatchString(r.Stdout) {
			t.Errorf("stats printed no line matching %q:\n%s", want, r.Stdout)
		}
	}

	metricsKey := strings.TrimSpace(MustCLI(t, map[string]string{"FILEHUB_DATA_DIR": s.DataDir}, "keys", "create", "--name", "scraper", "--scope", "metrics").Stdout)
	r = CLI(t, clientEnv(s, metricsKey), nil, "stats")
	if r.Code != main.ExitFailure || r.Stdout != "" || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 || !strings.Contains(r.Stderr, "read") {
		t.Errorf("stats with a metrics key: exit %d, stdout %q, stderr %q; want one line about the scope", r.Code, r.Stdout, r.Stderr)
	}
}
