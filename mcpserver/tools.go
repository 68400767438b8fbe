package mcpserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/filehub/filehub"
)

// FileInfo is a file's metadata as the tools report it.
type FileInfo struct {
	ID          string `json:"id"`
	URI         string `json:"uri" jsonschema:"the file's MCP resource URI"`
	Name        string `json:"name"`
	Size        int64  `json:"size" jsonschema:"size in bytes"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"content_type"`
	CreatedAt   string `json:"created_at" jsonschema:"RFC 3339"`
	DeletedAt   string `json:"deleted_at,omitempty" jsonschema:"set for a file in the trash (RFC 3339)"`
	PurgeAfter  string `json:"purge_after,omitempty" jsonschema:"when a file in the trash may be purged for good (RFC 3339)"`
}

func fileInfo(f *filehub.File) FileInfo {
	fi := FileInfo{
		ID: f.ID, URI: FileURI(f.ID), Name: f.Name, Size: f.Size, SHA256: f.SHA256,
		ContentType: f.ContentType, CreatedAt: f.CreatedAt.UTC().Format(time.RFC3339Nano),
	}
	if f.DeletedAt != nil {
		fi.DeletedAt = f.DeletedAt.UTC().Format(time.RFC3339Nano)
	}
	if f.PurgeAfter != nil {
		fi.PurgeAfter = f.PurgeAfter.UTC().Format(time.RFC3339Nano)
	}
	return fi
}

func describe(f *filehub.File) string {
	s := fmt.Sprintf("%s  %s  %d bytes  %s  sha256:%s", f.ID, f.Name, f.Size, f.ContentType, f.SHA256)
	if f.DeletedAt != nil {
		s += "  (in the trash)"
	}
	return s
}

// text returns a tool result whose content is the text rendering; the SDK
// adds the structured output.
func text(format string, args ...any) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf(format, args...)}}}
}

func ptr[T any](v T) *T { return &v }

// Inputs and outputs of the tools. Fields with omitempty are optional.
type (
	ListFilesIn struct {
		Cursor         string `json:"cursor,omitempty" jsonschema:"next_cursor of a previous page; empty for the first page"`
		Limit          int    `json:"limit,omitempty" jsonschema:"page size, 1 to 1000 (default 50)"`
		NamePrefix     string `json:"name_prefix,omitempty" jsonschema:"only files whose name starts with this"`
		IncludeDeleted bool   `json:"include_deleted,omitempty" jsonschema:"also list files in the trash (admin scope)"`
	}
	ListFilesOut struct {
		Files      []FileInfo `json:"files"`
		NextCursor string     `json:"next_cursor,omitempty" jsonschema:"pass as cursor for the next page; absent on the last page"`
	}
	FileIDIn struct {
		ID string `json:"id" jsonschema:"the file's id (f_…)"`
	}
	ReadFileIn struct {
		ID       string `json:"id" jsonschema:"the file's id (f_…)"`
		MaxBytes int64  `json:"max_bytes,omitempty" jsonschema:"most bytes of text to return (default 262144)"`
	}
	ReadFileOut struct {
		File FileInfo `json:"file"`
		// Kind is text (Text holds the content), blob (the content is an
		// embedded resource) or link (too large to embed: a resource link).
		Kind      string `json:"kind" jsonschema:"text, blob or link"`
		Text      string `json:"text,omitempty"`
		Truncated bool   `json:"truncated" jsonschema:"true when text holds only the first max_bytes of the file"`
	}
	UploadFileIn struct {
		Name   string `json:"name" jsonschema:"the file's name"`
		Text   string `json:"text,omitempty" jsonschema:"the content as UTF-8 text"`
		Base64 string `json:"base64,omitempty" jsonschema:"the content, base64-encoded (standard alphabet); give text or base64"`
	}
	UploadFileOut struct {
		File         FileInfo `json:"file"`
		Deduplicated bool     `json:"deduplicated" jsonschema:"true when the content was already stored"`
	}
	PushIn struct {
		ID       string `json:"id" jsonschema:"the file's id (f_…)"`
		Provider string `json:"provider" jsonschema:"a configured provider's name, e.g. kimi, glm or openai"`
	}
	NoIn struct{}
)

