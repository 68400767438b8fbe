package cleanup_test

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/cleanup"
)

// TestWSSessions: durable WebSocket sessions detached for longer than the
// session TTL are reported by a dry run (which keeps them), then removed
// and audited; one resumed between the plan and the deletion is skipped;
// sessions detached within the TTL, and attached ones however old, stay.
func TestWSSessions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	now := e.clock.Now().UTC()
	const ttl = 10 * time.Minute
	mk := func(key string, detached time.Time) *filehub.WSSession {
		h := sha256.Sum256([]byte("token"))
		s := &filehub.WSSession{
			ID: filehub.NewID("s_"), KeyID: key, TokenHash: h[:], Epoch: 1, Owner: "gone",
			CreatedAt: now.Add(-48 * time.Hour), UpdatedAt: now.Add(-48 * time.Hour), DetachedAt: detached,
			OutSeq: 1, Out: []filehub.WSFrame{{Seq: 1, Data: []byte("unacknowledged")}},
		}
		if err := e.meta.CreateWSSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	expired := mk("k_1", now.Add(-time.Hour))
	racer := mk("k_1", now.Add(-2*time.Hour)) // resumed between plan and apply
	mk("k_2", now.Add(-time.Minute))          // within the TTL
	live := mk("k_2", time.Time{})            // attached, created two days ago
	// ... and saved a moment ago by its live owner (a session still marked
	// attached but not saved for longer than the TTL lost its owner, and
	// expires: storetest's Expire case).
	if lost, err := e.meta.SaveWSSessions(ctx, []filehub.WSSessionUpdate{{
		ID: live.ID, Epoch: live.Epoch, TokenHash: live.TokenHash, OutSeq: 1, UpdatedAt: now.Add(-time.Minute),
	}}); err != nil || len(lost) > 0 {
		t.Fatalf("save: %v %v", lost, err)
	}
	count := func() int {
		t.Helper()
		n1, err := e.meta.CountWSSessions(ctx, "k_1")
		if err != nil {
			t.Fatal(err)
		}
		n2, err := e.meta.CountWSSessions(ctx, "k_2")
		if err != nil {
			t.Fatal(err)
		}
		return n1 + n2
	}
	only := []cleanup.Kind{cleanup.KindWSSession}

	s := e.service(func(c *cleanup.Config) { c.WSSessionTTL = ttl })
	r := mustRun(t, s, cleanup.RunOptions{Trigger: "test", DryRun: true, Only: only})
	kr := r.Kinds[cleanup.KindWSSession]
	if kr.Found != 2 || kr.Deleted != 2 || len(kr.Targets) != 2 || kr.Targets[0].Name != racer.ID ||
		kr.Targets[0].Action != cleanup.ActionWouldDelete || kr.Targets[1].Name != expired.ID {
		t.Fatalf("dry run: %+v, want %s and %s (longest detached first) to be deleted", kr, racer.ID, expired.ID)
	}
	if n := count(); n != 4 {
		t.Fatalf("a dry run removed sessions: %d left, want 4", n)
	}
	if a := e.audit(filehub.AuditFilter{Action: filehub.AuditWSSessionExpired}); len(a) != 0 {
		t.Fatalf("a dry run audited %+v", a)
	}

	s = e.service(func(c *cleanup.Config) {
		c.WSSessionTTL = ttl
		c.BeforePhase = func(phase string) error {
			if phase == cleanup.PhaseSessions {
				// The client comes back, to another instance, after the
				// plan.
				if _, err := e.meta.ClaimWSSession(context.Background(), filehub.WSClaim{ID: racer.ID, Owner: "new-owner", KeyID: racer.KeyID, TokenHash: racer.TokenHash}, now); err != nil {
					return err
				}
			}
			return nil
		}
	})
	r = mustRun(t, s, cleanup.RunOptions{Trigger: "test", Only: only})
	kr = r.Kinds[cleanup.KindWSSession]
	if kr.Found != 2 || kr.Deleted != 1 || kr.Skipped != 1 {
		t.Fatalf("run: %+v, want 2 found, %s deleted, %s skipped", kr, expired.ID, racer.ID)
	}
	if _, err := e.meta.ClaimWSSession(ctx, filehub.WSClaim{ID: expired.ID, Owner: "x", KeyID: expired.KeyID, TokenHash: expired.TokenHash}, now); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Fatalf("expired session still stored: %v", err)
	}
	if got, err := e.meta.ClaimWSSession(ctx, filehub.WSClaim{ID: racer.ID, Owner: "x", KeyID: racer.KeyID, TokenHash: racer.TokenHash}, now); err != nil || len(got.Out) != 1 {
		t.Fatalf("the session resumed after the plan: %+v, %v; want it kept with its frame", got, err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d sessions left, want 3", n)
	}
	entries := e.audit(filehub.AuditFilter{Action: filehub.AuditWSSessionExpired})
	if len(entries) != 1 || entries[0].Target != expired.ID || entries[0].TargetKind != filehub.TargetWSSession ||
		!strings.Contains(entries[0].Reason, "k_1") || !strings.Contains(entries[0].Reason, ttl.String()) || entries[0].RunID != r.RunID {
		t.Fatalf("audit %+v, want ws_session.expired of %s naming its key and the TTL", entries, expired.ID)
	}
	if skipped := e.audit(filehub.AuditFilter{Action: filehub.AuditSkipped}); len(skipped) != 1 || skipped[0].Target != racer.ID {
		t.Fatalf("skipped audit %+v, want %s", skipped, racer.ID)
	}

	// Nothing left to expire: the next run finds nothing.
	r = mustRun(t, s, cleanup.RunOptions{Trigger: "test", Only: only})
	if kr := r.Kinds[cleanup.KindWSSession]; kr.Found != 0 || kr.Deleted != 0 {
		t.Fatalf("second run: %+v, want nothing", kr)
	}
}
