package testlog

import (
	"strings"
	"sync"
	"testing"
)

func TestBufferIsBoundedAndKeepsTheNewestLines(t *testing.T) {
	b := &buffer{}
	line := strings.Repeat("x", 1023) + "\n"
	for range 3 * maxKept / len(line) {
		b.Write([]byte(line))
	}
	b.Write([]byte("last\n"))
	out := b.take()
	if len(out) > maxKept+100 {
		t.Fatalf("kept %d bytes, bound is %d", len(out), maxKept)
	}
	if !strings.HasPrefix(out, "(older lines dropped)\n") || !strings.HasSuffix(out, "last\n") {
		t.Fatalf("dump starts %q and ends %q", out[:30], out[len(out)-10:])
	}
	if b.take() != "" {
		t.Fatal("take did not empty the buffer")
	}
}

// TestLoggingFromGoroutinesDuringSubtests is the pattern that raced with
// T.Log: a goroutine logs through the parent's logger while subtests run.
func TestLoggingFromGoroutinesDuringSubtests(t *testing.T) {
	log := New(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				log.Debug("background")
			}
		}
	}()
	for _, name := range []string{"a", "b", "c"} {
		t.Run(name, func(t *testing.T) { log.Info("in subtest", "name", name) })
	}
	close(stop)
	wg.Wait()
}