// addTools registers the tools: the one table of their names, scopes,
// annotations and handlers.
func (s *Server) addTools() {
	closed := ptr(false) // no tool but push_to_provider reaches outside filehub
	addTool(s, &mcp.Tool{
		Name: "list_files", Title: "List files",
		Description: "List stored files, oldest first, one page at a time (cursor, limit), optionally only those whose name starts with name_prefix.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: closed},
	}, filehub.ScopeRead, s.listFiles)
	addTool(s, &mcp.Tool{
		Name: "get_file", Title: "Get file metadata",
		Description: "Return a file's metadata: name, size, SHA-256, content type, creation time.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: closed},
	}, filehub.ScopeRead, s.getFile)
	addTool(s, &mcp.Tool{
		Name: "read_file", Title: "Read file content",
		Description: "Return a file's content: text up to max_bytes (default 256 KiB, with truncated set when cut), " +
			"small binary files as an embedded resource, larger ones as a resource link.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: closed},
	}, filehub.ScopeRead, s.readFile)
	addTool(s, &mcp.Tool{
		Name: "upload_file", Title: "Upload a file",
		Description: "Store content as a new file: name plus either text or base64. Identical content is stored once (deduplicated).",
		// Each call adds a file; nothing existing is changed.
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), IdempotentHint: false, OpenWorldHint: closed},
	}, filehub.ScopeWrite, s.uploadFile)
	addTool(s, &mcp.Tool{
		Name: "delete_file", Title: "Delete a file",
		Description: "Move a file to the trash; it can be restored with restore_file until its purge_after time.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: closed},
	}, filehub.ScopeWrite, s.deleteFile)
	addTool(s, &mcp.Tool{
		Name: "restore_file", Title: "Restore a file",
		Description: "Take a deleted file back out of the trash.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), IdempotentHint: true, OpenWorldHint: closed},
	}, filehub.ScopeWrite, s.restoreFile)
	addTool(s, &mcp.Tool{
		Name: "push_to_provider", Title: "Push a file to a model provider",
		Description: "Make sure a file's content is stored at a model provider's files API and return the provider's file id; " +
			"content the provider already has is reused, not uploaded again.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), IdempotentHint: true, OpenWorldHint: ptr(true)},
	}, filehub.ScopeWrite, s.push)
	addTool(s, &mcp.Tool{
		Name: "cleanup_preview", Title: "Preview a cleanup",
		Description: "Run the cleanup as a dry run (nothing is deleted; the run is recorded in the cleanup history) " +
			"and summarise per kind what a real run would delete.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: closed},
	}, filehub.ScopeAdmin, s.cleanupPreview)
	addTool(s, &mcp.Tool{
		Name: "storage_stats", Title: "Storage statistics",
		Description: "Count files, logical bytes, stored bytes, deduplication savings, the trash, and each provider account's files against its quota.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: closed},
	}, filehub.ScopeRead, s.storageStats)
}

// maxScan bounds the files one list_files call with a name prefix looks
// at, so a prefix nothing matches cannot make one call scan everything.
const maxScan = 10000

func (s *Server) listFiles(ctx context.Context, req *mcp.CallToolRequest, in ListFilesIn) (*mcp.CallToolResult, ListFilesOut, error) {
	out := ListFilesOut{Files: []FileInfo{}}
	limit := in.Limit
	if limit == 0 {
		limit = 50
	}
	if limit < 1 || limit > 1000 {
		return nil, out, filehub.Errorf(filehub.EINVALID, "limit must be from 1 to 1000, not %d", in.Limit)
	}
	if in.IncludeDeleted {
		if err := checkScope(s.keyOf(req), filehub.ScopeAdmin, "include_deleted"); err != nil {
			return nil, out, err
		}
	}
	// With a prefix, pages are read until limit files match, each page no
	// larger than what is still wanted, so that the cursor returned is
	// always a page boundary of the backend's own listing.
	cursor, scanned := in.Cursor, 0
	for {
		fs, next, err := s.backend.ListFiles(ctx, ListQuery{Limit: limit - len(out.Files), Cursor: cursor, IncludeDeleted: in.IncludeDeleted})
		if err != nil {
			return nil, out, err
		}
		scanned += len(fs)
		for _, f := range fs {
			if strings.HasPrefix(f.Name, in.NamePrefix) {
				out.Files = append(out.Files, fileInfo(f))
			}
		}
		cursor = next
		if next == "" || len(out.Files) >= limit || scanned >= maxScan {
			break
		}
	}
	out.NextCursor = cursor
	var b strings.Builder
	fmt.Fprintf(&b, "%d files", len(out.Files))
	if out.NextCursor != "" {
		fmt.Fprintf(&b, " (more: cursor %s)", out.NextCursor)
	}
	b.WriteString("\n")
	for _, f := range out.Files {
		fmt.Fprintf(&b, "%s  %s  %d bytes  %s\n", f.ID, f.Name, f.Size, f.ContentType)
	}
	return text("%s", b.String()), out, nil
}

