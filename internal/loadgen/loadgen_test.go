package loadgen_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
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

// TestRunTus uploads to a minimal tus creation-with-upload endpoint that
// checks the protocol headers and stores the whole body, and to one that
// acknowledges less than it was sent: only full uploads count.
func TestRunTus(t *testing.T) {
	for _, tc := range []struct {
		name         string
		short        bool
		wantFailures int
	}{{"Full", false, 0}, {"ShortOffset", true, 5}} {
		t.Run(tc.name, func(t *testing.T) {
			var stored atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.Header.Get("Tus-Resumable") != "1.0.0" ||
					r.Header.Get("Content-Type") != "application/offset+octet-stream" || r.URL.RawQuery != "" {
					http.Error(w, "not a tus creation-with-upload", http.StatusBadRequest)
					return
				}
				n, _ := io.Copy(io.Discard, r.Body)
				if strconv.FormatInt(n, 10) != r.Header.Get("Upload-Length") {
					http.Error(w, "length mismatch", http.StatusBadRequest)
					return
				}
				if tc.short {
					n--
				}
				stored.Add(1)
				w.Header().Set("Upload-Offset", strconv.FormatInt(n, 10))
				w.Header().Set("Location", "/files/x")
				w.WriteHeader(http.StatusCreated)
			}))
			defer srv.Close()
			res, err := loadgen.Run(context.Background(), loadgen.Config{
				URL: srv.URL + "/files/", Count: 5, Concurrency: 2, Size: 4096, Tus: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Failures != tc.wantFailures || stored.Load() != 5 {
				t.Fatalf("failures %d (%s), %d stored; want %d failures, 5 stored", res.Failures, res.FirstError, stored.Load(), tc.wantFailures)
			}
		})
	}
}
