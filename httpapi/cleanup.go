package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/cleanup"
)

// Cleanup is what the cleanup and audit routes need of the cleanup service;
// *cleanup.Service implements it. The HTTP layer only borrows cleanup's
// report and settings types, and translates them to package api's at the
// edge (cleanup/wire.go): it never depends on how runs are carried out.
type Cleanup interface {
	// Run runs one cleanup and returns its report, also with an error
	// when the run was refused or failed. ECONFLICT if another run holds
	// the lease or the safety cap tripped without Force; EINVALID for an
	// unknown kind.
	Run(ctx context.Context, opts cleanup.RunOptions) (*cleanup.Report, error)
	// Runs returns the reports of the last runs, newest first.
	Runs(ctx context.Context, last int) ([]*cleanup.Report, error)
	// RunByID returns one run's report, or ENOTFOUND.
	RunByID(ctx context.Context, id int64) (*cleanup.Report, error)
	// Settings returns the settings in effect.
	Settings(ctx context.Context) (cleanup.Settings, error)
	// UpdateSettings validates, stores and audits kv (EINVALID for an
	// unknown key or bad value, storing nothing) and returns the settings
	// in effect.
	UpdateSettings(ctx context.Context, kv map[string]string) (cleanup.Settings, error)
	// Audit returns the audit entries matching filter, in ID order.
	Audit(ctx context.Context, filter filehub.AuditFilter) ([]*filehub.AuditEntry, error)
}

var _ Cleanup = (*cleanup.Service)(nil)

// maxCleanupBody bounds the JSON bodies of the cleanup routes, which are a
// few short fields.
const maxCleanupBody = 64 << 10

// maxRunsLast is the most reports GET /v1/cleanup/runs returns at once.
const maxRunsLast = 1000

// cleanupService returns the configured cleanup service, or ENOTFOUND when
// the server runs without one (the routes exist, so that clients see why).
func (h *Handler) cleanupService() (Cleanup, error) {
	if h.cfg.Cleanup == nil {
		return nil, filehub.Errorf(filehub.ENOTFOUND, "this server has no cleanup service")
	}
	return h.cfg.Cleanup, nil
}

// decodeBody decodes r's JSON body into v. An empty body leaves v alone;
// unknown fields are refused, so that a misspelt "dry_run" cannot start a
// real run.
func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxCleanupBody+1))
	if err != nil {
		return filehub.WrapError(filehub.EINVALID, "cannot read the request body", err)
	}
	if len(b) > maxCleanupBody {
		return filehub.Errorf(filehub.ETOOLARGE, "request body is larger than %d bytes", maxCleanupBody)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return filehub.Errorf(filehub.EINVALID, "bad JSON body: %v", err)
	}
	if dec.More() {
		return filehub.Errorf(filehub.EINVALID, "bad JSON body: more than one value")
	}
	return nil
}

func (h *Handler) cleanupRun(w http.ResponseWriter, r *http.Request) error {
	c, err := h.cleanupService()
	if err != nil {
		return err
	}
	var req api.CleanupRunRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	opts, err := cleanup.RunOptionsFrom(req, "api")
	if err != nil {
		return err
	}
	rep, err := c.Run(r.Context(), opts)
	if err != nil {
		if rep != nil && rep.Status == filehub.RunRefused {
			// The refused run is recorded with every target it would
			// have deleted; say where to find it.
			return filehub.WrapError(filehub.ECONFLICT, fmt.Sprintf("%s (POST again with \"force\": true; run %d lists the targets)",
				filehub.ErrorMessage(err), rep.RunID), err)
		}
		return err
	}
	w.Header().Set("Location", "/v1/cleanup/runs/"+strconv.FormatInt(rep.RunID, 10))
	writeJSON(w, http.StatusCreated, cleanup.ReportWire(rep))
	return nil
}

func (h *Handler) cleanupRuns(w http.ResponseWriter, r *http.Request) error {
	c, err := h.cleanupService()
	if err != nil {
		return err
	}
	last := 10
	if s := r.URL.Query().Get("last"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxRunsLast {
			return filehub.Errorf(filehub.EINVALID, "last must be an integer from 1 to %d", maxRunsLast)
		}
		last = n
	}
	runs, err := c.Runs(r.Context(), last)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.CleanupRuns{Runs: cleanup.ReportsWire(runs)})
	return nil
}

func (h *Handler) cleanupRunByID(w http.ResponseWriter, r *http.Request) error {
	c, err := h.cleanupService()
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return filehub.Errorf(filehub.ENOTFOUND, "cleanup run %q not found", r.PathValue("id"))
	}
	rep, err := c.RunByID(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cleanup.ReportWire(rep))
	return nil
}

func (h *Handler) cleanupConfig(w http.ResponseWriter, r *http.Request) error {
	c, err := h.cleanupService()
	if err != nil {
		return err
	}
	st, err := c.Settings(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cleanup.SettingsWire(st))
	return nil
}

// cleanupConfigPatch changes settings: a JSON object of setting keys to
// values, durations as strings ("24h") and the fraction as a number or a
// string. All or nothing: one bad value stores none.
func (h *Handler) cleanupConfigPatch(w http.ResponseWriter, r *http.Request) error {
	c, err := h.cleanupService()
	if err != nil {
		return err
	}
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if len(body) == 0 {
		return filehub.Errorf(filehub.EINVALID, "the body must be a JSON object of settings, e.g. {\"blob_grace\":\"48h\"}")
	}
	kv := make(map[string]string, len(body))
	for k, v := range body {
		switch v := v.(type) {
		case string:
			kv[k] = v
		case json.Number:
			kv[k] = v.String()
		default:
			return filehub.Errorf(filehub.EINVALID, "setting %q must be a string or a number", k)
		}
	}
	st, err := c.UpdateSettings(r.Context(), kv)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cleanup.SettingsWire(st))
	return nil
}

// audit lists the audit log: since (RFC 3339), action, run_id, after (an
// entry id, for paging) and limit (1–1000, default 100).
func (h *Handler) audit(w http.ResponseWriter, r *http.Request) error {
	c, err := h.cleanupService()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var f filehub.AuditFilter
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return filehub.Errorf(filehub.EINVALID, "since must be an RFC 3339 time such as 2026-11-27T06:00:00Z")
		}
		f.Since = t
	}
	f.Action = strings.TrimSpace(q.Get("action"))
	ints := []struct {
		name string
		p    *int64
	}{{"run_id", &f.RunID}, {"after", &f.AfterID}}
	for _, p := range ints {
		if s := q.Get(p.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				return filehub.Errorf(filehub.EINVALID, "%s must be a non-negative integer", p.name)
			}
			*p.p = n
		}
	}
	f.Limit = 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			return filehub.Errorf(filehub.EINVALID, "limit must be an integer from 1 to %d", maxListLimit)
		}
		f.Limit = n
	}
	entries, err := c.Audit(r.Context(), f)
	if err != nil {
		return err
	}
	page := api.AuditPage{Entries: entries}
	if page.Entries == nil {
		page.Entries = []*filehub.AuditEntry{}
	}
	if len(entries) == f.Limit {
		page.NextAfter = entries[len(entries)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