func (s *Server) getFile(ctx context.Context, _ *mcp.CallToolRequest, in FileIDIn) (*mcp.CallToolResult, FileInfo, error) {
	if err := checkID(in.ID); err != nil {
		return nil, FileInfo{}, err
	}
	f, err := s.backend.GetFile(ctx, in.ID)
	if err != nil {
		return nil, FileInfo{}, err
	}
	return text("%s", describe(f)), fileInfo(f), nil
}

func (s *Server) readFile(ctx context.Context, _ *mcp.CallToolRequest, in ReadFileIn) (*mcp.CallToolResult, ReadFileOut, error) {
	var out ReadFileOut
	if err := checkID(in.ID); err != nil {
		return nil, out, err
	}
	maxBytes := in.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultReadBytes
	}
	if maxBytes < 1 || maxBytes > s.cfg.MaxReadBytes {
		return nil, out, filehub.Errorf(filehub.EINVALID, "max_bytes must be from 1 to %d, not %d", s.cfg.MaxReadBytes, in.MaxBytes)
	}
	f, rc, err := s.backend.OpenContent(ctx, in.ID)
	if err != nil {
		return nil, out, err
	}
	defer rc.Close()
	out.File = fileInfo(f)
	var head []byte // what was read of the content so far
	if isText(f.ContentType) {
		// One byte more than asked tells whether the file goes on.
		if head, err = io.ReadAll(io.LimitReader(rc, maxBytes+1)); err != nil {
			return nil, out, filehub.WrapError(filehub.EUNAVAILABLE, "cannot read the file's content", err)
		}
		b := head
		if out.Truncated = int64(len(b)) > maxBytes; out.Truncated {
			b = trimToRune(b[:maxBytes])
		}
		if utf8.Valid(b) {
			out.Kind, out.Text = "text", string(b)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: out.Text}}}, out, nil
		}
		// Labelled text but not UTF-8: hand it over as bytes.
		out.Truncated = false
	}
	if f.Size > s.cfg.MaxBlobBytes {
		out.Kind = "link"
		return &mcp.CallToolResult{Content: []mcp.Content{
			&mcp.TextContent{Text: fmt.Sprintf("%s is %d bytes of %s, more than the %d bytes embedded here; read it as the resource %s or over HTTP (GET /v1/files/%s/content).",
				f.Name, f.Size, f.ContentType, s.cfg.MaxBlobBytes, FileURI(f.ID), f.ID)},
			&mcp.ResourceLink{URI: FileURI(f.ID), Name: f.Name, MIMEType: f.ContentType, Size: ptr(f.Size)},
		}}, out, nil
	}
	rest, err := io.ReadAll(io.LimitReader(rc, s.cfg.MaxBlobBytes+1-int64(len(head))))
	if err != nil {
		return nil, out, filehub.WrapError(filehub.EUNAVAILABLE, "cannot read the file's content", err)
	}
	out.Kind = "blob"
	return &mcp.CallToolResult{Content: []mcp.Content{
		&mcp.TextContent{Text: fmt.Sprintf("%s: %d bytes of %s, embedded as a resource.", f.Name, f.Size, f.ContentType)},
		&mcp.EmbeddedResource{Resource: &mcp.ResourceContents{URI: FileURI(f.ID), MIMEType: f.ContentType, Blob: append(head, rest...)}},
	}}, out, nil
}

// trimToRune cuts b before a UTF-8 sequence that the truncation split.
func trimToRune(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		r, size := utf8.DecodeLastRune(b)
		if r != utf8.RuneError || size != 1 {
			return b
		}
		b = b[:len(b)-1]
	}
	return b
}

// isText reports whether a sniffed content type is text a model can read.
func isText(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if strings.HasPrefix(mt, "text/") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/x-ndjson",
		"application/yaml", "application/toml", "application/x-sh", "image/svg+xml":
		return true
	}
	return strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml")
}

func (s *Server) uploadFile(ctx context.Context, _ *mcp.CallToolRequest, in UploadFileIn) (*mcp.CallToolResult, UploadFileOut, error) {
	var out UploadFileOut
	if strings.TrimSpace(in.Name) == "" {
		return nil, out, filehub.Errorf(filehub.EINVALID, "name must not be empty")
	}
	var data []byte
	switch {
	case in.Text != "" && in.Base64 != "":
		return nil, out, filehub.Errorf(filehub.EINVALID, "give the content as text or as base64, not both")
	case in.Base64 != "":
		// Refuse by the encoded length before decoding anything.
		if int64(base64.StdEncoding.DecodedLen(len(in.Base64))) > s.cfg.MaxUpload+2 {
			return nil, out, s.tooLarge(int64(base64.StdEncoding.DecodedLen(len(in.Base64))))
		}
		enc := base64.StdEncoding
		if !strings.HasSuffix(in.Base64, "=") && len(in.Base64)%4 != 0 {
			enc = base64.RawStdEncoding
		}
		b, err := enc.Strict().DecodeString(in.Base64)
		if err != nil {
			return nil, out, filehub.Errorf(filehub.EINVALID, "base64 is not valid standard base64: %v", err)
		}
		data = b
	default:
		data = []byte(in.Text)
	}
	if int64(len(data)) > s.cfg.MaxUpload {
		return nil, out, s.tooLarge(int64(len(data)))
	}
	f, dedup, err := s.backend.Upload(ctx, in.Name, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, out, err
	}
	out.File, out.Deduplicated = fileInfo(f), dedup
	note := ""
	if dedup {
		note = " (content already stored: deduplicated)"
	}
	return text("stored %s%s", describe(f), note), out, nil
}

