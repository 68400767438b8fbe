package main_test

import (
	"strings"
	"sync"
	"testing"

	main "github.com/filehub/filehub/cmd/filehub"
)

// TestKeysCreateConcurrentSameName: of concurrent creates of one name,
// exactly one succeeds and the others say the name is taken — the
// database decides, not a read before the insert.
func TestKeysCreateConcurrentSameName(t *testing.T) {
	dataDir := t.TempDir()
	MustRunMain(t, dataDir, map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	env := map[string]string{"FILEHUB_DATA_DIR": dataDir}
	const n = 6
	results := make([]Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = CLI(t, env, nil, "keys", "create", "--name", "twin", "--scope", "read") })
	}
	wg.Wait()
	ok := 0
	for _, r := range results {
		switch {
		case r.Code == main.ExitOK:
			ok++
		case r.Code != main.ExitFailure || !strings.Contains(r.Stderr, `a key named "twin" exists already`):
			t.Errorf("keys create: exit %d, stderr %q; want success or the name taken", r.Code, r.Stderr)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent creates of one name succeeded, want 1", ok, n)
	}
	if list := MustCLI(t, env, "keys", "list").Stdout; strings.Count(list, "twin") != 1 {
		t.Errorf("keys list shows the name %d times:\n%s", strings.Count(list, "twin"), list)
	}
}
