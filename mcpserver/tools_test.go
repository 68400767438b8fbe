package mcpserver_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/mcpserver"
)

func toolNames(t *testing.T, s *session) []string {
	t.Helper()
	res, err := s.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	return names
}

func TestToolsListedByScope(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		key  string
		want []string
	}{
		{keyRead, []string{"get_file", "list_files", "read_file", "storage_stats"}},
		{keyWrite, []string{"delete_file", "push_to_provider", "restore_file", "upload_file"}},
		{keyRW, []string{"delete_file", "get_file", "list_files", "push_to_provider", "read_file", "restore_file", "storage_stats", "upload_file"}},
		{keyAdmin, []string{"cleanup_preview", "delete_file", "get_file", "list_files", "push_to_provider", "read_file", "restore_file", "storage_stats", "upload_file"}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			if got := toolNames(t, e.connect(tc.key)); !slices.Equal(got, tc.want) {
				t.Errorf("tools/list = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestToolAnnotations(t *testing.T) {
	e := newEnv(t, nil)
	res, err := e.connect(keyAdmin).ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	type hints struct{ readOnly, destructive, idempotent, openWorld bool }
	want := map[string]hints{
		"list_files":       {true, false, false, false},
		"get_file":         {true, false, false, false},
		"read_file":        {true, false, false, false},
		"storage_stats":    {true, false, false, false},
		"cleanup_preview":  {true, false, false, false},
		"upload_file":      {false, false, false, false},
		"delete_file":      {false, true, true, false},
		"restore_file":     {false, false, true, false},
		"push_to_provider": {false, false, true, true},
	}
	for _, tl := range res.Tools {
		a := tl.Annotations
		if a == nil {
			t.Errorf("%s has no annotations", tl.Name)
			continue
		}
		// Absent hints take the spec's defaults: destructive and open world.
		got := hints{a.ReadOnlyHint, a.DestructiveHint == nil || *a.DestructiveHint, a.IdempotentHint, a.OpenWorldHint == nil || *a.OpenWorldHint}
		if got.readOnly {
			got.destructive = false // meaningless for read-only tools
		}
		if got != want[tl.Name] {
			t.Errorf("%s annotations = %+v, want %+v", tl.Name, got, want[tl.Name])
		}
		if tl.InputSchema == nil || tl.OutputSchema == nil {
			t.Errorf("%s lacks an input or output schema", tl.Name)
		}
	}
}

type uploadOut struct {
	File struct {
		ID, URI, Name, SHA256 string
		Size                  int64
		ContentType           string `json:"content_type"`
	} `json:"file"`
	Deduplicated bool `json:"deduplicated"`
}

type readOut struct {
	Kind      string `json:"kind"`
	Text      string `json:"text"`
	Truncated bool   `json:"truncated"`
}

func TestUploadReadBack(t *testing.T) {
	e := newEnv(t, nil)
	s := e.connect(keyRW)

	var up uploadOut
	s.mustCall(t, "upload_file", map[string]any{"name": "notes.txt", "text": "héllo, wörld\n"}, &up)
	if up.File.ID == "" || up.File.Size != int64(len("héllo, wörld\n")) || up.Deduplicated || up.File.URI != mcpserver.FileURI(up.File.ID) {
		t.Fatalf("upload = %+v", up)
	}
	var rd readOut
	res := s.mustCall(t, "read_file", map[string]any{"id": up.File.ID}, &rd)
	if rd.Kind != "text" || rd.Text != "héllo, wörld\n" || rd.Truncated {
		t.Errorf("read_file = %+v", rd)
	}
	if got := resultText(res); got != "héllo, wörld\n" {
		t.Errorf("read_file text rendering = %q", got)
	}

	// The same content again is deduplicated.
	var again uploadOut
	s.mustCall(t, "upload_file", map[string]any{"name": "copy.txt", "base64": base64.StdEncoding.EncodeToString([]byte("héllo, wörld\n"))}, &again)
	if !again.Deduplicated || again.File.SHA256 != up.File.SHA256 || again.File.ID == up.File.ID {
		t.Errorf("second upload = %+v, want deduplicated against %+v", again, up)
	}

	// Binary content comes back as an embedded blob, byte for byte.
	bin := make([]byte, 1000)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	bin[0] = 0 // not text
	var bup uploadOut
	s.mustCall(t, "upload_file", map[string]any{"name": "data.bin", "base64": base64.StdEncoding.EncodeToString(bin)}, &bup)
	res = s.mustCall(t, "read_file", map[string]any{"id": bup.File.ID}, &rd)
	if rd.Kind != "blob" {
		t.Fatalf("read_file of binary: kind %q", rd.Kind)
	}
	var blob []byte
	for _, c := range res.Content {
		if er, ok := c.(*mcp.EmbeddedResource); ok {
			blob = er.Resource.Blob
			if er.Resource.URI != mcpserver.FileURI(bup.File.ID) {
				t.Errorf("embedded resource URI = %s", er.Resource.URI)
			}
		}
	}
	if !bytes.Equal(blob, bin) {
		t.Errorf("embedded blob is %d bytes, differs from the upload", len(blob))
	}

	// Text that is not UTF-8 (Latin-1) comes back as bytes, not mangled.
	latin1 := []byte("caf\xe9 cr\xe8me br\xfbl\xe9e, tr\xe8s bien\n")
	var lup uploadOut
	s.mustCall(t, "upload_file", map[string]any{"name": "latin1.txt", "base64": base64.StdEncoding.EncodeToString(latin1)}, &lup)
	res = s.mustCall(t, "read_file", map[string]any{"id": lup.File.ID}, &rd)
	blob = nil
	for _, c := range res.Content {
		if er, ok := c.(*mcp.EmbeddedResource); ok {
			blob = er.Resource.Blob
		}
	}
	if !strings.HasPrefix(lup.File.ContentType, "text/") {
		t.Errorf("Latin-1 text sniffed as %s, which does not test the fallback", lup.File.ContentType)
	}
	if rd.Kind != "blob" || !bytes.Equal(blob, latin1) {
		t.Errorf("read_file of Latin-1 text (%s): kind %q, %q", lup.File.ContentType, rd.Kind, blob)
	}

	var got struct {
		ID, Name string
		Size     int64
	}
	s.mustCall(t, "get_file", map[string]any{"id": up.File.ID}, &got)
	if got.ID != up.File.ID || got.Name != "notes.txt" {
		t.Errorf("get_file = %+v", got)
	}
}

func TestReadFileTruncatesText(t *testing.T) {
	e := newEnv(t, nil)
	s := e.connect(keyRW)
	var up uploadOut
	// 'é' is two bytes: a cut at an odd byte count splits one.
	s.mustCall(t, "upload_file", map[string]any{"name": "long.txt", "text": strings.Repeat("é", 1000)}, &up)
	var rd readOut
	s.mustCall(t, "read_file", map[string]any{"id": up.File.ID, "max_bytes": 101}, &rd)
	if !rd.Truncated || rd.Text != strings.Repeat("é", 50) {
		t.Errorf("read_file max_bytes 101 = truncated %v, %d bytes", rd.Truncated, len(rd.Text))
	}
	s.mustCall(t, "read_file", map[string]any{"id": up.File.ID, "max_bytes": 2000}, &rd)
	if rd.Truncated || len(rd.Text) != 2000 {
		t.Errorf("read_file max_bytes 2000 = truncated %v, %d bytes", rd.Truncated, len(rd.Text))
	}
	s.mustFail(t, "read_file", map[string]any{"id": up.File.ID, "max_bytes": 1 << 30}, "invalid: max_bytes must be from 1 to")
}

func TestReadFileLargeBinaryIsALink(t *testing.T) {
	e := newEnv(t, nil)
	s := e.connect(keyRW)
	bin := bytes.Repeat([]byte{0, 1, 2, 0xff}, testMaxBlob/4+1)
	var up uploadOut
	s.mustCall(t, "upload_file", map[string]any{"name": "big.bin", "base64": base64.StdEncoding.EncodeToString(bin)}, &up)
	var rd readOut
	res := s.mustCall(t, "read_file", map[string]any{"id": up.File.ID}, &rd)
	if rd.Kind != "link" {
		t.Fatalf("kind = %q, want link", rd.Kind)
	}
	var link *mcp.ResourceLink
	for _, c := range res.Content {
		if l, ok := c.(*mcp.ResourceLink); ok {
			link = l
		}
	}
	if link == nil || link.URI != mcpserver.FileURI(up.File.ID) || link.Size == nil || *link.Size != int64(len(bin)) {
		t.Errorf("resource link = %+v", link)
	}
	// The resource itself is over the limit too: a clear error.
	_, err := s.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: link.URI})
	if err == nil || !strings.Contains(err.Error(), "too_large") {
		t.Errorf("resources/read of an oversized file: %v", err)
	}
}

func TestListFiles(t *testing.T) {
	e := newEnv(t, nil)
	s := e.connect(keyAdmin)
	var ids []string
	for i := range 5 {
		name := fmt.Sprintf("a-%d.txt", i)
		if i%2 == 1 {
			name = fmt.Sprintf("b-%d.txt", i)
		}
		var up uploadOut
		s.mustCall(t, "upload_file", map[string]any{"name": name, "text": fmt.Sprint("content ", i)}, &up)
		ids = append(ids, up.File.ID)
	}
	type page struct {
		Files []struct {
			ID, Name  string
			DeletedAt string `json:"deleted_at"`
		} `json:"files"`
		NextCursor string `json:"next_cursor"`
	}
	// Pages of two, in upload order.
	var seen []string
	cursor := ""
	for range 10 {
		var p page
		args := map[string]any{"limit": 2}
		if cursor != "" {
			args["cursor"] = cursor
		}
		s.mustCall(t, "list_files", args, &p)
		for _, f := range p.Files {
			seen = append(seen, f.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(seen, ids) {
		t.Errorf("paged listing = %v, want %v", seen, ids)
	}
	// A name prefix filter across pages.
	var p page
	s.mustCall(t, "list_files", map[string]any{"name_prefix": "b-"}, &p)
	if len(p.Files) != 2 || p.Files[0].Name != "b-1.txt" || p.Files[1].Name != "b-3.txt" {
		t.Errorf("name_prefix b- = %+v", p.Files)
	}
	// Deleted files only with include_deleted, which needs admin.
	s.mustCall(t, "delete_file", map[string]any{"id": ids[0]}, nil)
	s.mustCall(t, "list_files", nil, &p)
	if len(p.Files) != 4 {
		t.Errorf("after a delete, %d files listed, want 4", len(p.Files))
	}
	s.mustCall(t, "list_files", map[string]any{"include_deleted": true}, &p)
	if len(p.Files) != 5 || p.Files[0].DeletedAt == "" {
		t.Errorf("include_deleted: %+v", p.Files)
	}
	e.connect(keyRW).mustFail(t, "list_files", map[string]any{"include_deleted": true}, `forbidden: this key lacks the "admin" scope, which include_deleted needs`)
	s.mustFail(t, "list_files", map[string]any{"limit": 5000}, "invalid: limit must be from 1 to 1000")
	s.mustFail(t, "list_files", map[string]any{"cursor": "garbage!"}, "invalid")
}

func TestBadInputStoresNothing(t *testing.T) {
	e := newEnv(t, nil)
	s := e.connect(keyAdmin)
	for _, tc := range []struct {
		name string
		tool string
		args map[string]any
		want string
	}{
		{"oversized text", "upload_file", map[string]any{"name": "big.txt", "text": strings.Repeat("x", testMaxUpload+1)}, "too_large: content of 4097 bytes exceeds the MCP upload limit of 4096 bytes"},
		{"oversized base64", "upload_file", map[string]any{"name": "big.bin", "base64": base64.StdEncoding.EncodeToString(make([]byte, testMaxUpload+10))}, "too_large"},
		{"invalid base64", "upload_file", map[string]any{"name": "x.bin", "base64": "not base64!!"}, "invalid: base64 is not valid standard base64"},
		{"text and base64", "upload_file", map[string]any{"name": "x", "text": "a", "base64": "YQ=="}, "invalid: give the content as text or as base64, not both"},
		{"no name", "upload_file", map[string]any{"name": "  ", "text": "a"}, "invalid: name must not be empty"},
		{"name missing", "upload_file", map[string]any{"text": "a"}, "name"},
		{"refused type", "upload_file", map[string]any{"name": "x.exe", "base64": base64.StdEncoding.EncodeToString([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"))}, "unsupported_type"},
		{"unknown file get", "get_file", map[string]any{"id": "f_nosuchfile"}, "not_found: file f_nosuchfile not found"},
		{"unknown file read", "read_file", map[string]any{"id": "f_nosuchfile"}, "not_found"},
		{"unknown file delete", "delete_file", map[string]any{"id": "f_nosuchfile"}, "not_found"},
		{"unknown file restore", "restore_file", map[string]any{"id": "f_nosuchfile"}, "not_found"},
		{"malformed id", "get_file", map[string]any{"id": "../../etc/passwd"}, "invalid: invalid file id"},
		{"unknown file push", "push_to_provider", map[string]any{"id": "f_nosuchfile", "provider": "test"}, "not_found"},
		{"unknown provider", "push_to_provider", map[string]any{"id": "f_nosuchfile", "provider": "nope"}, `not_found: unknown provider "nope"`},
		{"wrong argument type", "get_file", map[string]any{"id": 42}, "id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.mustFail(t, tc.tool, tc.args, tc.want)
		})
	}
	if n := e.fileCount(); n != 0 {
		t.Errorf("%d files stored after bad input, want 0", n)
	}
}

func TestScopesRefused(t *testing.T) {
	e := newEnv(t, nil)
	read := e.connect(keyRead)
	read.mustFail(t, "upload_file", map[string]any{"name": "x.txt", "text": "x"}, `forbidden: this key lacks the "write" scope, which upload_file needs`)
	read.mustFail(t, "delete_file", map[string]any{"id": "f_x"}, `lacks the "write" scope`)
	read.mustFail(t, "cleanup_preview", nil, `forbidden: this key lacks the "admin" scope, which cleanup_preview needs`)
	e.connect(keyWrite).mustFail(t, "get_file", map[string]any{"id": "f_x"}, `lacks the "read" scope`)
	if n := e.fileCount(); n != 0 {
		t.Errorf("%d files stored by refused calls", n)
	}
	// A write-only key has no resources either.
	_, err := e.connect(keyWrite).ListResources(t.Context(), nil)
	if err == nil || !strings.Contains(err.Error(), `lacks the "read" scope`) {
		t.Errorf("resources/list with a write key: %v", err)
	}
}

func TestDeleteRestoreAudited(t *testing.T) {
	e := newEnv(t, nil)
	s := e.connect(keyRW)
	var up uploadOut
	s.mustCall(t, "upload_file", map[string]any{"name": "doomed.txt", "text": "bye"}, &up)
	var del struct {
		DeletedAt  string `json:"deleted_at"`
		PurgeAfter string `json:"purge_after"`
	}
	s.mustCall(t, "delete_file", map[string]any{"id": up.File.ID}, &del)
	if del.DeletedAt == "" || del.PurgeAfter == "" {
		t.Errorf("delete_file = %+v", del)
	}
	s.mustFail(t, "read_file", map[string]any{"id": up.File.ID}, "not_found")
	s.mustFail(t, "delete_file", map[string]any{"id": up.File.ID}, "not_found")
	s.mustCall(t, "restore_file", map[string]any{"id": up.File.ID}, nil)
	s.mustCall(t, "read_file", map[string]any{"id": up.File.ID}, nil)

	entries, err := e.meta.ListAudit(t.Context(), filehub.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range entries {
		if a.Target == up.File.ID || strings.HasSuffix(a.Target, up.File.ID) {
			actions = append(actions, a.Action+" by "+a.Actor+" ("+a.Reason+")")
		}
	}
	want := []string{
		filehub.AuditFileDeleted + " by " + e.keyIDs[keyRW] + " (mcp)",
		filehub.AuditFileRestored + " by " + e.keyIDs[keyRW] + " (mcp)",
	}
	if !slices.Equal(actions, want) {
		t.Errorf("audit = %v, want %v", actions, want)
	}
	// The uploader is the key.
	f, err := e.meta.FindFile(t.Context(), up.File.ID)
	if err != nil || f.OwnerKeyID != e.keyIDs[keyRW] {
		t.Errorf("owner = %v, %v; want %s", f, err, e.keyIDs[keyRW])
	}
}

func TestPushToProvider(t *testing.T) {
	e := newEnv(t, nil)
	s := e.connect(keyRW)
	var up uploadOut
	s.mustCall(t, "upload_file", map[string]any{"name": "ctx.txt", "text": "context for a model"}, &up)
	var first, second mcpserver.PushResult
	s.mustCall(t, "push_to_provider", map[string]any{"id": up.File.ID, "provider": "test"}, &first)
	s.mustCall(t, "push_to_provider", map[string]any{"id": up.File.ID, "provider": "test"}, &second)
	if first.ProviderFileID == "" || first.Reused || second.ProviderFileID != first.ProviderFileID || !second.Reused {
		t.Errorf("pushes = %+v then %+v", first, second)
	}
	if n := e.fp.Uploads(); n != 1 {
		t.Errorf("%d uploads at the provider, want 1", n)
	}
}

func TestCleanupPreviewAndStats(t *testing.T) {
	e := newEnv(t, nil)
	s := e.connect(keyAdmin)
	var a, b uploadOut
	s.mustCall(t, "upload_file", map[string]any{"name": "a.txt", "text": "same content"}, &a)
	s.mustCall(t, "upload_file", map[string]any{"name": "b.txt", "text": "same content"}, nil)
	s.mustCall(t, "upload_file", map[string]any{"name": "c.txt", "text": "other"}, &b)
	s.mustCall(t, "delete_file", map[string]any{"id": b.File.ID}, nil)

	var st mcpserver.StorageStats
	s.mustCall(t, "storage_stats", nil, &st)
	same := int64(len("same content"))
	if st.Files != 2 || st.LogicalBytes != 2*same || st.StoredBytes != same || st.DedupSavingsBytes != same {
		t.Errorf("stats = %+v", st)
	}
	if st.TrashFiles == nil || *st.TrashFiles != 1 || *st.TrashBytes != int64(len("other")) {
		t.Errorf("trash = %v %v", st.TrashFiles, st.TrashBytes)
	}

	var p mcpserver.CleanupPreview
	s.mustCall(t, "cleanup_preview", nil, &p)
	if p.RunID == 0 || p.Status != filehub.RunOK || len(p.Kinds) == 0 {
		t.Errorf("cleanup_preview = %+v", p)
	}
	if _, ok := p.Kinds[filehub.KindTrash]; !ok {
		t.Errorf("cleanup_preview has no trash kind: %+v", p.Kinds)
	}
	// A dry run deletes nothing.
	if n := e.fileCount(); n != 3 {
		t.Errorf("%d files after a dry run, want 3", n)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *mcpserver.Config) { c.RateLimit, c.RateBurst = 0.001, 2 })
	s := e.connect(keyRead)
	s.mustFail(t, "get_file", map[string]any{"id": "f_x"}, "not_found")
	s.mustFail(t, "get_file", map[string]any{"id": "f_x"}, "not_found")
	s.mustFail(t, "get_file", map[string]any{"id": "f_x"}, "rate_limited: rate limit of 0.001 tool calls/s exceeded")
	// Another key has its own budget.
	e.connect(keyRW).mustFail(t, "get_file", map[string]any{"id": "f_x"}, "not_found")
}
