package auth_test

import (
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/filehub/filehub/auth"
)

// wantLimiter checks a limiter's rate, burst and tokens now (synctest's
// clock stands still while the test runs, so tokens are exact).
func wantLimiter(t *testing.T, name string, lim *rate.Limiter, limit float64, burst int, tokens float64) {
	t.Helper()
	if got := float64(lim.Limit()); math.Abs(got-limit) > 1e-9 {
		t.Errorf("%s: limit %g, want %g", name, got, limit)
	}
	if got := lim.Burst(); got != burst {
		t.Errorf("%s: burst %d, want %d", name, got, burst)
	}
	if got := lim.Tokens(); math.Abs(got-tokens) > 1e-9 {
		t.Errorf("%s: %g tokens, want %g", name, got, tokens)
	}
}

// SetShare rescales the limiters there are and those made later; a
// bucket keeps its fraction when the share shrinks and its tokens when it
// grows.
func TestLimitersShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := auth.NewLimiters(30, 60, 100)
		full, half, empty := ls.Get("full"), ls.Get("half"), ls.Get("empty")
		half.AllowN(time.Now(), 30)
		empty.AllowN(time.Now(), 60)
		if ls.Share() != 1 {
			t.Fatalf("Share() = %d before SetShare, want 1", ls.Share())
		}

		// 1 → 3 instances.
		ls.SetShare(3)
		if ls.Share() != 3 {
			t.Errorf("Share() = %d, want 3", ls.Share())
		}
		wantLimiter(t, "full", full, 10, 20, 20)
		wantLimiter(t, "half", half, 10, 20, 10)
		wantLimiter(t, "empty", empty, 10, 20, 0)
		wantLimiter(t, "new", ls.Get("new"), 10, 20, 20)
		if got := ls.Get("full"); got != full {
			t.Errorf("SetShare replaced a limiter: callers holding it would escape the share")
		}
		// An emptied bucket refills at the share's rate.
		time.Sleep(time.Second)
		wantLimiter(t, "empty a second later", empty, 10, 20, 10)

		// 3 → 1: tokens kept, the configured rate and burst back.
		ls.SetShare(1)
		wantLimiter(t, "half back at 1", half, 30, 60, 20)
		wantLimiter(t, "new back at 1", ls.Get("new"), 30, 60, 20)
		time.Sleep(time.Second)
		wantLimiter(t, "half a second later", half, 30, 60, 50)
		wantLimiter(t, "another", ls.Get("another"), 30, 60, 60)
	})
}

// A share never leaves a key without a burst of 1, and a share below 1
// means this instance alone.
func TestLimitersShareBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := auth.NewLimiters(4, 8, 100)
		ls.SetShare(100)
		lim := ls.Get("k")
		wantLimiter(t, "share 100", lim, 0.04, 1, 1)
		if !lim.Allow() || lim.Allow() {
			t.Errorf("share 100: want one request, then a refusal")
		}
		for _, n := range []int{0, -3} {
			ls.SetShare(n)
			if ls.Share() != 1 {
				t.Errorf("SetShare(%d): Share() = %d, want 1", n, ls.Share())
			}
			wantLimiter(t, fmt.Sprintf("SetShare(%d)", n), ls.Get("fresh"), 4, 8, 8)
		}
	})
}

// Eviction tells idle limiters from busy ones by the share's burst: a
// bucket refilled to the share's burst is idle, and busy ones survive.
func TestLimitersEvictAfterShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := auth.NewLimiters(30, 60, 4)
		ls.SetShare(3)
		ls.Get("idle1")
		ls.Get("idle2")
		ls.Get("busy1").AllowN(time.Now(), 20)
		ls.Get("busy2").AllowN(time.Now(), 20)
		ls.Get("new")
		for _, k := range []string{"busy1", "busy2", "new"} {
			if ls.Peek(k) == nil {
				t.Errorf("limiter %s was evicted", k)
			}
		}
		for _, k := range []string{"idle1", "idle2"} {
			if ls.Peek(k) != nil {
				t.Errorf("idle limiter %s was kept", k)
			}
		}
	})
}
