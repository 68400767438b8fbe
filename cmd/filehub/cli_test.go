package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/filehub/filehub"
	main "github.com/filehub/filehub/cmd/filehub"
)

// uploaded is the JSON line "upload --json" prints per file.
type uploaded struct {
	filehub.File
	Deduplicated bool `json:"deduplicated"`
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// clientEnv is the environment of a CLI talking to s with key.
func clientEnv(s *Server, key string) map[string]string {
	return map[string]string{"FILEHUB_SERVER": s.URL, "FILEHUB_KEY": key}
}

func TestCLIEndToEnd(t *testing.T) {
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	env := clientEnv(s, testKey)

	dir := t.TempDir()
	content := []byte("hello, filehub\n")
	a := filepath.Join(dir, "a.txt")
	b := filepath.Join(dir, "b.txt")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// upload --json: one object per file; the second is deduplicated.
	r := MustCLI(t, env, "upload", "--json", a, b)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("upload --json printed %d lines, want 2: %q", len(lines), r.Stdout)
	}
	var ups [2]uploaded
	for i, line := range lines {
		if err := json.Unmarshal([]byte(line), &ups[i]); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
	}
	if ups[0].Name != "a.txt" || ups[1].Name != "b.txt" || ups[0].SHA256 != sum(content) || ups[0].Size != int64(len(content)) {
		t.Errorf("uploads = %+v", ups)
	}
	if ups[0].Deduplicated || !ups[1].Deduplicated {
		t.Errorf("deduplicated = %v, %v; want false, true", ups[0].Deduplicated, ups[1].Deduplicated)
	}
	id := ups[0].ID

	// upload without --json: a line per file saying whether it was deduplicated.
	r = MustCLI(t, env, "upload", a)
	if !strings.Contains(r.Stdout, "a.txt") || !strings.Contains(r.Stdout, "deduplicated") {
		t.Errorf("upload printed %q", r.Stdout)
	}

	// upload from stdin.
	r = CLI(t, env, strings.NewReader("from stdin"), "upload", "--json", "--name", "in.txt", "-")
	if r.Code != 0 || !strings.Contains(r.Stdout, `"name":"in.txt"`) {
		t.Errorf("upload -: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}

	// ls: table and JSON, in creation order.
	r = MustCLI(t, env, "ls")
	if !strings.Contains(r.Stdout, "ID") || !strings.Contains(r.Stdout, id) || !strings.Contains(r.Stdout, "b.txt") {
		t.Errorf("ls printed %q", r.Stdout)
	}
	r = MustCLI(t, env, "ls", "--json", "--limit", "2")
	if n := strings.Count(r.Stdout, "\n"); n != 2 {
		t.Errorf("ls --limit 2 printed %d files: %q", n, r.Stdout)
	}
	r = MustCLI(t, env, "ls", "--json", "--all")
	var first filehub.File
	if err := json.Unmarshal([]byte(strings.SplitN(r.Stdout, "\n", 2)[0]), &first); err != nil || first.ID != id {
		t.Errorf("ls --json first = %+v, %v; want %s", first, err, id)
	}
	if n := strings.Count(r.Stdout, "\n"); n != 4 {
		t.Errorf("ls --all printed %d files, want 4", n)
	}

	// get: to a path, to a directory, to stdout, to the current directory.
	out := filepath.Join(t.TempDir(), "out.txt")
	MustCLI(t, env, "get", id, "-o", out)
	mustContent(t, out, content)
	MustFail(t, env, main.ExitFailure, "exists", "get", id, "-o", out)
	MustCLI(t, env, "get", id, "-o", out, "--force")
	mustContent(t, out, content)

	outDir := t.TempDir()
	MustCLI(t, env, "get", id, "-o", outDir)
	mustContent(t, filepath.Join(outDir, "a.txt"), content)

	r = MustCLI(t, env, "get", id, "-o", "-")
	if r.Stdout != string(content) {
		t.Errorf("get -o - printed %q", r.Stdout)
	}

	t.Chdir(t.TempDir())
	MustCLI(t, env, "get", id)
	mustContent(t, "a.txt", content)
	entries, _ := os.ReadDir(".")
	if len(entries) != 1 {
		t.Errorf("current directory holds %d entries after get, want only a.txt", len(entries))
	}

	// rm: gone from listings and downloads; get fails with one line and exit 1.
	r = MustCLI(t, env, "rm", id)
	if !strings.Contains(r.Stdout, "deleted "+id) || !strings.Contains(r.Stdout, "restorable until") {
		t.Errorf("rm printed %q", r.Stdout)
	}
	MustFail(t, env, main.ExitFailure, "not found", "get", id, "-o", filepath.Join(t.TempDir(), "x"))
	if r := MustCLI(t, env, "ls", "--all"); strings.Contains(r.Stdout, id) {
		t.Errorf("deleted file still listed: %q", r.Stdout)
	}
	MustFail(t, env, main.ExitFailure, "not found", "rm", id)
	MustFail(t, env, main.ExitFailure, "f_nope", "rm", "f_nope", ups[1].ID)
	MustFail(t, env, main.ExitFailure, "could not restore 2 of 2", "restore", "f_nope", "f_nope2")

	// restore: downloadable again.
	r = MustCLI(t, env, "restore", id, ups[1].ID)
	if !strings.Contains(r.Stdout, "restored "+id) {
		t.Errorf("restore printed %q", r.Stdout)
	}
	out2 := filepath.Join(t.TempDir(), "again.txt")
	MustCLI(t, env, "get", id, "-o", out2)
	mustContent(t, out2, content)
}

func mustContent(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
}

func TestCLIErrors(t *testing.T) {
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	env := clientEnv(s, testKey)
	missing := filepath.Join(t.TempDir(), "missing")

	tests := []struct {
		name string
		env  map[string]string
		code int
		want string
		args []string
	}{
		{"unknown command", env, main.ExitUsage, "unknown command", []string{"frobnicate"}},
		{"unknown flag", env, main.ExitUsage, "unknown flag", []string{"ls", "--frob"}},
		{"upload without files", env, main.ExitUsage, "at least 1", []string{"upload"}},
		{"get without id", env, main.ExitUsage, "exactly 1", []string{"get"}},
		{"no key", map[string]string{"FILEHUB_SERVER": s.URL}, main.ExitUsage, "FILEHUB_KEY", []string{"ls"}},
		{"bad limit", env, main.ExitUsage, "--limit", []string{"ls", "--limit", "0"}},
		{"wrong key", clientEnv(s, "fhk_wrong"), main.ExitFailure, "key", []string{"ls"}},
		{"server down", map[string]string{"FILEHUB_SERVER": "http://127.0.0.1:1", "FILEHUB_KEY": testKey}, main.ExitFailure, "cannot reach", []string{"ls"}},
		{"missing file", env, main.ExitFailure, "no such file", []string{"upload", missing}},
		{"upload a directory", env, main.ExitFailure, "not a regular file", []string{"upload", t.TempDir()}},
		{"get unknown", env, main.ExitFailure, "not found", []string{"get", "f_unknown", "-o", missing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			MustFail(t, tt.env, tt.code, tt.want, tt.args...)
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("a failed get left a file behind")
	}
}

func TestKeys(t *testing.T) {
	dataDir := t.TempDir()
	s := MustRunMain(t, dataDir, map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	keysEnv := map[string]string{"FILEHUB_DATA_DIR": dataDir}

	// create prints only the secret, while the server is running.
	r := MustCLI(t, keysEnv, "keys", "create", "--name", "reader", "--scope", "read")
	secret := strings.TrimSpace(r.Stdout)
	if !strings.HasPrefix(secret, filehub.APIKeyPrefix) || strings.Count(r.Stdout, "\n") != 1 {
		t.Fatalf("keys create printed %q, want only a key", r.Stdout)
	}
	r = MustCLI(t, nil, "keys", "create", "--name", "writer", "--scope", "read,write", "--data-dir", dataDir)
	writer := strings.TrimSpace(r.Stdout)

	MustFail(t, keysEnv, main.ExitFailure, "exists", "keys", "create", "--name", "reader", "--scope", "read")
	MustFail(t, keysEnv, main.ExitUsage, "unknown scope", "keys", "create", "--name", "x", "--scope", "root")
	MustFail(t, keysEnv, main.ExitUsage, "--name", "keys", "create", "--scope", "read")
	MustFail(t, map[string]string{"FILEHUB_DATA_DIR": filepath.Join(dataDir, "typo")}, main.ExitFailure, "no filehub database", "keys", "list")

	// list: table and JSON, never secrets.
	r = MustCLI(t, keysEnv, "keys", "list")
	for _, want := range []string{"ID", "NAME", "SCOPES", "CREATED", "REVOKED", "bootstrap", "admin", "reader", "read,write"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("keys list lacks %q:\n%s", want, r.Stdout)
		}
	}
	if strings.Contains(r.Stdout, secret) {
		t.Error("keys list shows a secret")
	}
	r = MustCLI(t, keysEnv, "keys", "list", "--json")
	var keys []filehub.APIKey
	if err := json.Unmarshal([]byte(r.Stdout), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || keys[1].Name != "reader" || keys[1].RevokedAt != nil {
		t.Fatalf("keys list --json = %+v", keys)
	}

	// The new keys work with their scopes only.
	MustCLI(t, clientEnv(s, secret), "ls")
	f := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	MustFail(t, clientEnv(s, secret), main.ExitFailure, "scope", "upload", f)
	MustCLI(t, clientEnv(s, writer), "upload", f)

	// revoke, by name and by ID: the key gets 401 once the server's cache
	// of valid keys has expired (auth.DefaultKeyCacheTTL).
	r = MustCLI(t, keysEnv, "keys", "revoke", "reader")
	if !strings.Contains(r.Stdout, keys[1].ID) {
		t.Errorf("keys revoke printed %q", r.Stdout)
	}
	MustFail(t, keysEnv, main.ExitFailure, "revoke", "keys", "revoke", "reader")
	MustFail(t, keysEnv, main.ExitFailure, "not found", "keys", "revoke", "nobody")
	waitFor(t, "the revoked key to be refused", func() bool { return getStatus(t, s.URL+"/v1/files", secret) == 401 })
	r = MustFail(t, clientEnv(s, secret), main.ExitFailure, "revoked", "ls")
	MustCLI(t, keysEnv, "keys", "revoke", keys[2].ID)
	waitFor(t, "the revoked key to be refused", func() bool { return getStatus(t, s.URL+"/v1/files", writer) == 401 })
	assertStatus(t, s.URL+"/v1/files", testKey, 200)

	r = MustCLI(t, keysEnv, "keys", "list", "--json")
	if err := json.Unmarshal([]byte(r.Stdout), &keys); err != nil {
		t.Fatal(err)
	}
	if keys[1].RevokedAt == nil || keys[2].RevokedAt == nil || keys[0].RevokedAt != nil {
		t.Errorf("revoked_at after revoking = %v, %v, %v", keys[0].RevokedAt, keys[1].RevokedAt, keys[2].RevokedAt)
	}
}

func TestClientSettingsFromConfigFile(t *testing.T) {
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, nil)
	// A file shared with the server: serve's keys are ignored by ls.
	cfg := filepath.Join(t.TempDir(), "filehub.toml")
	content := "server = \"" + s.URL + "\"\nkey = \"" + testKey + "\"\nlisten = \"127.0.0.1:1\"\n"
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	MustCLI(t, nil, "ls", "--config", cfg)
	MustCLI(t, map[string]string{"FILEHUB_CONFIG": cfg}, "ls")
	// The environment beats the file.
	MustFail(t, map[string]string{"FILEHUB_CONFIG": cfg, "FILEHUB_KEY": "fhk_wrong"}, main.ExitFailure, "unknown API key", "ls")
}

// TestGetRefusesCorruptContent serves content that does not match its
// ETag (the SHA-256) and checks that get fails and leaves no file.
func TestGetRefusesCorruptContent(t *testing.T) {
	good := []byte("the real content")
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"corrupted", []byte("the fake content"), "corrupted"},
		{"truncated", good[:5], "cut short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", `"`+sum(good)+`"`)
				w.Header().Set("Content-Disposition", "attachment; filename=real.txt")
				w.Header().Set("Content-Length", strconv.Itoa(len(good)))
				w.Write(tt.body) // a short body makes the server cut the connection
			}))
			defer srv.Close()
			env := map[string]string{"FILEHUB_SERVER": srv.URL, "FILEHUB_KEY": testKey}
			dir := t.TempDir()
			MustFail(t, env, main.ExitFailure, tt.want, "get", "f_1", "-o", dir)
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("failed get left %d entries in the target directory", len(entries))
			}
			r := CLI(t, env, nil, "get", "f_1", "-o", "-")
			if r.Code != main.ExitFailure {
				t.Errorf("get -o - of bad content: exit %d", r.Code)
			}
		})
	}
}
