// Package testlog gives tests a slog.Logger for the code under test that
// never calls testing.T from the code's goroutines.
//
// A server under test logs from its own goroutines — connection handlers,
// background loops — and some of them outlive a subtest or log while a
// subtest of the test that owns the logger runs. Calling T.Log from there
// races with the testing package's own bookkeeping (golang/go#40343) and
// fails -race runs that test nothing wrong. The logger here writes into a
// bounded in-memory buffer instead; the buffer is printed through T.Log from
// the test's own goroutine at cleanup, when the test failed or -v is on.
package testlog

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// maxKept bounds the memory a chatty test can pin: past it the oldest half
// of the buffer is dropped and the dump says so.
const maxKept = 4 << 20

// New returns a debug-level text logger for t. For benchmarks it discards,
// so logging does not distort the figures, and for fuzz targets too: their
// servers outlive each input and would keep every input's lines.
func New(t testing.TB) *slog.Logger {
	switch t.(type) {
	case *testing.B, *testing.F:
		return slog.New(slog.DiscardHandler)
	}
	b := &buffer{}
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			if out := b.take(); out != "" {
				t.Log("logs of the code under test:\n" + out)
			}
		}
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// buffer is a goroutine-safe, bounded log sink.
type buffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	dropped bool
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len()+len(p) > maxKept {
		keep := b.buf.Bytes()[b.buf.Len()/2:]
		if i := bytes.IndexByte(keep, '\n'); i >= 0 {
			keep = keep[i+1:]
		}
		rest := append([]byte(nil), keep...)
		b.buf.Reset()
		b.buf.Write(rest)
		b.dropped = true
	}
	return b.buf.Write(p)
}

func (b *buffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.buf.String()
	if b.dropped {
		out = "(older lines dropped)\n" + out
	}
	b.buf.Reset()
	b.dropped = false
	return out
}
