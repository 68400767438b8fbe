package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
)

// CleanupRun runs a cleanup on the server (admin scope) and returns its
// report once it has finished.
//
// Errors: ECONFLICT when another run is in progress, or when the run would
// exceed the safety cap without run.Force (the message says so and names
// the refused run, whose report CleanupRunByID returns); EINVALID for an
// unknown kind; ENOTFOUND when the server has no cleanup service;
// EFORBIDDEN for a key without the admin scope.
func (c *Client) CleanupRun(ctx context.Context, run api.CleanupRunRequest) (*api.CleanupReport, error) {
	body, err := json.Marshal(run)
	if err != nil {
		return nil, filehub.WrapError(filehub.EINVALID, "encode cleanup options", err)
	}
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/cleanup/runs", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	var r api.CleanupReport
	if err := c.doJSON(req, http.StatusCreated, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// CleanupRuns returns the reports of the server's last runs, newest first
// (last <= 0: the server's default of 10).
func (c *Client) CleanupRuns(ctx context.Context, last int) ([]*api.CleanupReport, error) {
	path := "/v1/cleanup/runs"
	if last > 0 {
		path += "?last=" + strconv.Itoa(last)
	}
	var out api.CleanupRuns
	if err := c.getJSON(ctx, path, &out); err != nil {
		return nil, err
	}
	return out.Runs, nil
}

// CleanupRunByID returns the report of one run, or ENOTFOUND.
func (c *Client) CleanupRunByID(ctx context.Context, id int64) (*api.CleanupReport, error) {
	var r api.CleanupReport
	if err := c.getJSON(ctx, "/v1/cleanup/runs/"+strconv.FormatInt(id, 10), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// CleanupSettings returns the cleanup settings in effect on the server.
func (c *Client) CleanupSettings(ctx context.Context) (api.CleanupSettings, error) {
	var st api.CleanupSettings
	err := c.getJSON(ctx, "/v1/cleanup/config", &st)
	return st, err
}

// UpdateCleanupSettings changes cleanup settings on the running server
// (trash_grace, blob_grace, upload_expiry, interval, max_delete_fraction; values like "24h" or "0.1"), persisted
// and audited, and returns the settings in effect. All or nothing: EINVALID
// for an unknown key or a bad value, and then nothing is changed.
func (c *Client) UpdateCleanupSettings(ctx context.Context, kv map[string]string) (api.CleanupSettings, error) {
	body, err := json.Marshal(kv)
	if err != nil {
		return api.CleanupSettings{}, filehub.WrapError(filehub.EINVALID, "encode settings", err)
	}
	req, err := c.newRequest(ctx, http.MethodPatch, "/v1/cleanup/config", bytes.NewReader(body))
	if err != nil {
		return api.CleanupSettings{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	var st api.CleanupSettings
	if err := c.doJSON(req, http.StatusOK, &st); err != nil {
		return api.CleanupSettings{}, err
	}
	return st, nil
}

// Audit returns one page of the server's audit log matching filter, in ID
// order, and the AfterID of the next page (0 on the last page). Pass it
// back as filter.AfterID to continue.
func (c *Client) Audit(ctx context.Context, filter filehub.AuditFilter) ([]*filehub.AuditEntry, int64, error) {
	q := url.Values{}
	if !filter.Since.IsZero() {
		q.Set("since", filter.Since.UTC().Format(time.RFC3339Nano))
	}
	if filter.Action != "" {
		q.Set("action", filter.Action)
	}
	if filter.RunID != 0 {
		q.Set("run_id", strconv.FormatInt(filter.RunID, 10))
	}
	if filter.AfterID != 0 {
		q.Set("after", strconv.FormatInt(filter.AfterID, 10))
	}
	if filter.Limit != 0 {
		q.Set("limit", strconv.Itoa(filter.Limit))
	}
	path := "/v1/audit"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var page api.AuditPage
	if err := c.getJSON(ctx, path, &page); err != nil {
		return nil, 0, err
	}
	return page.Entries, page.NextAfter, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	return c.doJSON(req, http.StatusOK, v)
}