func (s *Server) tooLarge(n int64) error {
	return filehub.Errorf(filehub.ETOOLARGE, "content of %d bytes exceeds the MCP upload limit of %d bytes; upload larger files over HTTP (POST /v1/files)", n, s.cfg.MaxUpload)
}

func (s *Server) deleteFile(ctx context.Context, _ *mcp.CallToolRequest, in FileIDIn) (*mcp.CallToolResult, FileInfo, error) {
	if err := checkID(in.ID); err != nil {
		return nil, FileInfo{}, err
	}
	f, err := s.backend.Delete(ctx, in.ID)
	if err != nil {
		return nil, FileInfo{}, err
	}
	fi := fileInfo(f)
	return text("moved %s (%s) to the trash; restorable until %s", f.ID, f.Name, fi.PurgeAfter), fi, nil
}

func (s *Server) restoreFile(ctx context.Context, _ *mcp.CallToolRequest, in FileIDIn) (*mcp.CallToolResult, FileInfo, error) {
	if err := checkID(in.ID); err != nil {
		return nil, FileInfo{}, err
	}
	f, err := s.backend.Restore(ctx, in.ID)
	if err != nil {
		return nil, FileInfo{}, err
	}
	return text("restored %s", describe(f)), fileInfo(f), nil
}

func (s *Server) push(ctx context.Context, _ *mcp.CallToolRequest, in PushIn) (*mcp.CallToolResult, PushResult, error) {
	if err := checkID(in.ID); err != nil {
		return nil, PushResult{}, err
	}
	if in.Provider == "" {
		return nil, PushResult{}, filehub.Errorf(filehub.EINVALID, "provider must not be empty")
	}
	res, err := s.backend.Push(ctx, in.ID, in.Provider)
	if err != nil {
		return nil, PushResult{}, err
	}
	how := "uploaded"
	if res.Reused {
		how = "already there, reused"
	}
	return text("%s at %s: provider file id %s (%s)", in.ID, res.Provider, res.ProviderFileID, how), *res, nil
}

func (s *Server) cleanupPreview(ctx context.Context, _ *mcp.CallToolRequest, _ NoIn) (*mcp.CallToolResult, CleanupPreview, error) {
	p, err := s.backend.CleanupPreview(ctx)
	if err != nil {
		return nil, CleanupPreview{}, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cleanup dry run %d: %s; a real run would free %d bytes\n", p.RunID, p.Status, p.BytesFreed)
	if p.Error != "" {
		fmt.Fprintf(&b, "note: %s\n", p.Error)
	}
	for _, k := range sortedKeys(p.Kinds) {
		kp := p.Kinds[k]
		fmt.Fprintf(&b, "%-18s found %d, would delete %d (%d bytes), skipped %d\n", k, kp.Found, kp.WouldDelete, kp.Bytes, kp.Skipped)
	}
	return text("%s", b.String()), *p, nil
}

func (s *Server) storageStats(ctx context.Context, _ *mcp.CallToolRequest, _ NoIn) (*mcp.CallToolResult, StorageStats, error) {
	st, err := s.backend.StorageStats(ctx)
	if err != nil {
		return nil, StorageStats{}, err
	}
	if st.Providers == nil {
		st.Providers = []ProviderUsage{}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d files, %d bytes; %d bytes stored (deduplication saves %d bytes)\n", st.Files, st.LogicalBytes, st.StoredBytes, st.DedupSavingsBytes)
	if st.TrashFiles != nil {
		fmt.Fprintf(&b, "trash: %d files, %d bytes\n", *st.TrashFiles, *st.TrashBytes)
	}
	for _, p := range st.Providers {
		fmt.Fprintf(&b, "provider %s: %d files of a quota of %d\n", p.Provider, p.Files, p.Quota)
	}
	for _, n := range st.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return text("%s", b.String()), *st, nil
}
