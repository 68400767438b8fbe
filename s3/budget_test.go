package s3_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/s3"
)

// Many concurrent large uploads (an abusive client, or just load) share one
// budget of part buffers: the bytes the staged blobs hold never exceed
// Config.BufferMemory, uploads beyond it wait instead of allocating, none
// deadlocks (a blob that cannot get a second buffer uploads its parts one
// at a time), every upload's content arrives intact, and a small upload
// started meanwhile completes too.
func TestBufferBudget(t *testing.T) {
	f := newFakeS3(t)
	var peak atomic.Int64
	var store *s3.Store
	// Record the budget in use whenever a part or object arrives: the
	// moments when the most buffers are held.
	f.setIntercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.Method == http.MethodPut && store != nil {
			for {
				cur, p := store.BufferMemoryInUse(), peak.Load()
				if cur <= p || peak.CompareAndSwap(p, cur) {
					break
				}
			}
		}
		return false
	})
	cfg := testConfig()
	cfg.PartSize = s3.MinPartSize
	cfg.BufferMemory = 3 * s3.MinPartSize // one and a half uploads' worth of double buffers
	store = mustOpen(t, f, "", cfg)

	const uploads = 6
	data := make([][]byte, uploads)
	for i := range data {
		data[i] = blobBytes(byte(i+1), 3*s3.MinPartSize+1234) // three full parts and a tail
	}
	var wg sync.WaitGroup
	sums := make([]string, uploads)
	for i := range uploads {
		wg.Go(func() {
			sums[i] = stageCommitErr(t, store, data[i])
		})
	}
	small := []byte("a small upload from another client")
	smallSum := stageCommitErr(t, store, small)
	wg.Wait()

	if p := peak.Load(); p > cfg.BufferMemory || p == 0 {
		t.Errorf("peak buffer memory %d, want within the budget %d (and above 0)", p, cfg.BufferMemory)
	}
	if n := store.BufferMemoryInUse(); n != 0 {
		t.Errorf("buffer memory still held after every upload: %d", n)
	}
	for i, sum := range sums {
		if sum == "" {
			continue // stageCommitErr reported it
		}
		if got := readAll(t, store, sum); !bytes.Equal(got, data[i]) {
			t.Errorf("upload %d: content differs", i)
		}
	}
	if got := readAll(t, store, smallSum); !bytes.Equal(got, small) {
		t.Errorf("small upload: %q", got)
	}
}

// A Write that cannot get a buffer waits, and returns (with an error) when
// its staged blob is closed.
func TestBufferBudgetWaitEndsWithClose(t *testing.T) {
	f := newFakeS3(t)
	cfg := testConfig()
	cfg.PartSize = s3.MinPartSize
	cfg.BufferMemory = s3.MinPartSize
	store := mustOpen(t, f, "", cfg)
	ctx := context.Background()
	holder, err := store.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Write([]byte("x")); err != nil { // takes the whole budget
		t.Fatal(err)
	}
	waiter, err := store.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := waiter.Write([]byte("y"))
		done <- err
	}()
	if err := waiter.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Whether the Write was already waiting (unavailable) or came after
	// the Close (closed), it fails rather than hangs or takes memory.
	if err := <-done; err == nil {
		t.Errorf("Write with the budget spent succeeded")
	}
	if err := holder.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := store.BufferMemoryInUse(); n != 0 {
		t.Errorf("buffer memory held after Close: %d", n)
	}
}

func TestBufferMemoryBelowPartSize(t *testing.T) {
	cfg := testConfig()
	cfg.PartSize = s3.MinPartSize
	cfg.BufferMemory = s3.MinPartSize - 1
	if _, err := s3.Open(context.Background(), "s3://bucket", cfg); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("Open with less buffer memory than a part: %v, want invalid", err)
	}
}

// stageCommitErr stages and commits data, reporting errors with t.Error
// (it runs on other goroutines), and returns the sum ("" on error).
func stageCommitErr(t *testing.T, s *s3.Store, data []byte) string {
	ctx := context.Background()
	b, err := s.Stage(ctx)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer b.Close(ctx)
	if _, err := io.Copy(b, bytes.NewReader(data)); err != nil {
		t.Error(err)
		return ""
	}
	sum := sumOf(data)
	if err := b.Commit(ctx, sum); err != nil {
		t.Error(err)
		return ""
	}
	return sum
}
