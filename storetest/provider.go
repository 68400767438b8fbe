package storetest

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filehub/filehub"
)

// RunProviderStore runs the filehub.ProviderStore conformance suite against
// the stores returned by newStore (fresh and empty per subtest, as for
// RunMetaStore). It fails at once if the store does not implement
// ProviderStore.
func RunProviderStore(t *testing.T, newStore func(t *testing.T) filehub.MetaStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, p filehub.ProviderStore)
	}{
		{"ClaimComplete", testProviderClaimComplete},
		{"ClaimConcurrent", testProviderClaimConcurrent},
		{"ClaimExpired", testProviderClaimExpired},
		{"CompleteAfterTakeover", testProviderCompleteAfterTakeover},
		{"Touch", testProviderTouch},
		{"Delete", testProviderDelete},
		{"Keys", testProviderKeys},
		{"NotFound", testProviderNotFound},
		{"Invalid", testProviderInvalid},
		{"List", testProviderList},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			p, ok := s.(filehub.ProviderStore)
			if !ok {
				t.Fatalf("%T does not implement filehub.ProviderStore", s)
			}
			tc.fn(t, p)
		})
	}
}

// claimTTL is the suite's claim TTL.
const claimTTL = time.Minute

func providerKey(content string) filehub.ProviderKey {
	h := sha256.Sum256([]byte(content))
	return filehub.ProviderKey{SHA256: hex.EncodeToString(h[:]), Provider: "kimi", Purpose: "file-extract"}
}

func mustClaim(t *testing.T, p filehub.ProviderStore, k filehub.ProviderKey, claimID string, now time.Time) (*filehub.ProviderMapping, bool) {
	t.Helper()
	m, claimed, err := p.ClaimProviderMapping(t.Context(), k, 42, claimID, now, claimTTL)
	if err != nil {
		t.Fatalf("ClaimProviderMapping(%s): %v", claimID, err)
	}
	return m, claimed
}

func testProviderClaimComplete(t *testing.T, p filehub.ProviderStore) {
	ctx := t.Context()
	k := providerKey("claim")
	m, claimed := mustClaim(t, p, k, "c1", metaEpoch)
	if !claimed || m.State != filehub.MappingPending || m.ClaimID != "c1" || m.Key() != k ||
		!m.ClaimedAt.Equal(metaEpoch) || m.Size != 42 || m.ProviderFileID != "" || m.VerifiedAt != nil {
		t.Fatalf("first claim = %+v, %v; want pending under c1 at %v", m, claimed, metaEpoch)
	}
	// The same push claiming again (a retried request) keeps its claim.
	if _, claimed := mustClaim(t, p, k, "c1", metaEpoch.Add(time.Second)); !claimed {
		t.Error("the holder's second claim lost")
	}
	// Another push does not get a fresh claim.
	m, claimed = mustClaim(t, p, k, "c2", metaEpoch.Add(2*time.Second))
	if claimed || m.ClaimID != "c1" || m.State != filehub.MappingPending {
		t.Errorf("claim of a held key = %+v, %v; want c1's pending mapping, false", m, claimed)
	}

	at := metaEpoch.Add(3 * time.Second)
	done, err := p.CompleteProviderMapping(ctx, k, "c1", "file-abc", at)
	if err != nil {
		t.Fatalf("CompleteProviderMapping: %v", err)
	}
	if done.State != filehub.MappingReady || done.ProviderFileID != "file-abc" ||
		done.VerifiedAt == nil || !done.VerifiedAt.Equal(at) || done.LastUsedAt == nil || !done.LastUsedAt.Equal(at) {
		t.Errorf("completed = %+v; want ready as file-abc, verified and used at %v", done, at)
	}
	got, err := p.FindProviderMapping(ctx, k)
	if err != nil {
		t.Fatalf("FindProviderMapping: %v", err)
	}
	if got.State != filehub.MappingReady || got.ProviderFileID != "file-abc" || got.Size != 42 {
		t.Errorf("found %+v", got)
	}
	// A ready mapping is never claimed, not even long after.
	m, claimed = mustClaim(t, p, k, "c3", at.Add(24*time.Hour))
	if claimed || m.State != filehub.MappingReady || m.ProviderFileID != "file-abc" {
		t.Errorf("claim of a ready mapping = %+v, %v; want it unchanged, false", m, claimed)
	}
	// Completing twice is a conflict: the claim is spent.
	if _, err := p.CompleteProviderMapping(ctx, k, "c1", "file-other", at); filehub.ErrorCode(err) != filehub.ECONFLICT {
		t.Errorf("second CompleteProviderMapping = %v, want ECONFLICT", err)
	}
}

