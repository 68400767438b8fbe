package loadgen_test

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/filehub/filehub/internal/loadgen"
	"github.com/filehub/filehub/internal/refserver"
)

func TestContentIsDeterministicAndUnique(t *testing.T) {
	read := func(seed uint64) []byte {
		b, err := io.ReadAll(io.LimitReader(loadgen.NewContent(seed), 100_000))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !bytes.Equal(read(7), read(7)) {
		t.Fatal("same seed gave different content")
	}
	if bytes.Equal(read(7), read(8)) {
		t.Fatal("different seeds gave the same content")
	}
	if !bytes.HasPrefix(read(9), []byte("FHLOAD\x00")) {
		t.Fatal("content does not start with the fixed header")
	}
}

func TestRunAgainstReference(t *testing.T) {
	dir := t.TempDir()
	srv := httptest.NewServer(&refserver.Handler{Dir: dir})
	defer srv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		URL: srv.URL, Count: 20, Concurrency: 4, Size: 10_000, ServerPID: os.Getpid(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploads != 20 || res.Failures != 0 {
		t.Fatalf("uploads %d failures %d (%s)", res.Uploads, res.Failures, res.FirstError)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 20 {
		t.Fatalf("%d files stored, want 20 unique contents", len(entries))
	}
	if res.ServerPeakRSS <= 0 {
		t.Fatal("peak RSS not read")
	}
}
