package main_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	main "github.com/filehub/filehub/cmd/filehub"
)

// tusBytes is the server's filehub_tus_bytes_received_total.
func tusBytes(t *testing.T, s *Server) float64 {
	t.Helper()
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "filehub_tus_bytes_received_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no filehub_tus_bytes_received_total")
	return 0
}

// TestUploadResumable: "filehub upload" sends large files with tus, and a
// second run continues an upload the server already has part of (found
// through the state under the cache directory) instead of starting over.
func TestUploadResumable(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	env := clientEnv(s, testKey)
	dir := t.TempDir()

	// A small file goes the plain way; --resumable forces tus.
	small := filepath.Join(dir, "small.txt")
	if err := os.WriteFile(small, []byte("small file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	MustCLI(t, env, "upload", small)
	if got := tusBytes(t, s); got != 0 {
		t.Fatalf("a small file went through tus (%v bytes)", got)
	}
	MustCLI(t, env, "upload", "--resumable", small)
	if got := tusBytes(t, s); got != 11 {
		t.Fatalf("--resumable: %v bytes through tus, want 11", got)
	}

	// A 20 MiB file the server already has 8 MiB of, as an interrupted
	// run would have left it.
	data := make([]byte, 20<<20)
	rand.Read(data)
	big := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(big, data, 0o600); err != nil {
		t.Fatal(err)
	}
	loc := tusStart(t, s.URL, "big.bin", data, 8<<20)
	fi, err := os.Stat(big)
	if err != nil {
		t.Fatal(err)
	}
	state, err := main.StatePath(s.URL, big, fi)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(state), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, fmt.Appendf(nil, `{"url":%q}`, loc), 0o600); err != nil {
		t.Fatal(err)
	}
	before := tusBytes(t, s)
	r := MustCLI(t, env, "upload", "--json", big)
	var up uploaded
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.Stdout)), &up); err != nil {
		t.Fatalf("upload --json: %q: %v", r.Stdout, err)
	}
	if up.SHA256 != sum(data) || up.Name != "big.bin" || up.Size != int64(len(data)) || up.Deduplicated {
		t.Fatalf("resumed upload: %+v", up)
	}
	if got := tusBytes(t, s) - before; got != float64(len(data)-8<<20) {
		t.Fatalf("the resumed run sent %v bytes, want the %d the server did not have", got, len(data)-8<<20)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("resume state left behind after success: %v", err)
	}
	// Downloaded back intact.
	out := filepath.Join(dir, "back.bin")
	MustCLI(t, env, "get", up.ID, "-o", out)
	mustContent(t, out, data)
}

// tusStart creates a tus upload of data and sends its first n bytes; it
// returns the upload's URL.
func tusStart(t *testing.T, server, name string, data []byte, n int) string {
	t.Helper()
	do := func(method, url string, body []byte, hdr map[string]string) *http.Response {
		req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := do("POST", server+"/v1/uploads/", nil, map[string]string{
		"Upload-Length": fmt.Sprint(len(data)), "Upload-Metadata": "filename " + base64.StdEncoding.EncodeToString([]byte(name))})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	loc := server + resp.Header.Get("Location")
	if resp := do("PATCH", loc, data[:n], map[string]string{"Upload-Offset": "0"}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH: %d", resp.StatusCode)
	}
	return loc
}
