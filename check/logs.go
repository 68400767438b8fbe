package check

import (
	"context"
	"fmt"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
)

// logPage is how many events or audit entries are read at once.
const logPage = 1000

// eventLog checks that the retained events have every ID from the oldest
// retained to the latest assigned. Trimming deletes a prefix, so IDs
// below the oldest retained one are not gaps; trimming while the check
// reads moves that bound, so a jump is re-checked against the bounds
// before it is reported.
func (r *run) eventLog(ctx context.Context) error {
	oldest, latest, err := r.meta.EventBounds(ctx)
	if err != nil {
		return fmt.Errorf("event bounds: %w", err)
	}
	next := oldest // the ID expected next
	for next <= latest {
		page, err := r.meta.ListEvents(ctx, next-1, logPage)
		if err != nil {
			return fmt.Errorf("list events: %w", err)
		}
		for _, e := range page {
			if e.ID > next {
				if err := r.eventGap(ctx, next, e.ID-1); err != nil {
					return err
				}
			}
			r.rep.Events++
			next = e.ID + 1
		}
		if len(page) < logPage {
			break
		}
	}
	if next <= latest {
		return r.eventGap(ctx, next, latest)
	}
	return nil
}

// eventGap reports events first..last missing unless they were trimmed
// meanwhile.
func (r *run) eventGap(ctx context.Context, first, last int64) error {
	oldest, _, err := r.meta.EventBounds(ctx)
	if err != nil {
		return fmt.Errorf("event bounds: %w", err)
	}
	if oldest > last {
		return nil
	}
	first = max(first, oldest)
	r.problem(api.CheckProblem{Kind: api.CheckEventGap, FirstID: first, LastID: last,
		Detail: fmt.Sprintf("events %d to %d are missing inside the retained range", first, last)})
	return nil
}

// auditLog checks that audit IDs run from 1 without a gap: the audit log
// is append-only and never trimmed.
func (r *run) auditLog(ctx context.Context) error {
	next := int64(1)
	filter := filehub.AuditFilter{Limit: logPage}
	for {
		page, err := r.meta.ListAudit(ctx, filter)
		if err != nil {
			return fmt.Errorf("list audit: %w", err)
		}
		for _, a := range page {
			if a.ID > next {
				r.problem(api.CheckProblem{Kind: api.CheckAuditGap, FirstID: next, LastID: a.ID - 1,
					Detail: fmt.Sprintf("audit entries %d to %d are missing", next, a.ID-1)})
			}
			r.rep.AuditEntries++
			next = a.ID + 1
		}
		if len(page) < logPage {
			return nil
		}
		filter.AfterID = page[len(page)-1].ID
	}
}
