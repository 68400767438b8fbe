package files_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/filehub/filehub/files"
)

// gauge returns the value of the unlabelled gauge name in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s is not exported", name)
	return 0
}

// TestHealthMetrics: readiness and free space are exported for alerts, and
// follow the floor: a floor above the disk's free space makes the server
// not ready.
func TestHealthMetrics(t *testing.T) {
	e := newEnv(t, files.Config{}, nil) // floor disabled
	if got := gauge(t, e.reg, "filehub_ready"); got != 1 {
		t.Errorf("filehub_ready = %v without a floor, want 1", got)
	}
	if got := gauge(t, e.reg, "filehub_storage_min_free_bytes"); got != 0 {
		t.Errorf("filehub_storage_min_free_bytes = %v with the floor disabled, want 0", got)
	}
	if got := gauge(t, e.reg, "filehub_storage_free_bytes"); !(got > 0) {
		t.Errorf("filehub_storage_free_bytes = %v, want the disk's free space", got)
	}

	const floor = 1 << 62 // more than any test machine's disk
	e = newEnv(t, files.Config{MinFreeSpace: floor}, nil)
	if got := gauge(t, e.reg, "filehub_ready"); got != 0 {
		t.Errorf("filehub_ready = %v below the floor, want 0", got)
	}
	if got := gauge(t, e.reg, "filehub_storage_min_free_bytes"); got != floor {
		t.Errorf("filehub_storage_min_free_bytes = %v, want %v", got, float64(floor))
	}
}
