package mcpserver_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
	"github.com/filehub/filehub/localfs"
	"github.com/filehub/filehub/mcpserver"
	"github.com/filehub/filehub/sqlite"
)

// fuzzSession returns a session with an admin identity on an in-memory
// transport (the stdio path: Config.Key), on fresh stores.
func fuzzSession(f *testing.F) (*mcp.ClientSession, *sqlite.DB) {
	f.Helper()
	ctx := context.Background()
	dir := f.TempDir()
	meta, err := sqlite.Open(ctx, filepath.Join(dir, "filehub.db"), sqlite.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { meta.Close() })
	blobs, err := localfs.Open(dir, localfs.Config{})
	if err != nil {
		f.Fatal(err)
	}
	svc, err := files.New(meta, blobs, files.Config{MinFreeSpace: -1})
	if err != nil {
		f.Fatal(err)
	}
	srv, err := mcpserver.New(mcpserver.NewLocal(svc, meta, nil, nil), mcpserver.Config{
		MaxUpload: testMaxUpload, RateLimit: -1,
		Key: &filehub.APIKey{ID: "k_fuzz", Scopes: []filehub.Scope{filehub.ScopeAdmin}},
	})
	if err != nil {
		f.Fatal(err)
	}
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.MCP().Connect(ctx, st, nil)
	if err != nil {
		f.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "fuzz", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs, meta
}

// FuzzUploadFile: whatever the arguments, upload_file answers a result (a
// tool error for bad input, never a protocol error); a failed call stores
// nothing, and a stored file reads back as exactly the decoded content.
func FuzzUploadFile(f *testing.F) {
	f.Add("a.txt", "hello", "")
	f.Add("b.bin", "", "AAEC/w==")
	f.Add("c.bin", "", "AAEC/w")
	f.Add("d", "", "not base64!!")
	f.Add("", "x", "")
	f.Add("e", "both", "Ym90aA==")
	f.Add("f", "", strings.Repeat("QUFB", 2000))
	cs, meta := fuzzSession(f)
	f.Fuzz(func(t *testing.T, name, text, b64 string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		before, _, err := meta.ListFiles(ctx, filehub.FileFilter{Limit: 1000, IncludeDeleted: true})
		if err != nil {
			t.Fatal(err)
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "upload_file", Arguments: map[string]any{"name": name, "text": text, "base64": b64}})
		if err != nil {
			t.Fatalf("protocol error: %v", err)
		}
		after, _, err := meta.ListFiles(ctx, filehub.FileFilter{Limit: 1000, IncludeDeleted: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError {
			if len(after) != len(before) {
				t.Fatalf("a failed upload stored a file: %s", resultText(res))
			}
			return
		}
		want := []byte(text)
		if b64 != "" {
			if want, err = base64.StdEncoding.DecodeString(b64); err != nil {
				if want, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
					t.Fatalf("undecodable base64 %q was stored", b64)
				}
			}
		}
		var out struct {
			File struct{ ID string } `json:"file"`
		}
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, &out); err != nil || out.File.ID == "" {
			t.Fatalf("structured content %s", b)
		}
		f, err := meta.FindFile(ctx, out.File.ID)
		if err != nil {
			t.Fatal(err)
		}
		if f.Size != int64(len(want)) {
			t.Fatalf("stored %d bytes, want %d", f.Size, len(want))
		}
		rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: mcpserver.FileURI(out.File.ID)})
		if err != nil {
			t.Fatal(err)
		}
		got := rr.Contents[0].Blob
		if got == nil {
			got = []byte(rr.Contents[0].Text)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read back %q, want %q", got, want)
		}
	})
}

// FuzzReadResource: any URI gets contents or an error, never a panic or a
// read outside the store.
func FuzzReadResource(f *testing.F) {
	for _, s := range []string{"filehub://files/f_abc", "filehub://files/", "filehub://files/../../etc/passwd", "file:///etc/passwd", "", "filehub://files/a%2fb"} {
		f.Add(s)
	}
	cs, _ := fuzzSession(f)
	f.Fuzz(func(t *testing.T, uri string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if err == nil && len(res.Contents) > 0 {
			t.Fatalf("%q read something from an empty store", uri)
		}
	})
}
