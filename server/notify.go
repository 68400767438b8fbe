package server

import "context"

// notifier carries "new events are in the log" from the services that
// write events (files, cleanup) to the WebSocket hub, which is built after
// them because it serves them. It is created before both, so that neither
// refers to a value assigned later: services call Notify, Run forwards to
// the hub. Notify never blocks, and a burst of writes becomes one wake-up
// of the hub, which reads every new event anyway.
type notifier struct{ c chan struct{} }

func newNotifier() *notifier { return &notifier{c: make(chan struct{}, 1)} }

// Notify records that events were written; it never blocks.
func (n *notifier) Notify() {
	select {
	case n.c <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// forward wakes the hubs after each Notify until ctx ends.
func (n *notifier) forward(ctx context.Context, hubs ...interface{ Notify() }) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.c:
			for _, h := range hubs {
				h.Notify()
			}
		}
	}
}
