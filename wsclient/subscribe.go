package wsclient

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsproto"
)

// subscription is the state of the one running Subscribe.
type subscription struct {
	last atomic.Int64 // highest event id queued for the handler
	ch   chan filehub.Event
	lost chan struct{} // the session was lost: subscribe again
	done chan struct{} // Subscribe returned

	// Guarded by Client.mu.
	callID string // the latest events.subscribe request
	active bool   // a subscribe succeeded: events are ours
}

// offer queues ev for the handler unless it is a duplicate. It reports
// false if the client stopped.
func (s *subscription) offer(ctx context.Context, ev *filehub.Event) bool {
	if ev == nil || ev.ID <= s.last.Load() {
		return true
	}
	select {
	case s.ch <- *ev:
		s.last.Store(ev.ID)
	case <-s.done:
	case <-ctx.Done():
		return false
	}
	return true
}

// Subscribe streams the server's event log: it calls handler with every
// event whose id is greater than after, exactly once and in id order, until
// ctx ends, handler returns an error, or the client stops. It returns that
// error (ctx's error, the handler's, or Err's).
//
// The subscription survives reconnects. If the session is lost (the server
// restarted, or the session expired), Subscribe subscribes again from the
// last event it handed to handler, so the stream has neither gaps nor
// duplicates; events are also de-duplicated by id defensively. If the
// events after the requested id have been trimmed from the server's log,
// Subscribe returns an error matching ErrGap (its message names the oldest
// retained id) rather than skipping them.
//
// Event types the application does not know must be ignored by the handler
// (spec §8). The handler runs on the caller's goroutine; while it runs,
// delivery of everything else the server sends waits, so it should be quick.
// Only one Subscribe may run at a time per client: another returns ECONFLICT.
func (c *Client) Subscribe(ctx context.Context, after int64, handler func(filehub.Event) error) error {
	if after < 0 {
		return filehub.Errorf(filehub.EINVALID, "negative event id %d", after)
	}
	sub := &subscription{
		ch:   make(chan filehub.Event, 64),
		lost: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	sub.last.Store(after)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	if c.sub != nil {
		c.mu.Unlock()
		return filehub.Errorf(filehub.ECONFLICT, "a subscription is already running")
	}
	c.sub = sub
	c.mu.Unlock()
	defer c.endSubscription(sub)

	subscribe := func() (*call, error) {
		cl := c.newCall()
		c.mu.Lock()
		sub.callID = cl.id
		c.mu.Unlock()
		return c.startCallWith(ctx, cl, wsproto.MethodEventsSubscribe, map[string]int64{"after": sub.last.Load()})
	}
	pending, err := subscribe()
	if err != nil {
		return err
	}
	handled := after
	for {
		var resc <-chan callResult
		if pending != nil {
			resc = pending.res
		}
		select {
		case r := <-resc:
			pending = nil
			if errors.Is(r.err, ErrSessionLost) {
				if pending, err = subscribe(); err != nil {
					return err
				}
			} else if r.err != nil {
				return r.err
			}
		case ev := <-sub.ch:
			if ev.ID <= handled {
				continue
			}
			handled = ev.ID
			c.m.eventsDelivered.Inc()
			if err := handler(ev); err != nil {
				return err
			}
		case <-sub.lost:
			// A subscribe still in flight is either failed with
			// ErrSessionLost (handled above) or goes out in the new
			// session; only an established subscription needs renewing.
			if pending == nil {
				if pending, err = subscribe(); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-c.ctx.Done():
			return c.Err()
		}
	}
}

// endSubscription detaches sub and tells the server, without waiting, to
// stop sending events.
func (c *Client) endSubscription(sub *subscription) {
	c.mu.Lock()
	if c.sub == sub {
		c.sub = nil
	}
	running := c.err == nil
	c.mu.Unlock()
	close(sub.done)
	if running {
		// An ended context makes enqueue give up instead of waiting for
		// room: the unsubscribe is a courtesy, events without a subscriber
		// are dropped anyway.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _ = c.startCall(ctx, wsproto.MethodEventsUnsubscribe, struct{}{})
	}
}

// ListResult is a page of files.
type ListResult struct {
	Files      []*filehub.File `json:"files"`
	NextCursor string          `json:"next_cursor"`
}

// ListFiles returns a page of at most limit files (0: the server's default)
// starting at cursor ("" for the first page), with Call's errors.
func (c *Client) ListFiles(ctx context.Context, limit int, cursor string) (*ListResult, error) {
	var res ListResult
	params := map[string]any{"limit": limit, "cursor": cursor}
	if err := c.Call(ctx, wsproto.MethodFilesList, params, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// StatFile returns the file record with the given id; ENOTFOUND if there is
// none.
func (c *Client) StatFile(ctx context.Context, id string) (*filehub.File, error) {
	return c.fileCall(ctx, wsproto.MethodFilesStat, id)
}

// DeleteFile soft-deletes the file and returns its record; ENOTFOUND if no
// live file has that id. Retried after a reconnect, it runs at most once.
func (c *Client) DeleteFile(ctx context.Context, id string) (*filehub.File, error) {
	return c.fileCall(ctx, wsproto.MethodFilesDelete, id)
}

// RestoreFile undoes a soft delete and returns the record; ENOTFOUND if no
// soft-deleted file has that id.
func (c *Client) RestoreFile(ctx context.Context, id string) (*filehub.File, error) {
	return c.fileCall(ctx, wsproto.MethodFilesRestore, id)
}

func (c *Client) fileCall(ctx context.Context, method, id string) (*filehub.File, error) {
	var f filehub.File
	if err := c.Call(ctx, method, map[string]string{"id": id}, &f); err != nil {
		return nil, err
	}
	return &f, nil
}
