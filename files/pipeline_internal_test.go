package files

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

// runPipeline copies body through a new pipeline and returns how many
// chunks it held.
func runPipeline(t *testing.T, body []byte) int {
	t.Helper()
	p := newPipeline()
	defer p.release()
	r := bytes.NewReader(body)
	n, eof, err := readChunk(t.Context(), r, *p.bufs[0])
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	total, err := p.run(t.Context(), r, &out, sha256.New(), n, eof)
	if err != nil || total != int64(len(body)) || !bytes.Equal(out.Bytes(), body) {
		t.Fatalf("run = %d, %v; copied %d of %d bytes", total, err, out.Len(), len(body))
	}
	return len(p.bufs)
}

// TestPipelineChunkBudget: a body that fits in one chunk takes one; a
// longer one takes the full depth while the shared budget lasts and the
// minimum once it is spent, and gives its spare chunks' tokens back.
func TestPipelineChunkBudget(t *testing.T) {
	if got := runPipeline(t, make([]byte, 100)); got != 1 {
		t.Errorf("a small body held %d chunks, want 1", got)
	}
	large := bytes.Repeat([]byte("0123456789abcdef"), 40_000) // 10 chunks
	if got := runPipeline(t, large); got != pipelineDepth {
		t.Errorf("with the budget free a large body held %d chunks, want %d", got, pipelineDepth)
	}
	if n := len(spareChunks); n != 0 {
		t.Fatalf("%d spare-chunk tokens still taken after the uploads", n)
	}

	// Spend the budget, as many concurrent uploads would.
	for range cap(spareChunks) {
		spareChunks <- struct{}{}
	}
	got := runPipeline(t, large)
	for range cap(spareChunks) {
		<-spareChunks
	}
	if got != minPipelineDepth {
		t.Errorf("with the budget spent a large body held %d chunks, want %d", got, minPipelineDepth)
	}
}
