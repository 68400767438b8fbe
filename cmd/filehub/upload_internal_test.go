package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spf13/cobra"

	"github.com/filehub/filehub/client"
)

// TestUploadProgress checks that the progress bar draws on the given
// writer (standard error on a terminal) while the body is sent whole.
func TestUploadProgress(t *testing.T) {
	var received atomic.Int64 // written by the handler's goroutine
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		received.Store(n)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"id": "f_1", "name": r.URL.Query().Get("name"), "size": n})
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := client.New(srv.URL, "fhk_k", client.WithHTTPClient(&http.Client{Transport: tr}))

	path := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(path, bytes.Repeat([]byte("p"), 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := &cobra.Command{}
	cmd.SetContext(context.Background())
	up, err := uploadOne(cmd, c, Env{Stderr: &stderr}, path, "", true, &tusUploader{}, resumeAuto)
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != "big.bin" || received.Load() != 3<<20 {
		t.Errorf("uploaded %+v, server received %d bytes", up.File, received.Load())
	}
	if out := stderr.String(); !strings.Contains(out, "big.bin") || !strings.Contains(out, "3.0 MiB") {
		t.Errorf("no progress bar drawn: %q", out)
	}
}
