package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/paging"
)

// trimChunk is the most events one TrimEvents transaction deletes, so that
// a trim of a large backlog never holds many row locks or a long
// transaction.
const trimChunk = 10_000

// insertEvent appends an event in tx. Its id is the next value of the
// 'events' counter row, whose row lock the UPDATE takes and tx holds until
// it ends (see the package doc): it must be the last statement of the
// transaction but for audit entries, and those are appended before it.
//
// The same statement queues a NOTIFY on the schema's event channel (see
// WatchEvents), which PostgreSQL delivers to the listeners when, and only
// if, tx commits: no listener hears of an event it cannot read yet.
func insertEvent(ctx context.Context, tx pgx.Tx, typ string, at time.Time, file, run []byte) error {
	_, err := tx.Exec(ctx, `WITH n AS (UPDATE log_counters SET last = last + 1 WHERE name = 'events' RETURNING last),
		i AS (INSERT INTO events (id, type, time, file, run) SELECT last, $1, $2, $3, $4 FROM n RETURNING id)
		SELECT pg_notify(`+eventChannelSQL+`, id::text) FROM i`,
		typ, at, jsonArg(file), jsonArg(run))
	return mapError(ctx, "insert event", err)
}

// jsonArg passes JSON to a jsonb parameter, nil as NULL.
func jsonArg(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// insertFileEvent records an event of type typ with a snapshot of f.
func insertFileEvent(ctx context.Context, tx pgx.Tx, typ string, f *filehub.File) error {
	b, err := json.Marshal(f)
	if err != nil {
		return filehub.WrapError(filehub.EINTERNAL, "encode file", err)
	}
	return insertEvent(ctx, tx, typ, time.Now(), b, nil)
}

// ListEvents returns up to limit events with ID > afterID, in ID order. A
// limit of 0 or less means 100, a limit above 1000 is capped at 1000.
// Because appends are serialized until commit, an event that becomes
// visible after this call never has an ID at or below one it returned.
func (db *DB) ListEvents(ctx context.Context, afterID int64, limit int) ([]*filehub.Event, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	if limit <= 0 {
		limit = paging.DefaultLimit
	}
	limit = min(limit, paging.MaxLimit)
	rows, err := db.pool.Query(ctx,
		`SELECT id, type, time, file, run FROM events WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, mapError(ctx, "list events", err)
	}
	defer rows.Close()
	var events []*filehub.Event
	for rows.Next() {
		var (
			e         filehub.Event
			file, run []byte
		)
		if err := rows.Scan(&e.ID, &e.Type, &e.Time, &file, &run); err != nil {
			return nil, mapError(ctx, "list events", err)
		}
		e.Time = e.Time.UTC()
		if file != nil {
			e.File = new(filehub.File)
			if err := json.Unmarshal(file, e.File); err != nil {
				return nil, filehub.WrapError(filehub.EINTERNAL, "decode event", fmt.Errorf("event %d: %w", e.ID, err))
			}
		}
		if run != nil {
			e.Run = new(filehub.CleanupRun)
			if err := json.Unmarshal(run, e.Run); err != nil {
				return nil, filehub.WrapError(filehub.EINTERNAL, "decode event", fmt.Errorf("event %d: %w", e.ID, err))
			}
		}
		events = append(events, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(ctx, "list events", err)
	}
	return events, nil
}

// EventBounds returns the lowest retained event id and the highest event id
// ever assigned; see filehub.MetaStore. Both come from one statement, so
// they describe the same snapshot of the log. The highest id is the
// 'events' counter, which only committed appends advance and trims never
// lower.
func (db *DB) EventBounds(ctx context.Context) (oldest, latest int64, err error) {
	if db.closed.Load() {
		return 0, 0, errClosed
	}
	var lo *int64
	err = db.pool.QueryRow(ctx, `SELECT
		(SELECT min(id) FROM events),
		(SELECT last FROM log_counters WHERE name = 'events')`).Scan(&lo, &latest)
	if err != nil {
		return 0, 0, mapError(ctx, "event bounds", err)
	}
	if lo == nil {
		return latest + 1, latest, nil
	}
	return *lo, latest, nil
}

// TrimEvents deletes the events older than before and all but the newest
// keep; see filehub.MetaStore. Like sqlite's, it deletes by id range (so
// the retained ids stay contiguous even if the clock stepped back) in
// transactions of at most 10,000 deletions; deleted counts what the
// finished transactions removed, also when a later one fails. Trimming
// takes no lock appends need.
func (db *DB) TrimEvents(ctx context.Context, before time.Time, keep int) (deleted int64, err error) {
	if db.closed.Load() {
		return 0, errClosed
	}
	for {
		var n int64
		err := db.tx(ctx, "trim events", func(tx pgx.Tx) error {
			n = 0
			var cut *int64
			if !before.IsZero() {
				if err := tx.QueryRow(ctx, `SELECT max(id) FROM events WHERE time < $1`, before).Scan(&cut); err != nil {
					return mapError(ctx, "trim events by age", err)
				}
			}
			if keep >= 0 {
				var byCount int64
				err := tx.QueryRow(ctx, `SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET $1`, keep).Scan(&byCount)
				if err != nil && !errNoRows(err) {
					return mapError(ctx, "trim events by count", err)
				}
				if err == nil && (cut == nil || byCount > *cut) {
					cut = &byCount
				}
			}
			if cut == nil {
				return nil
			}
			tag, err := tx.Exec(ctx, `DELETE FROM events WHERE id IN
				(SELECT id FROM events WHERE id <= $1 ORDER BY id LIMIT $2)`, *cut, trimChunk)
			if err != nil {
				return mapError(ctx, "trim events", err)
			}
			n = tag.RowsAffected()
			return nil
		})
		deleted += n
		if err != nil {
			return deleted, err
		}
		if n < trimChunk {
			return deleted, nil
		}
	}
}
