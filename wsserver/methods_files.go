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
	return fileResult(p, func(id string) (*filehub.File, error) {
		if f := ss.replayedAs(ctx, id, true); f != nil {
			return f, nil
		}
		f, err := ss.srv.files.Delete(ctx, id)
		if filehub.ErrorCode(err) == filehub.ENOTFOUND {
			// The first run, still going on the instance that lost the
			// session, may have deleted it just now.
			if g := ss.replayedAs(ctx, id, true); g != nil {
				return g, nil
			}
		}
		return f, err
	})
}

func (ss *session) filesRestore(ctx context.Context, p *api.FileRequest) (any, *subscription, error) {
	return fileResult(p, func(id string) (*filehub.File, error) {
		if f := ss.replayedAs(ctx, id, false); f != nil {
			return f, nil
		}
		f, err := ss.srv.files.Restore(ctx, id)
		if filehub.ErrorCode(err) == filehub.ENOTFOUND {
			if g := ss.replayedAs(ctx, id, false); g != nil {
				return g, nil
			}
		}
		return f, err
	})
}

// replayedAs returns file id if ctx replays a request that may have run
// (rpc.go, replayable) and the file is already in the state the request
// puts it in (deleted or live): the first run did it, and the answer is
// the file as it is. Otherwise the request runs; if it then finds nothing
// to do, the first run — still going on an instance that lost the session
// — may have done it meanwhile, and the state is looked at again. The
// store's own change is atomic (only a live file is soft-deleted), so the
// effect happens once. (Should another client have undone the first run in
// between, the replay does it again — the window is one crash or
// takeover.)
func (ss *session) replayedAs(ctx context.Context, id string, deleted bool) *filehub.File {
	if !isReplay(ctx) {
		return nil
	}
	f, err := ss.srv.files.Find(ctx, id)
	if err != nil || f.Deleted() != deleted {
		return nil
	}
	return f
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
