package refserver_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/filehub/filehub/internal/refserver"
)

func TestHandlerStoresBodyUnderItsHash(t *testing.T) {
	dir := t.TempDir()
	srv := httptest.NewServer(&refserver.Handler{Dir: dir})
	defer srv.Close()
	body := strings.Repeat("reference ", 10000)
	resp, err := http.Post(srv.URL, "application/octet-stream", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d", resp.StatusCode)
	}
	sum := sha256.Sum256([]byte(body))
	got, err := os.ReadFile(filepath.Join(dir, hex.EncodeToString(sum[:])))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != body {
		t.Fatal("stored bytes differ")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d entries in dir, want 1 (temp file left behind?)", len(entries))
	}
}
