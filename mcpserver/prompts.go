package mcpserver

import (
	"context"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/filehub/filehub"
)

func (s *Server) addPrompts() {
	s.mcp.AddPrompt(&mcp.Prompt{
		Name:        "summarize_file",
		Title:       "Summarize a file",
		Description: "Ask for a summary of a stored file, with the file embedded.",
		Arguments:   []*mcp.PromptArgument{{Name: "file_id", Description: "the file's id (f_…)", Required: true}},
	}, s.summarizePrompt)
	s.mcp.AddPrompt(&mcp.Prompt{
		Name:        "compare_files",
		Title:       "Compare two files",
		Description: "Ask for a comparison of two stored files, with both embedded.",
		Arguments: []*mcp.PromptArgument{
			{Name: "file_id_a", Description: "the first file's id", Required: true},
			{Name: "file_id_b", Description: "the second file's id", Required: true},
		},
	}, s.comparePrompt)
}

func (s *Server) summarizePrompt(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	if err := checkScope(s.keyOf(req), filehub.ScopeRead, "prompts"); err != nil {
		return nil, protocolError(err, "")
	}
	id := req.Params.Arguments["file_id"]
	f, embed, err := s.embed(ctx, id)
	if err != nil {
		return nil, err
	}
	return &mcp.GetPromptResult{
		Description: "Summarize " + f.Name,
		Messages: []*mcp.PromptMessage{
			{Role: "user", Content: &mcp.TextContent{Text: fmt.Sprintf(
				"Summarize the file %q (%d bytes, %s). Say what it is, its main points, and anything unusual.", f.Name, f.Size, f.ContentType)}},
			{Role: "user", Content: embed},
		},
	}, nil
}

func (s *Server) comparePrompt(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	if err := checkScope(s.keyOf(req), filehub.ScopeRead, "prompts"); err != nil {
		return nil, protocolError(err, "")
	}
	a, ea, err := s.embed(ctx, req.Params.Arguments["file_id_a"])
	if err != nil {
		return nil, err
	}
	b, eb, err := s.embed(ctx, req.Params.Arguments["file_id_b"])
	if err != nil {
		return nil, err
	}
	return &mcp.GetPromptResult{
		Description: fmt.Sprintf("Compare %s and %s", a.Name, b.Name),
		Messages: []*mcp.PromptMessage{
			{Role: "user", Content: &mcp.TextContent{Text: fmt.Sprintf(
				"Compare the files %q and %q: what they have in common, how they differ, and which differences matter.", a.Name, b.Name)}},
			{Role: "user", Content: ea},
			{Role: "user", Content: eb},
		},
	}, nil
}

// embed returns the file id as prompt content: the embedded resource, or a
// resource link when it is too large to embed.
func (s *Server) embed(ctx context.Context, id string) (*filehub.File, mcp.Content, error) {
	if err := checkID(id); err != nil {
		return nil, nil, protocolError(err, "")
	}
	f, c, err := s.contents(ctx, id)
	if filehub.ErrorCode(err) == filehub.ETOOLARGE {
		f, err := s.backend.GetFile(ctx, id)
		if err != nil {
			return nil, nil, protocolError(err, FileURI(id))
		}
		return f, &mcp.ResourceLink{URI: FileURI(f.ID), Name: f.Name, MIMEType: f.ContentType, Size: ptr(f.Size)}, nil
	}
	if err != nil {
		return nil, nil, protocolError(err, FileURI(id))
	}
	return f, &mcp.EmbeddedResource{Resource: c}, nil
}
