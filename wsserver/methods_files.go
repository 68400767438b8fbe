package wsserver

import (
	"context"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
)

// The files.* methods: the same operations as the HTTP API's /v1/files
// routes, on the files service.

func (ss *session) filesList(ctx context.Context, p *api.FilesListRequest) (any, *subscription, error) {
	if p.Limit < 0 {
		return nil, nil, filehub.Errorf(filehub.EINVALID, "params.limit must not be negative")
	}
	list, next, err := ss.srv.files.List(ctx, p.Limit, p.Cursor)
	if err != nil {
		return nil, nil, err
	}
	if list == nil {
		list = []*filehub.File{}
	}
	return api.FilePage{Files: list, NextCursor: next}, nil, nil
}

func (ss *session) filesStat(ctx context.Context, p *api.FileRequest) (any, *subscription, error) {
	return fileResult(p, func(id string) (*filehub.File, error) { return ss.srv.files.Get(ctx, id) })
}

func (ss *session) filesDelete(ctx context.Context, p *api.FileRequest) (any, *subscription, error) {
	return fileResult(p, func(id string) (*filehub.File, error) { return ss.srv.files.Delete(ctx, id) })
}

func (ss *session) filesRestore(ctx context.Context, p *api.FileRequest) (any, *subscription, error) {
	return fileResult(p, func(id string) (*filehub.File, error) { return ss.srv.files.Restore(ctx, id) })
}

// fileResult checks the id and returns the file op returns.
func fileResult(p *api.FileRequest, op func(id string) (*filehub.File, error)) (any, *subscription, error) {
	if p.ID == "" {
		return nil, nil, filehub.Errorf(filehub.EINVALID, "params.id is required")
	}
	f, err := op(p.ID)
	if err != nil {
		return nil, nil, err
	}
	return f, nil, nil
}
