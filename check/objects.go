package check

import (
	"context"
	"fmt"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
)

// objects walks the stored objects and reports those without a blob
// record (orphans): the walk is in sum order, and so is a second scan of
// the records, so the two are merged a page at a time. Orphans are
// notices: a crash between an upload's commit and its transaction leaves
// them, and the cleanup service removes them after its grace period
// (re-checking, inside the store's writer, that no record appeared).
func (r *run) objects(ctx context.Context) error {
	walk := r.walker()
	if walk == nil {
		return nil // the blob store cannot list its objects
	}
	recs := &recordCursor{meta: r.meta, page: r.cfg.PageSize}
	err := walk(ctx, func(sum string) error {
		r.rep.Objects++
		has, err := recs.has(ctx, sum)
		if err != nil {
			return err
		}
		if has {
			return nil
		}
		if _, err := r.meta.FindBlob(ctx, sum); err == nil {
			return nil // recorded since the page was read
		} else if filehub.ErrorCode(err) != filehub.ENOTFOUND {
			return fmt.Errorf("find blob %s: %w", sum, err)
		}
		r.notice(api.CheckProblem{Kind: api.CheckOrphanObject, SHA256: sum,
			Detail: "object without a blob record; the cleanup service deletes it after its blob grace"})
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk objects: %w", err)
	}
	return nil
}

// walker returns the blob store's cheapest walk of its objects' sums, nil
// if it has none.
func (r *run) walker() func(ctx context.Context, fn func(sum string) error) error {
	if w, ok := r.blobs.(filehub.SumWalker); ok {
		return w.WalkSums
	}
	if w, ok := r.blobs.(filehub.BlobWalker); ok {
		return func(ctx context.Context, fn func(string) error) error {
			return w.Walk(ctx, func(b filehub.BlobInfo) error { return fn(b.SHA256) })
		}
	}
	return nil
}

// recordCursor answers "is there a blob record sum?" for ascending sums,
// reading the records a page at a time.
type recordCursor struct {
	meta Store
	page int
	buf  []*filehub.Blob
	last string // the last sum read; "" before the first page
	done bool
}

func (c *recordCursor) has(ctx context.Context, sum string) (bool, error) {
	for {
		for len(c.buf) > 0 && c.buf[0].SHA256 < sum {
			c.buf = c.buf[1:]
		}
		if len(c.buf) > 0 {
			return c.buf[0].SHA256 == sum, nil
		}
		if c.done {
			return false, nil
		}
		page, err := c.meta.ListBlobs(ctx, c.last, c.page)
		if err != nil {
			return false, fmt.Errorf("list blobs: %w", err)
		}
		if len(page) < c.page {
			c.done = true
		}
		if len(page) > 0 {
			c.last = page[len(page)-1].SHA256
		}
		c.buf = page
	}
}
