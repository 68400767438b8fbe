package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// trimChunk is the most events one TrimEvents write request deletes. A trim
// of a large backlog is split into several requests so that it never holds
// the writer (and with it every upload) for long.
const trimChunk = 10_000

// EventBounds returns the lowest retained event id and the highest event id
// ever assigned; see filehub.MetaStore. Both come from one statement, so
// they describe the same snapshot of the log.
func (db *DB) EventBounds(ctx context.Context) (oldest, latest int64, err error) {
	if db.closed.Load() {
		return 0, 0, errClosed
	}
	// sqlite_sequence holds the largest id AUTOINCREMENT ever handed out
	// for the table, which survives the deletion of every row: exactly the
	// "latest, even if trimmed" the contract asks for. The table has no
	// row for events until the first insert.
	var lo, hi sql.NullInt64
	// Prepared (readQueryRow): the WebSocket hub asks at every wake-up
	// while no session subscribes, that is after every upload.
	err = db.readQueryRow(ctx, `SELECT
		(SELECT min(id) FROM events),
		(SELECT seq FROM sqlite_sequence WHERE name = 'events')`).Scan(&lo, &hi)
	if err != nil {
		return 0, 0, mapError(ctx, "event bounds", err)
	}
	latest = hi.Int64
	if !lo.Valid {
		return latest + 1, latest, nil
	}
	return lo.Int64, latest, nil
}

// TrimEvents deletes the events older than before and all but the newest
// keep; see filehub.MetaStore. It runs as a series of write requests of at
// most 10,000 deletions each, so that other writes interleave with a large
// trim; deleted counts what the finished requests removed, also when a
// later one fails.
func (db *DB) TrimEvents(ctx context.Context, before time.Time, keep int) (deleted int64, err error) {
	if db.closed.Load() {
		return 0, errClosed
	}
	for {
		var n int64
		err := db.write(ctx, "trim events", func(wctx context.Context, tx *wtx) error {
			// The cut is the highest id to delete: the newest event older
			// than before, or the event just below the newest keep ones,
			// whichever is higher. Deleting by id range also removes events
			// whose time is recent but id is low (the clock stepped back),
			// which keeps the retained log a contiguous id range: clients
			// rely on that for gap detection.
			var cut sql.NullInt64
			if !before.IsZero() {
				if err := tx.queryRow(wctx, `SELECT max(id) FROM events WHERE time < ?`, nanos(before)).Scan(&cut); err != nil {
					return mapError(wctx, "trim events by age", err)
				}
			}
			if keep >= 0 {
				var byCount sql.NullInt64
				err := tx.queryRow(wctx, `SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?`, keep).Scan(&byCount)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return mapError(wctx, "trim events by count", err)
				}
				if byCount.Valid && (!cut.Valid || byCount.Int64 > cut.Int64) {
					cut = byCount
				}
			}
			if !cut.Valid {
				return nil
			}
			res, err := tx.exec(wctx, `DELETE FROM events WHERE id IN
				(SELECT id FROM events WHERE id <= ? ORDER BY id LIMIT ?)`, cut.Int64, trimChunk)
			if err != nil {
				return mapError(wctx, "trim events", err)
			}
			n, err = res.RowsAffected()
			return mapError(wctx, "trim events", err)
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
