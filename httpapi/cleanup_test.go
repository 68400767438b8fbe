package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/cleanup"
)

// newCleanupEnv is an env with a cleanup service whose clock runs two days
// ahead, so everything planted is past its default grace period, and whose
// safety cap has no allowance, so that one deletion out of two blobs trips
// it.
func newCleanupEnv(t *testing.T) *env {
	t.Helper()
	return newEnv(t, envConfig{cleanup: &cleanup.Config{
		MinDeleteAllowance: -1,
		Now:                func() time.Time { return time.Now().Add(48 * time.Hour) },
	}})
}

// plantOrphan commits an object with no blob record and returns its sum.
func (e *env) plantOrphan(content string) string {
	e.t.Helper()
	ctx := context.Background()
	st, err := e.blobs.real.Stage(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close(ctx)
	if _, err := io.WriteString(st, content); err != nil {
		e.t.Fatal(err)
	}
	if err := st.Commit(ctx, sum([]byte(content))); err != nil {
		e.t.Fatal(err)
	}
	return sum([]byte(content))
}

func (e *env) keyID(name string) string {
	e.t.Helper()
	k, err := e.meta.FindAPIKeyByHash(context.Background(), filehub.HashAPIKey(e.keys[name]))
	if err != nil {
		e.t.Fatal(err)
	}
	return k.ID
}

func TestCleanupRuns(t *testing.T) {
	e := newCleanupEnv(t)
	e.upload("kept.txt", []byte("kept"))
	orphan := e.plantOrphan("orphan object")

	// A dry run reports the orphan and deletes nothing.
	resp, body := e.do("POST", "/v1/cleanup/runs", keyAdmin, strings.NewReader(`{"dry_run":true,"force":true}`), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("dry run: %d %s", resp.StatusCode, body)
	}
	var rep cleanup.Report
	mustJSON(t, body, &rep)
	kr := rep.Kinds[cleanup.KindOrphanObject]
	if !rep.DryRun || kr == nil || kr.Deleted != 1 || len(kr.Targets) != 1 || kr.Targets[0].SHA256 != orphan ||
		kr.Targets[0].Action != cleanup.ActionWouldDelete {
		t.Fatalf("dry run report = %s", body)
	}
	if len(e.objectSums()) != 2 {
		t.Fatalf("dry run deleted something: objects %v", e.objectSums())
	}

	// One deletion of two blobs is over the cap: 409, nothing deleted,
	// and the problem says how to proceed.
	resp, body = e.do("POST", "/v1/cleanup/runs", keyAdmin, strings.NewReader(`{"only":["orphan_object"]}`), nil)
	p := wantProblem(t, resp, body, http.StatusConflict, filehub.ECONFLICT)
	if !strings.Contains(p.Detail, "safety cap") || !strings.Contains(p.Detail, `"force": true`) {
		t.Errorf("cap problem detail %q does not explain the cap and force", p.Detail)
	}
	if len(e.objectSums()) != 2 {
		t.Fatalf("refused run deleted something: objects %v", e.objectSums())
	}

	// Forced: 201 with the report and its location.
	resp, body = e.do("POST", "/v1/cleanup/runs", keyAdmin, strings.NewReader(`{"force":true,"only":["orphan_object"]}`), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("forced run: %d %s", resp.StatusCode, body)
	}
	rep = cleanup.Report{} // Unmarshal would merge into the old Kinds
	mustJSON(t, body, &rep)
	if kr := rep.Kinds[cleanup.KindOrphanObject]; kr == nil || kr.Deleted != 1 || rep.Status != filehub.RunOK || rep.Trigger != "api" {
		t.Fatalf("forced run report = %s", body)
	}
	if _, only := rep.Kinds[cleanup.KindTrash]; only {
		t.Errorf("run with only orphan_object looked at trash: %s", body)
	}
	if got := e.objectSums(); len(got) != 1 || got[0] == orphan {
		t.Fatalf("objects after the run = %v", got)
	}
	if loc := resp.Header.Get("Location"); loc != fmt.Sprintf("/v1/cleanup/runs/%d", rep.RunID) {
		t.Errorf("Location = %q", loc)
	}

	// The reports: by id and the last ones, newest first.
	resp, body = e.do("GET", fmt.Sprintf("/v1/cleanup/runs/%d", rep.RunID), keyAdmin, nil, nil)
	var got cleanup.Report
	mustJSON(t, body, &got)
	if resp.StatusCode != http.StatusOK || got.RunID != rep.RunID || got.Kinds[cleanup.KindOrphanObject].Deleted != 1 {
		t.Errorf("GET run = %d %s", resp.StatusCode, body)
	}
	resp, body = e.do("GET", "/v1/cleanup/runs?last=2", keyAdmin, nil, nil)
	var runs struct {
		Runs []cleanup.Report `json:"runs"`
	}
	mustJSON(t, body, &runs)
	if resp.StatusCode != http.StatusOK || len(runs.Runs) != 2 || runs.Runs[0].RunID != rep.RunID || runs.Runs[1].Status != filehub.RunRefused {
		t.Errorf("GET runs?last=2 = %d %s", resp.StatusCode, body)
	}

	// The audit log names the key and the run.
	resp, body = e.do("GET", "/v1/audit?action=object.deleted", keyAdmin, nil, nil)
	var page api.AuditPage
	mustJSON(t, body, &page)
	if resp.StatusCode != http.StatusOK || len(page.Entries) != 1 {
		t.Fatalf("GET audit = %d %s", resp.StatusCode, body)
	}
	if a := page.Entries[0]; a.Actor != e.keyID(keyAdmin) || a.RunID != rep.RunID || a.Target != orphan {
		t.Errorf("audit entry = %+v, want actor %s, run %d, target %s", a, e.keyID(keyAdmin), rep.RunID, orphan)
	}
	// The run's clock is two days ahead, so its entries are after an
	// hour from now and none is after three days from now.
	for _, tc := range []struct {
		since time.Duration
		want  bool
	}{{time.Hour, true}, {72 * time.Hour, false}} {
		since := time.Now().Add(tc.since).UTC().Format(time.RFC3339)
		_, body = e.do("GET", "/v1/audit?action=object.deleted&since="+since, keyAdmin, nil, nil)
		mustJSON(t, body, &page)
		if (len(page.Entries) > 0) != tc.want {
			t.Errorf("audit since %s = %s, want entries: %v", since, body, tc.want)
		}
	}
	_, body = e.do("GET", "/v1/audit?limit=1", keyAdmin, nil, nil)
	mustJSON(t, body, &page)
	if len(page.Entries) != 1 || page.NextAfter != page.Entries[0].ID {
		t.Errorf("a full page must give next_after: %s", body)
	}

	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/v1/cleanup/runs", `{"dryrun":true}`, 400, filehub.EINVALID},
		{"POST", "/v1/cleanup/runs", `{"only":["everything"]}`, 400, filehub.EINVALID},
		{"POST", "/v1/cleanup/runs", `{"dry_run":true} {}`, 400, filehub.EINVALID},
		{"GET", "/v1/cleanup/runs?last=0", "", 400, filehub.EINVALID},
		{"GET", "/v1/cleanup/runs/999", "", 404, filehub.ENOTFOUND},
		{"GET", "/v1/cleanup/runs/x", "", 404, filehub.ENOTFOUND},
		{"GET", "/v1/audit?since=yesterday", "", 400, filehub.EINVALID},
		{"GET", "/v1/audit?limit=5000", "", 400, filehub.EINVALID},
		{"GET", "/v1/audit?after=-1", "", 400, filehub.EINVALID},
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.body, func(t *testing.T) {
			var b io.Reader
			if tc.body != "" {
				b = strings.NewReader(tc.body)
			}
			resp, body := e.do(tc.method, tc.path, keyAdmin, b, nil)
			wantProblem(t, resp, body, tc.status, tc.code)
		})
	}
}

