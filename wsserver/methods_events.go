package wsserver

import (
	"context"
	"strconv"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/wsproto"
)

// The events.* methods: the live event stream, which has no HTTP
// equivalent. They change the session's subscription, which request
// applies together with queueing the res.

func (ss *session) eventsSubscribe(ctx context.Context, p *api.EventsSubscribeRequest) (any, *subscription, error) {
	after := int64(0)
	if p.After != nil {
		after = *p.After
	}
	if after < 0 {
		return nil, nil, filehub.Errorf(filehub.EINVALID, "params.after must not be negative")
	}
	oldest, latest, err := ss.srv.store.EventBounds(ctx)
	if err != nil {
		return nil, nil, err
	}
	// "after": 0 means "from the oldest retained event": never a gap.
	if after > 0 && after+1 < oldest {
		return nil, nil, &rpcError{wsproto.CodeGap,
			"events after " + strconv.FormatInt(after, 10) + " have been trimmed; the oldest retained event is " + strconv.FormatInt(oldest, 10)}
	}
	return api.EventsSubscribeResult{After: after, Oldest: oldest, Latest: latest},
		// The cursor skips what was trimmed before the oldest retained
		// event, so that catching up does not mistake it for a gap.
		&subscription{on: true, after: max(after, oldest-1), latest: latest}, nil
}

func (ss *session) eventsUnsubscribe(context.Context, *api.Empty) (any, *subscription, error) {
	return api.Empty{}, &subscription{on: false}, nil
}
