package citest

import "testing"

func TestIsTrue(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "1": true, "TRUE": true, "yes": true, " true ": true,
		"": false, "false": false, "0": false, "no": false, "garbage": false} {
		if got := isTrue(v); got != want {
			t.Errorf("isTrue(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestUnconfiguredFailsInCI runs Unconfigured in a subtest with CI set and
// checks that it failed rather than skipped.
func TestUnconfiguredFailsInCI(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{{"true", true}, {"1", true}, {"", false}, {"false", false}} {
		t.Setenv("CI", tc.ci)
		ft := &fakeTB{}
		func() {
			defer func() { recover() }() // Fatalf/Skip stop with runtime.Goexit in testing; here they panic
			Unconfigured(ft, "no database")
		}()
		if ft.failed != tc.wantFail || ft.skipped == tc.wantFail {
			t.Errorf("CI=%q: failed %v, skipped %v; want failed %v", tc.ci, ft.failed, ft.skipped, tc.wantFail)
		}
	}
}

type fakeTB struct {
	testing.TB
	failed, skipped bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(string, ...any) {
	f.failed = true
	panic("fatal")
}
func (f *fakeTB) Skip(...any) {
	f.skipped = true
	panic("skip")
}
