// Package refserver is the baseline filehub's upload path is measured
// against: the plainest correct way to receive a file over HTTP. It streams
// the body to a new file while computing its SHA-256, fsyncs it and renames
// it into place — no metadata, no dedup, no limits, no auth. It exists only
// for benchmarks and is never part of the daemon.
package refserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

// Handler stores each POSTed body under Dir/<sha256>.
type Handler struct {
	Dir string
}

// ServeHTTP implements the reference upload: stream to a temp file while
// hashing, fsync, rename. It answers 201 with {"sha256","size"}.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	f, err := os.CreateTemp(h.Dir, "upload-*")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.Remove(f.Name()) // no-op after a successful rename
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, sum), r.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	hexSum := hex.EncodeToString(sum.Sum(nil))
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(h.Dir, hexSum))
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"sha256": hexSum, "size": n}) // the client may be gone; nothing to do
}
