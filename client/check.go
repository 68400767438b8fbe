package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
)

// Check runs the server's consistency check (admin scope) and returns its
// report once it has finished; what it found is in the report
// (api.CheckReport.OK), not in the error. With req.ReadData it reads every
// object, which can take long: give ctx a deadline that allows for it.
//
// Errors: ECONFLICT while another check runs; EINVALID for a bad
// read_data_subset; ENOTFOUND when the server has no check; EFORBIDDEN
// for a key without the admin scope.
func (c *Client) Check(ctx context.Context, req api.CheckRequest) (*api.CheckReport, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, filehub.WrapError(filehub.EINVALID, "encode check options", err)
	}
	r, err := c.newRequest(ctx, http.MethodPost, "/v1/check", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/json")
	var rep api.CheckReport
	if err := c.doJSON(r, http.StatusOK, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}
