package storetest

import (
	"testing"
	"time"

	"github.com/filehub/filehub"
)

// RunInstanceStore runs the filehub.InstanceStore conformance suite against
// the stores returned by newStore (fresh and empty per subtest, as for
// RunMetaStore). It fails at once if the store does not implement
// InstanceStore.
func RunInstanceStore(t *testing.T, newStore func(t *testing.T) filehub.MetaStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s filehub.InstanceStore)
	}{
		{"Empty", testInstanceEmpty},
		{"Heartbeat", testInstanceHeartbeat},
		{"Renew", testInstanceRenew},
		{"Remove", testInstanceRemove},
		{"Invalid", testInstanceInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			is, ok := s.(filehub.InstanceStore)
			if !ok {
				t.Fatalf("%T does not implement filehub.InstanceStore", s)
			}
			tc.fn(t, is)
		})
	}
}

// instanceT0 is the suite's clock: fixed, so the assertions do not depend
// on when the test runs. Microsecond precision is what every backend keeps.
var instanceT0 = time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)

func mustHeartbeat(t *testing.T, s filehub.InstanceStore, id string, at time.Time) {
	t.Helper()
	if err := s.HeartbeatInstance(t.Context(), id, at); err != nil {
		t.Fatalf("HeartbeatInstance(%q, %v): %v", id, at, err)
	}
}

func wantLive(t *testing.T, s filehub.InstanceStore, since time.Time, want int) {
	t.Helper()
	n, err := s.LiveInstances(t.Context(), since)
	if err != nil {
		t.Fatalf("LiveInstances(%v): %v", since, err)
	}
	if n != want {
		t.Errorf("LiveInstances(%v) = %d, want %d", since, n, want)
	}
}

func testInstanceEmpty(t *testing.T, s filehub.InstanceStore) {
	wantLive(t, s, instanceT0.Add(-time.Hour), 0)
	// Removing an instance that never sent a heartbeat is no error.
	if err := s.RemoveInstance(t.Context(), "never"); err != nil {
		t.Errorf("RemoveInstance of an unknown instance: %v", err)
	}
}

// Only heartbeats strictly after since count.
func testInstanceHeartbeat(t *testing.T, s filehub.InstanceStore) {
	mustHeartbeat(t, s, "a", instanceT0)
	mustHeartbeat(t, s, "b", instanceT0.Add(time.Second))
	mustHeartbeat(t, s, "c", instanceT0.Add(2*time.Second))
	wantLive(t, s, instanceT0.Add(-time.Second), 3)
	wantLive(t, s, instanceT0, 2)
	wantLive(t, s, instanceT0.Add(1500*time.Millisecond), 1)
	wantLive(t, s, instanceT0.Add(2*time.Second), 0)
}

// A second heartbeat of one instance moves it, it does not add one.
func testInstanceRenew(t *testing.T, s filehub.InstanceStore) {
	mustHeartbeat(t, s, "a", instanceT0)
	mustHeartbeat(t, s, "b", instanceT0)
	mustHeartbeat(t, s, "a", instanceT0.Add(10*time.Second))
	wantLive(t, s, instanceT0.Add(-time.Second), 2)
	wantLive(t, s, instanceT0.Add(5*time.Second), 1)
	// Heartbeats keep coming while the others' stay old: a live
	// instance keeps counting, a silent one stops.
	for i := range 5 {
		mustHeartbeat(t, s, "a", instanceT0.Add(time.Duration(11+i)*time.Second))
	}
	wantLive(t, s, instanceT0.Add(14*time.Second), 1)
}

// A removed instance no longer counts, the others still do, and it counts
// again if it comes back.
func testInstanceRemove(t *testing.T, s filehub.InstanceStore) {
	mustHeartbeat(t, s, "a", instanceT0)
	mustHeartbeat(t, s, "b", instanceT0)
	if err := s.RemoveInstance(t.Context(), "a"); err != nil {
		t.Fatalf("RemoveInstance: %v", err)
	}
	wantLive(t, s, instanceT0.Add(-time.Second), 1)
	if err := s.RemoveInstance(t.Context(), "a"); err != nil {
		t.Errorf("second RemoveInstance: %v", err)
	}
	mustHeartbeat(t, s, "a", instanceT0.Add(time.Second))
	wantLive(t, s, instanceT0.Add(-time.Second), 2)
}

func testInstanceInvalid(t *testing.T, s filehub.InstanceStore) {
	err := s.HeartbeatInstance(t.Context(), "", instanceT0)
	if filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("HeartbeatInstance with no ID = %v, want EINVALID", err)
	}
	wantLive(t, s, instanceT0.Add(-time.Hour), 0)
}