func testProviderClaimConcurrent(t *testing.T, p filehub.ProviderStore) {
	const n = 50
	k := providerKey("concurrent")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		errs    []error
	)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("c%02d", i)
			_, claimed, err := p.ClaimProviderMapping(t.Context(), k, 42, id, metaEpoch, claimTTL)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if claimed {
				winners = append(winners, id)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d claims failed, the first: %v", len(errs), errs[0])
	}
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent claims won (%v), want exactly 1", len(winners), n, winners)
	}
	m, err := p.FindProviderMapping(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	if m.ClaimID != winners[0] {
		t.Errorf("the mapping is claimed by %q, the winner was %q", m.ClaimID, winners[0])
	}
}

func testProviderClaimExpired(t *testing.T, p filehub.ProviderStore) {
	k := providerKey("expired")
	mustClaim(t, p, k, "crashed", metaEpoch)
	// Just before the TTL ends the claim holds.
	if m, claimed := mustClaim(t, p, k, "c2", metaEpoch.Add(claimTTL-time.Microsecond)); claimed || m.ClaimID != "crashed" {
		t.Errorf("claim before expiry = %+v, %v; want the old claim kept", m, claimed)
	}
	later := metaEpoch.Add(claimTTL)
	m, claimed := mustClaim(t, p, k, "c2", later)
	if !claimed || m.ClaimID != "c2" || !m.ClaimedAt.Equal(later) || m.State != filehub.MappingPending {
		t.Errorf("claim at expiry = %+v, %v; want taken over by c2 at %v", m, claimed, later)
	}
}

func testProviderCompleteAfterTakeover(t *testing.T, p filehub.ProviderStore) {
	ctx := t.Context()
	k := providerKey("takeover")
	mustClaim(t, p, k, "slow", metaEpoch)
	mustClaim(t, p, k, "fast", metaEpoch.Add(2*claimTTL))
	if _, err := p.CompleteProviderMapping(ctx, k, "slow", "file-slow", metaEpoch.Add(3*claimTTL)); filehub.ErrorCode(err) != filehub.ECONFLICT {
		t.Errorf("Complete by the expired claim = %v, want ECONFLICT", err)
	}
	if _, err := p.CompleteProviderMapping(ctx, k, "fast", "file-fast", metaEpoch.Add(3*claimTTL)); err != nil {
		t.Fatalf("Complete by the new claim: %v", err)
	}
	m, err := p.FindProviderMapping(ctx, k)
	if err != nil || m.ProviderFileID != "file-fast" {
		t.Errorf("FindProviderMapping = %+v, %v; want file-fast", m, err)
	}
}

func testProviderTouch(t *testing.T, p filehub.ProviderStore) {
	ctx := t.Context()
	k := providerKey("touch")
	mustClaim(t, p, k, "c1", metaEpoch)
	if err := p.TouchProviderMapping(ctx, k, metaEpoch, metaEpoch); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("Touch of a pending mapping = %v, want ENOTFOUND", err)
	}
	if _, err := p.CompleteProviderMapping(ctx, k, "c1", "file-t", metaEpoch); err != nil {
		t.Fatal(err)
	}
	used := metaEpoch.Add(time.Hour)
	if err := p.TouchProviderMapping(ctx, k, time.Time{}, used); err != nil {
		t.Fatalf("Touch(used): %v", err)
	}
	verified := metaEpoch.Add(2 * time.Hour)
	if err := p.TouchProviderMapping(ctx, k, verified, time.Time{}); err != nil {
		t.Fatalf("Touch(verified): %v", err)
	}
	m, err := p.FindProviderMapping(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if m.VerifiedAt == nil || !m.VerifiedAt.Equal(verified) || m.LastUsedAt == nil || !m.LastUsedAt.Equal(used) {
		t.Errorf("after touches verified %v used %v; want %v and %v", m.VerifiedAt, m.LastUsedAt, verified, used)
	}
}

func testProviderDelete(t *testing.T, p filehub.ProviderStore) {
	ctx := t.Context()
	k := providerKey("delete")
	pending, _ := mustClaim(t, p, k, "c1", metaEpoch)
	ready, err := p.CompleteProviderMapping(ctx, k, "c1", "file-d", metaEpoch)
	if err != nil {
		t.Fatal(err)
	}
	// What was read before the completion no longer matches.
	if deleted, err := p.DeleteProviderMapping(ctx, pending); err != nil || deleted {
		t.Errorf("Delete of a stale pending view = %v, %v; want false, nil", deleted, err)
	}
	other := *ready
	other.ProviderFileID = "file-other"
	if deleted, err := p.DeleteProviderMapping(ctx, &other); err != nil || deleted {
		t.Errorf("Delete naming another provider file = %v, %v; want false, nil", deleted, err)
	}
	if deleted, err := p.DeleteProviderMapping(ctx, ready); err != nil || !deleted {
		t.Fatalf("Delete of the ready mapping = %v, %v; want true, nil", deleted, err)
	}
	if _, err := p.FindProviderMapping(ctx, k); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("Find after delete = %v, want ENOTFOUND", err)
	}
	// A deleted key can be claimed afresh (the 404 re-upload path), and a
	// claim can be given up (a failed upload).
	m, claimed := mustClaim(t, p, k, "c2", metaEpoch)
	if !claimed {
		t.Fatal("claim after delete lost")
	}
	if deleted, err := p.DeleteProviderMapping(ctx, m); err != nil || !deleted {
		t.Errorf("release of a claim = %v, %v; want true, nil", deleted, err)
	}
	if deleted, err := p.DeleteProviderMapping(ctx, m); err != nil || deleted {
		t.Errorf("second release = %v, %v; want false, nil", deleted, err)
	}
}

