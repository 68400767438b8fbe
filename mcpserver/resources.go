package mcpserver

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/filehub/filehub"
)

// resourcePageSize is the page size of resources/list.
const resourcePageSize = 100

func (s *Server) addResources() {
	s.template = &mcp.ResourceTemplate{
		Name:        "file",
		Title:       "A file stored in filehub",
		Description: "A live file's content: text, or a base64 blob for binary content (up to the server's size limit).",
		URITemplate: fileURIPrefix + "{id}",
	}
	s.mcp.AddResourceTemplate(s.template, s.readResource)
}

// listChanged tells every session that the resource list changed. The SDK
// sends resources/list_changed when a resource or template is added;
// adding the same template again changes nothing else (it replaces
// itself), and the SDK debounces notifications that come in bursts.
func (s *Server) listChanged() {
	s.mcp.AddResourceTemplate(s.template, s.readResource)
}

// protocolError returns a JSON-RPC error for failures outside tool calls
// (resources and prompts have no error results).
func protocolError(err error, uri string) error {
	code := int64(jsonrpc.CodeInternalError)
	switch filehub.ErrorCode(err) {
	case filehub.ENOTFOUND:
		code = mcp.CodeResourceNotFound
	case filehub.EINVALID, filehub.EFORBIDDEN, filehub.EUNAUTHORIZED, filehub.ETOOLARGE:
		code = jsonrpc.CodeInvalidParams
	}
	e := &jsonrpc.Error{Code: code, Message: filehub.ErrorCode(err) + ": " + filehub.ErrorMessage(err)}
	if uri != "" {
		e.Data, _ = json.Marshal(map[string]string{"uri": uri})
	}
	return e
}

// parseFileURI returns the file id of a filehub://files/{id} URI.
func parseFileURI(uri string) (string, error) {
	id, ok := strings.CutPrefix(uri, fileURIPrefix)
	if !ok {
		return "", filehub.Errorf(filehub.EINVALID, "not a filehub file URI: %q (want %s{id})", truncate(uri, 80), fileURIPrefix)
	}
	if err := checkID(id); err != nil {
		return "", err
	}
	return id, nil
}

func (s *Server) readResource(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	if err := checkScope(s.keyOf(req), filehub.ScopeRead, "reading resources"); err != nil {
		return nil, protocolError(err, uri)
	}
	id, err := parseFileURI(uri)
	if err != nil {
		return nil, protocolError(err, uri)
	}
	_, c, err := s.contents(ctx, id)
	if err != nil {
		return nil, protocolError(err, uri)
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{c}}, nil
}

// contents reads a live file whole as resource contents: text when it is
// UTF-8 text, a blob otherwise. Returns ETOOLARGE over MaxBlobBytes, and
// ENOTFOUND (saying so) for a deleted or unknown file.
func (s *Server) contents(ctx context.Context, id string) (*filehub.File, *mcp.ResourceContents, error) {
	f, rc, err := s.backend.OpenContent(ctx, id)
	if err != nil {
		if filehub.ErrorCode(err) == filehub.ENOTFOUND {
			return nil, nil, filehub.Errorf(filehub.ENOTFOUND, "file %s not found: it does not exist or is in the trash", id)
		}
		return nil, nil, err
	}
	defer rc.Close()
	if f.Size > s.cfg.MaxBlobBytes {
		return nil, nil, filehub.Errorf(filehub.ETOOLARGE, "file %s is %d bytes, more than the %d bytes served over MCP; read it over HTTP (GET /v1/files/%s/content) or use read_file with max_bytes",
			id, f.Size, s.cfg.MaxBlobBytes, id)
	}
	b, err := io.ReadAll(io.LimitReader(rc, s.cfg.MaxBlobBytes+1))
	if err != nil {
		return nil, nil, filehub.WrapError(filehub.EUNAVAILABLE, "cannot read the file's content", err)
	}
	c := &mcp.ResourceContents{URI: FileURI(f.ID), MIMEType: f.ContentType}
	if isText(f.ContentType) && utf8.Valid(b) {
		c.Text = string(b)
	} else {
		c.Blob = b
	}
	return f, c, nil
}

func (s *Server) listResources(ctx context.Context, key *filehub.APIKey, cursor string) (*mcp.ListResourcesResult, error) {
	if err := checkScope(key, filehub.ScopeRead, "listing resources"); err != nil {
		return nil, protocolError(err, "")
	}
	fs, next, err := s.backend.ListFiles(ctx, ListQuery{Limit: resourcePageSize, Cursor: cursor})
	if err != nil {
		return nil, protocolError(err, "")
	}
	res := &mcp.ListResourcesResult{Resources: make([]*mcp.Resource, 0, len(fs)), NextCursor: next}
	for _, f := range fs {
		res.Resources = append(res.Resources, &mcp.Resource{
			URI: FileURI(f.ID), Name: f.Name, MIMEType: f.ContentType, Size: f.Size,
			Description: fmt.Sprintf("sha256:%s, created %s", f.SHA256, f.CreatedAt.UTC().Format("2006-01-02 15:04:05Z")),
		})
	}
	return res, nil
}

// subscribe accepts a subscription to any well-formed file URI, even of a
// file in the trash, whose restore the subscriber may be waiting for.
func (s *Server) subscribe(ctx context.Context, req *mcp.SubscribeRequest) error {
	if err := checkScope(s.keyOf(req), filehub.ScopeRead, "subscribing to resources"); err != nil {
		return protocolError(err, req.Params.URI)
	}
	if _, err := parseFileURI(req.Params.URI); err != nil {
		return protocolError(err, req.Params.URI)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.SortedFunc(maps.Keys(m), cmp.Compare[string])
}
