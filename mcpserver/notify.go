package mcpserver

import (
	"context"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/filehub/filehub"
)

// Run turns the event log into resource notifications until ctx ends:
// resources/updated to the sessions subscribed to a file that is deleted,
// restored or purged, and resources/list_changed to every session when a
// file is created, deleted, restored or purged. Because the events come
// from the durable log, changes made through other transports and other
// instances are reported too. If the backend's feed fails, Run retries
// with backoff, resuming after the last event it handled. It returns nil
// when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	after := int64(-1) // from now
	wait := 250 * time.Millisecond
	for {
		err := s.backend.Watch(ctx, after, func(e *filehub.Event) {
			after = e.ID
			wait = 250 * time.Millisecond
			s.onEvent(ctx, e)
		})
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("MCP event feed failed; retrying", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (s *Server) onEvent(ctx context.Context, e *filehub.Event) {
	if e.File == nil {
		return // cleanup runs and event types this server does not know
	}
	switch e.Type {
	case filehub.EventFileCreated:
	case filehub.EventFileDeleted, filehub.EventFileRestored, filehub.EventFilePurged:
		if err := s.mcp.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: FileURI(e.File.ID)}); err != nil {
			s.log.Warn("MCP resource notification", "err", err)
		}
	default:
		return
	}
	s.metrics.notifications.WithLabelValues(e.Type).Inc()
	s.listChanged()
}
