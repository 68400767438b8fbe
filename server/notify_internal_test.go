package server

import (
	"context"
	"testing"
	"time"
)

// hubFunc is a hub whose Notify calls a function.
type hubFunc func()

func (f hubFunc) Notify() { f() }

// The services may signal before the hub listens (Run not started yet) and
// in bursts: Notify must never block, and a pending signal reaches the hub
// once it listens.
func TestNotifierNeverBlocksAndDelivers(t *testing.T) {
	n := newNotifier()
	for range 1000 {
		n.Notify() // would block forever if Notify waited for a listener
	}
	woken := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.forward(ctx, hubFunc(func() { woken <- struct{}{} })) }()
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatal("the pending signal did not reach the hub")
	}
	n.Notify()
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatal("a signal sent while forwarding did not reach the hub")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("forward = %v, want nil when its context ends", err)
	}
}