func testProviderKeys(t *testing.T, p filehub.ProviderStore) {
	// Provider and purpose are part of the key: each has its own mapping.
	base := providerKey("keys")
	otherProvider, otherPurpose := base, base
	otherProvider.Provider = "glm"
	otherPurpose.Purpose = "assistants"
	for i, k := range []filehub.ProviderKey{base, otherProvider, otherPurpose} {
		if _, claimed := mustClaim(t, p, k, fmt.Sprint("c", i), metaEpoch); !claimed {
			t.Errorf("claim of %+v lost: keys differing in provider or purpose collide", k)
		}
	}
}

func testProviderNotFound(t *testing.T, p filehub.ProviderStore) {
	ctx := t.Context()
	k := providerKey("missing")
	if _, err := p.FindProviderMapping(ctx, k); !errors.Is(err, filehub.ErrNotFound) {
		t.Errorf("FindProviderMapping = %v, want ENOTFOUND", err)
	}
	if _, err := p.CompleteProviderMapping(ctx, k, "c1", "file-x", metaEpoch); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("CompleteProviderMapping = %v, want ENOTFOUND", err)
	}
	if err := p.TouchProviderMapping(ctx, k, metaEpoch, metaEpoch); filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("TouchProviderMapping = %v, want ENOTFOUND", err)
	}
	m := &filehub.ProviderMapping{ProviderKey: k, State: filehub.MappingReady, ProviderFileID: "file-x"}
	if deleted, err := p.DeleteProviderMapping(ctx, m); err != nil || deleted {
		t.Errorf("DeleteProviderMapping = %v, %v; want false, nil", deleted, err)
	}
}

func testProviderInvalid(t *testing.T, p filehub.ProviderStore) {
	ctx := t.Context()
	good := providerKey("invalid")
	for name, k := range map[string]filehub.ProviderKey{
		"bad sum":     {SHA256: "abc", Provider: "kimi", Purpose: "file-extract"},
		"no provider": {SHA256: good.SHA256, Purpose: "file-extract"},
		"no purpose":  {SHA256: good.SHA256, Provider: "kimi"},
	} {
		if _, _, err := p.ClaimProviderMapping(ctx, k, 1, "c1", metaEpoch, claimTTL); filehub.ErrorCode(err) != filehub.EINVALID {
			t.Errorf("%s: Claim = %v, want EINVALID", name, err)
		}
	}
	if _, _, err := p.ClaimProviderMapping(ctx, good, 1, "", metaEpoch, claimTTL); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("Claim without a claim ID = %v, want EINVALID", err)
	}
}

func testProviderList(t *testing.T, p filehub.ProviderStore) {
	ctx := t.Context()
	got, err := p.ListProviderMappings(ctx, filehub.ProviderKey{}, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("ListProviderMappings of an empty store = %v, %v; want none", got, err)
	}
	var want []filehub.ProviderKey
	for i := range 5 {
		for _, prov := range []string{"glm", "kimi"} {
			k := providerKey(fmt.Sprintf("list %d", i))
			k.Provider = prov
			m, _ := mustClaim(t, p, k, "c-"+prov, metaEpoch)
			if i%2 == 0 {
				if _, err := p.CompleteProviderMapping(ctx, k, m.ClaimID, "file-"+prov, metaEpoch); err != nil {
					t.Fatal(err)
				}
			}
			want = append(want, k)
		}
	}
	slices.SortFunc(want, func(a, b filehub.ProviderKey) int {
		return cmp.Or(strings.Compare(a.SHA256, b.SHA256), strings.Compare(a.Provider, b.Provider), strings.Compare(a.Purpose, b.Purpose))
	})
	// Pages of 3 must give every mapping once, in key order.
	var keys []filehub.ProviderKey
	after := filehub.ProviderKey{}
	for {
		page, err := p.ListProviderMappings(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			keys = append(keys, m.Key())
			if m.State == filehub.MappingReady && m.ProviderFileID != "file-"+m.Provider {
				t.Errorf("listed %+v: wrong provider file ID", m)
			}
		}
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].Key()
	}
	if !slices.Equal(keys, want) {
		t.Errorf("listed keys\n%v\nwant\n%v", keys, want)
	}
}
