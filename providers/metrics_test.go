package providers_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/fakeprovider"
	"github.com/filehub/filehub/openai"
	"github.com/filehub/filehub/providers"
)

// TestMetrics pushes through a fresh registry shared by the service and
// the provider's client, as serve wires them, and reads every
// filehub_provider_* series back.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, providers.Config{Registerer: reg}, func(c *openai.Config) {
		c.Registerer = reg
		c.FileQuota = 1000
		c.MaxFileSize = 64
	})

	a := e.upload(t, "alpha content")
	e.push(t, a.ID)
	e.push(t, a.ID) // reused
	// One 500 retried, then a 429 and a 400 that fails the push.
	e.fp.Inject("POST /files", fakeprovider.Fault{Status: 500}, fakeprovider.Fault{Status: 429, RetryAfter: "0"}, fakeprovider.Fault{Status: 400})
	b := e.upload(t, "beta")
	_, err := e.svc.Push(t.Context(), b.ID, "test")
	wantCode(t, err, filehub.EINVALID)
	big := e.upload(t, strings.Repeat("x", 100))
	_, err = e.svc.Push(t.Context(), big.ID, "test")
	wantCode(t, err, filehub.ETOOLARGE)
	_, err = e.svc.Push(t.Context(), a.ID, "no-such-provider")
	wantCode(t, err, filehub.ENOTFOUND)
	e.svc.SetProviderFiles("test", 42)
	e.svc.SetProviderFiles("no-such-provider", 7) // ignored: no label from input

	for _, tc := range []struct {
		metric string
		labels []string
		want   float64
	}{
		{"filehub_provider_pushes_total", []string{"test", "uploaded"}, 1},
		{"filehub_provider_pushes_total", []string{"test", "reused"}, 1},
		{"filehub_provider_pushes_total", []string{"test", filehub.EINVALID}, 1},
		{"filehub_provider_pushes_total", []string{"test", filehub.ETOOLARGE}, 1},
		{"filehub_provider_pushes_total", []string{"unknown", filehub.ENOTFOUND}, 1},
		{"filehub_provider_reuses_total", []string{"test"}, 1},
		{"filehub_provider_uploaded_bytes_total", []string{"test"}, float64(len("alpha content"))},
		{"filehub_provider_files", []string{"test"}, 42},
		{"filehub_provider_file_quota", []string{"test"}, 1000},
		{"filehub_provider_api_errors_total", []string{"test", "500"}, 1},
		{"filehub_provider_api_errors_total", []string{"test", "429"}, 1},
		{"filehub_provider_api_errors_total", []string{"test", "400"}, 1},
	} {
		if got := metricValue(t, reg, tc.metric, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.metric, tc.labels, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(reg, "filehub_provider_files"); n != 1 {
		t.Errorf("filehub_provider_files has %d series, want 1", n)
	}
}

// TestMetricsSharedRegistry checks that several clients register on one
// registry, as serve does with one client per provider.
func TestMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, name := range []string{"kimi", "glm"} {
		cfg := openai.ConfigFor(name)
		cfg.APIKey, cfg.Registerer = "sk", reg
		if _, err := openai.New(cfg); err != nil {
			t.Fatalf("New(%s): %v", name, err)
		}
	}
}

// metricValue returns the value of the series of name with the label
// values labels (in the collector's order), failing if there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels []string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for i, lp := range m.GetLabel() {
				if lp.GetValue() != labels[i] {
					continue series
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}
