package client

import (
	"context"

	"github.com/filehub/filehub/api"
)

// Stats returns the server's totals: live files and their logical and
// stored (deduplicated) bytes, the trash, and the blob records, counted by
// the server's metadata store in one snapshot (GET /v1/stats, read scope).
func (c *Client) Stats(ctx context.Context) (*api.Stats, error) {
	var st api.Stats
	if err := c.getJSON(ctx, "/v1/stats", &st); err != nil {
		return nil, err
	}
	return &st, nil
}
