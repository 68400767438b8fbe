package openai

import (
	"context"
	"time"
)

// SetSleep replaces how c waits between attempts.
func (c *Client) SetSleep(f func(ctx context.Context, d time.Duration) error) { c.sleep = f }

var ParseRetryAfter = parseRetryAfter