func TestCleanupConfig(t *testing.T) {
	e := newCleanupEnv(t)
	resp, body := e.do("GET", "/v1/cleanup/config", keyAdmin, nil, nil)
	var st cleanup.Settings
	mustJSON(t, body, &st)
	if resp.StatusCode != http.StatusOK || time.Duration(st.BlobGrace) != cleanup.DefaultBlobGrace {
		t.Fatalf("GET config = %d %s", resp.StatusCode, body)
	}

	resp, body = e.do("PATCH", "/v1/cleanup/config", keyAdmin, strings.NewReader(`{"blob_grace":"1h","max_delete_fraction":0.5}`), nil)
	mustJSON(t, body, &st)
	if resp.StatusCode != http.StatusOK || time.Duration(st.BlobGrace) != time.Hour || st.MaxDeleteFraction != 0.5 {
		t.Fatalf("PATCH config = %d %s", resp.StatusCode, body)
	}
	// One bad value stores nothing.
	resp, body = e.do("PATCH", "/v1/cleanup/config", keyAdmin, strings.NewReader(`{"blob_grace":"2h","interval":"soon"}`), nil)
	wantProblem(t, resp, body, http.StatusBadRequest, filehub.EINVALID)
	for _, bad := range []string{`{"nope":"1h"}`, `{"blob_grace":true}`, `{}`, ``, `[]`} {
		resp, body = e.do("PATCH", "/v1/cleanup/config", keyAdmin, strings.NewReader(bad), nil)
		wantProblem(t, resp, body, http.StatusBadRequest, filehub.EINVALID)
	}
	_, body = e.do("GET", "/v1/cleanup/config", keyAdmin, nil, nil)
	mustJSON(t, body, &st)
	if time.Duration(st.BlobGrace) != time.Hour {
		t.Errorf("blob_grace after a failed PATCH = %v, want 1h", time.Duration(st.BlobGrace))
	}

	// Each change is audited with the key.
	_, body = e.do("GET", "/v1/audit?action=setting.changed", keyAdmin, nil, nil)
	var page api.AuditPage
	mustJSON(t, body, &page)
	if len(page.Entries) != 2 || page.Entries[0].Actor != e.keyID(keyAdmin) {
		t.Errorf("setting.changed entries = %s", body)
	}
}

// TestNoCleanupService: without a cleanup service the routes exist (auth
// still applies) and say there is none.
func TestNoCleanupService(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, path := range []string{"/v1/cleanup/runs", "/v1/cleanup/config", "/v1/audit"} {
		resp, body := e.do("GET", path, keyAdmin, nil, nil)
		p := wantProblem(t, resp, body, http.StatusNotFound, filehub.ENOTFOUND)
		if !strings.Contains(p.Detail, "no cleanup service") {
			t.Errorf("%s: detail %q", path, p.Detail)
		}
	}
	resp, body := e.do("POST", "/v1/cleanup/runs", keyAdmin, nil, nil)
	wantProblem(t, resp, body, http.StatusNotFound, filehub.ENOTFOUND)
}
