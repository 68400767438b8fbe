package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/filehub/filehub/api"
)

// Push makes sure the content of file id exists at the provider named
// provider and returns the provider's file ID, and whether the provider
// already had the content (Reused). Returns ENOTFOUND for an unknown
// provider or file, ETOOLARGE for a file over the provider's limit, and
// the provider's error (its status and message in the error's message) if
// the upload fails. Needs a key with the write scope.
func (c *Client) Push(ctx context.Context, id, provider string) (*api.PushResult, error) {
	req, err := c.newRequest(ctx, http.MethodPost, filePath(id)+"/providers/"+url.PathEscape(provider), nil)
	if err != nil {
		return nil, err
	}
	var res api.PushResult
	if err := c.doJSON(req, http.StatusOK, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
