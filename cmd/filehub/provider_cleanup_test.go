package main_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/cleanup"
	main "github.com/filehub/filehub/cmd/filehub"
	"github.com/filehub/filehub/internal/fakeprovider"
)

// heldIDs lists the file IDs the stand-in holds, in creation order.
func heldIDs(fp *fakeprovider.Server) []string {
	var ids []string
	for _, f := range fp.Files() {
		ids = append(ids, f.ID)
	}
	return ids
}

// TestProviderCleanupEndToEnd runs the daemon with provider "test" at the
// stand-in and graces so short that anything deleted is due at the next
// run: a pushed copy whose file is removed is deleted at the provider and
// audited; a file uploaded outside filehub is only reported until
// --provider-orphans delete.
func TestProviderCleanupEndToEnd(t *testing.T) {
	fp := fakeprovider.New(t, "sk-provider")
	srv := MustRunMain(t, t.TempDir(), map[string]string{
		"FILEHUB_BOOTSTRAP_KEY":          testKey,
		"FILEHUB_PROVIDER_TEST_API_KEY":  "sk-provider",
		"FILEHUB_PROVIDER_TEST_BASE_URL": fp.URL,
		"FILEHUB_PROVIDER_TEST_PURPOSE":  "file-extract",
	}, func(c *main.ServeConfig) {
		c.TrashGrace = time.Nanosecond
		c.BlobGrace = time.Nanosecond
		c.CleanupInterval = 0
	})
	env := clientEnv(srv, testKey)

	up := uploadFile(t, env, "report.txt", "quarterly numbers")
	MustCLI(t, env, "push", up.ID, "--provider", "test")
	held := heldIDs(fp)
	if len(held) != 1 {
		t.Fatalf("after push the stand-in holds %v, want 1 file", held)
	}
	pushed := held[0]
	stray := fp.Add("uploaded elsewhere.pdf", "file-extract", 10)
	MustCLI(t, env, "rm", up.ID)

	// Runs until the trash purge and the blob sweep have both happened and
	// the copy is gone at the provider; bounded by a number of runs.
	var purged, copyDeleted bool
	for i := 0; i < 5 && !(purged && copyDeleted); i++ {
		r := mustReport(t, MustCLI(t, env, "cleanup", "run", "--json").Stdout)
		if r.Status != filehub.RunOK {
			t.Fatalf("run %d: status %q", r.RunID, r.Status)
		}
		if kr := r.Kinds[cleanup.KindTrash]; kr != nil {
			for _, tg := range kr.Targets {
				if tg.FileID == up.ID && tg.Action == cleanup.ActionDeleted {
					purged = true
				}
			}
		}
		if kr := r.Kinds[cleanup.KindProviderCopy]; kr != nil {
			for _, tg := range kr.Targets {
				if tg.ProviderFileID == pushed && tg.Action == cleanup.ActionDeleted {
					copyDeleted = true
				}
			}
		}
		if kr := r.Kinds[cleanup.KindProviderOrphan]; kr != nil {
			for _, tg := range kr.Targets {
				if tg.ProviderFileID == stray.ID && tg.Action != cleanup.ActionReported {
					t.Errorf("run %d in report mode: stray target %+v, want reported", r.RunID, tg)
				}
			}
		}
	}
	if !purged || !copyDeleted {
		t.Fatalf("after the runs: purged %v, provider copy deleted %v", purged, copyDeleted)
	}
	if got := heldIDs(fp); !slices.Equal(got, []string{stray.ID}) {
		t.Fatalf("the stand-in holds %v, want only the stray %s", got, stray.ID)
	}

	// The deletion is audited.
	r := MustCLI(t, env, "audit", "--json", "--action", filehub.AuditProviderDeleted)
	var audited bool
	for line := range strings.Lines(r.Stdout) {
		var a filehub.AuditEntry
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if a.Action == filehub.AuditProviderDeleted && a.Target == "test/"+pushed {
			audited = true
		}
	}
	if !audited {
		t.Errorf("no provider.deleted audit entry for test/%s in %q", pushed, r.Stdout)
	}

	// Asked to, cleanup deletes the stray.
	rep := mustReport(t, MustCLI(t, env, "cleanup", "run", "--provider-orphans", "delete", "--json").Stdout)
	found := false
	if kr := rep.Kinds[cleanup.KindProviderOrphan]; kr != nil {
		for _, tg := range kr.Targets {
			if tg.ProviderFileID == stray.ID && tg.Action == cleanup.ActionDeleted {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("delete mode: report lacks the stray %s deleted: %+v", stray.ID, rep.Kinds[cleanup.KindProviderOrphan])
	}
	if got := heldIDs(fp); len(got) != 0 {
		t.Errorf("after --provider-orphans delete the stand-in holds %v, want nothing", got)
	}
}
