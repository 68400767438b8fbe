package cleanup

import (
	"context"
	"sync"
	"time"

	"github.com/filehub/filehub"
)

// scanPage is how many blob records a scan reads per query: large enough
// that query overhead vanishes, small enough to keep memory bounded (a few
// MB) whatever the number of blobs.
const scanPage = 10_000

// objectScan is what the merge of the object listing with the blob records
// found. orphan_object, missing_object and unreferenced_blob plan from it;
// the first of them to ask runs it (execution.objectScan).
type objectScan struct {
	// unsupported is set when the blob store cannot list its objects;
	// then nothing else is set.
	unsupported bool

	orphans  []filehub.BlobInfo // objects without a record, older than the blob grace
	missing  []*filehub.Blob    // records whose object is gone
	returned []*filehub.Blob    // records flagged missing whose object is back
	// unref are the unreferenced blobs past the grace, planned from the
	// records the merge reads (if unreferenced_blob is selected), which
	// spares a second pass over them; unrefMerged says it was done.
	unref       []*filehub.Blob
	unrefMerged bool

	records, objects int64 // how many of each the merge read
}

// recordCursor reads every blob record in sum order. The records are read
// a page ahead, in a goroutine of its own, so that reading them overlaps
// with the object walk instead of adding to it (each is about half of a
// scan's time). Memory stays bounded: at most the page being merged, one
// waiting and one being read. close must be called.
type recordCursor struct {
	pages chan []*filehub.Blob
	err   error // the listing's error; set before pages is closed
	stop  context.CancelFunc
	wg    sync.WaitGroup

	page []*filehub.Blob
	idx  int
}

func newRecordCursor(ctx context.Context, store filehub.BlobSweeper) *recordCursor {
	ctx, stop := context.WithCancel(ctx)
	c := &recordCursor{pages: make(chan []*filehub.Blob, 1), stop: stop}
	c.wg.Go(func() {
		defer close(c.pages)
		after := ""
		for {
			page, err := store.ListBlobs(ctx, after, scanPage)
			if err != nil {
				c.err = err
				return
			}
			if len(page) > 0 {
				select {
				case c.pages <- page:
				case <-ctx.Done():
					c.err = ctx.Err()
					return
				}
			}
			if len(page) < scanPage {
				return
			}
			after = page[len(page)-1].SHA256
		}
	})
	return c
}

// next returns the next record, or nil and the listing's error (nil at the
// end).
func (c *recordCursor) next() (*filehub.Blob, error) {
	if c.idx == len(c.page) {
		var ok bool
		if c.page, ok = <-c.pages; !ok {
			c.page = nil
			return nil, c.err
		}
		c.idx = 0
	}
	b := c.page[c.idx]
	c.page[c.idx] = nil // let records merged over be collected
	c.idx++
	return b, nil
}

// close stops the listing and waits for its goroutine.
func (c *recordCursor) close() {
	c.stop()
	c.wg.Wait()
}

// merge is the merge step of a scan: it walks the object listing (in sum
// order) against the record cursor (in sum order), so that memory stays
// bounded whatever the number of blobs. An object without a record is an
// orphan candidate, a record without an object a missing one.
type merge struct {
	ctx   context.Context
	blobs filehub.BlobStore
	recs  *recordCursor
	cur   *filehub.Blob // the record not merged yet; nil at the end
	out   *objectScan

	cutoff                              time.Time // the blob grace's
	wantOrphans, wantMissing, wantUnref bool
}

// advance moves cur to the next record, planning it as an unreferenced
// blob if it is one.
func (m *merge) advance() error {
	b, err := m.recs.next()
	if err != nil {
		return err
	}
	m.cur = b
	if b == nil {
		return nil
	}
	m.out.records++
	// As ListUnreferencedBlobs selects them.
	if m.wantUnref && b.RefCount == 0 && b.UnreferencedSince != nil && !b.UnreferencedSince.After(m.cutoff) {
		m.out.unref = append(m.out.unref, b)
	}
	return nil
}

// visit merges the object sum into the records. info is the object's size
// and time if the listing has them, nil if not: then only an orphan
// candidate is stat'ed, which spares a stat of every object with a record
// (nearly all of them).
func (m *merge) visit(sum string, info *filehub.BlobInfo) error {
	m.out.objects++
	for m.cur != nil && m.cur.SHA256 < sum {
		if err := m.noObject(m.cur); err != nil {
			return err
		}
		if err := m.advance(); err != nil {
			return err
		}
	}
	if m.cur != nil && m.cur.SHA256 == sum {
		if m.wantMissing && m.cur.MissingSince != nil {
			m.out.returned = append(m.out.returned, m.cur)
		}
		return m.advance()
	}
	if !m.wantOrphans {
		return nil
	}
	if info == nil {
		obj, err := m.blobs.Stat(m.ctx, sum)
		if filehub.ErrorCode(err) == filehub.ENOTFOUND {
			return nil // deleted since it was listed
		}
		if err != nil {
			return err
		}
		info = &obj
	}
	if !info.ModTime.After(m.cutoff) {
		m.out.orphans = append(m.out.orphans, *info)
	}
	return nil
}

// noObject handles record b, which the listing did not have.
func (m *merge) noObject(b *filehub.Blob) error {
	if !m.wantMissing {
		return nil
	}
	// The listing may have passed the sum before the object was written
	// (a record committed during the scan): look again.
	_, err := m.blobs.Stat(m.ctx, b.SHA256)
	switch filehub.ErrorCode(err) {
	case "":
		if b.MissingSince != nil {
			m.out.returned = append(m.out.returned, b)
		}
		return nil
	case filehub.ENOTFOUND:
		m.out.missing = append(m.out.missing, b)
		return nil
	}
	return err
}

// finish handles the records after the last object.
func (m *merge) finish() error {
	for m.cur != nil {
		if err := m.noObject(m.cur); err != nil {
			return err
		}
		if err := m.advance(); err != nil {
			return err
		}
	}
	return nil
}

// scanObjects merges the object listing with the blob records; see merge.
// It is run once per run, by the first kind that needs it, and only if
// orphan_object or missing_object is selected.
func (x *execution) scanObjects(ctx context.Context) (*objectScan, error) {
	sumWalker, _ := x.s.blobs.(filehub.SumWalker)
	walker, _ := x.s.blobs.(filehub.BlobWalker)
	if sumWalker == nil && walker == nil {
		return &objectScan{unsupported: true}, nil
	}
	m := &merge{
		ctx: ctx, blobs: x.s.blobs, recs: newRecordCursor(ctx, x.s.store), out: &objectScan{},
		cutoff:      x.now.Add(-time.Duration(x.st.BlobGrace)),
		wantOrphans: x.opts.wants(KindOrphanObject), wantMissing: x.opts.wants(KindMissingObject),
		wantUnref: x.opts.wants(KindUnreferencedBlob),
	}
	defer m.recs.close()
	if err := m.advance(); err != nil {
		return nil, err
	}
	var err error
	if sumWalker != nil {
		err = sumWalker.WalkSums(ctx, func(sum string) error { return m.visit(sum, nil) })
	} else {
		err = walker.Walk(ctx, func(obj filehub.BlobInfo) error { return m.visit(obj.SHA256, &obj) })
	}
	if err != nil {
		return nil, err
	}
	if err := m.finish(); err != nil {
		return nil, err
	}
	m.out.unrefMerged = m.wantUnref
	return m.out, nil
}
