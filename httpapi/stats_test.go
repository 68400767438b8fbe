package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/httpapi"
	"github.com/filehub/filehub/internal/testlog"
)

func TestStats(t *testing.T) {
	e := newEnv(t, envConfig{})
	get := func() api.Stats {
		t.Helper()
		resp, body := e.do("GET", "/v1/stats", keyRead, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/stats: %d %s", resp.StatusCode, body)
		}
		var st api.Stats
		mustJSON(t, body, &st)
		if st.Time.IsZero() || time.Since(st.Time) > time.Hour {
			t.Errorf("time = %v", st.Time)
		}
		st.Time = time.Time{}
		return st
	}
	if got := get(); got != (api.Stats{}) {
		t.Errorf("an empty server: %+v", got)
	}

	e.upload("a.txt", []byte("same content"))
	e.upload("b.txt", []byte("same content"))
	gone := e.upload("c.txt", []byte("other"))
	if resp, body := e.do("DELETE", "/v1/files/"+gone.ID, keyWrite, nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	want := api.Stats{
		StorageStats: filehub.StorageStats{
			Files: 2, LogicalBytes: 24, StoredBytes: 12, TrashFiles: 1, TrashBytes: 5,
			Blobs: 2, BlobBytes: 17,
		},
		DedupSavingsBytes: 12,
	}
	if got := get(); got != want {
		t.Errorf("after two copies and a delete:\n got %+v\nwant %+v", got, want)
	}

	resp, body := e.do("GET", "/v1/stats", keyMetrics, nil, nil)
	wantProblem(t, resp, body, http.StatusForbidden, filehub.EFORBIDDEN)
}

// hiddenStats is a MetaStore without the StatsReader capability.
type hiddenStats struct{ filehub.MetaStore }

func TestStatsWithoutCapability(t *testing.T) {
	e := newEnv(t, envConfig{})
	svc, err := files.New(hiddenStats{e.meta}, e.blobs, files.Config{MinFreeSpace: -1, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.New(svc, e.meta, httpapi.Config{Logger: testlog.New(t)})
	req := httptest.NewRequest("GET", "/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer "+e.keys[keyRead])
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	wantProblem(t, rec.Result(), rec.Body.Bytes(), http.StatusNotFound, filehub.ENOTFOUND)
}
