package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
)

var _ filehub.InstanceStore = (*DB)(nil)

// instanceRetention is how long the row of an instance that stopped
// sending heartbeats without saying goodbye (a crash, kill -9) is kept
// before a heartbeat of another instance deletes it. It only bounds the
// table: such a row stopped counting as live a few intervals after its
// last heartbeat.
const instanceRetention = 24 * time.Hour

// HeartbeatInstance records that instance id is alive at now; see
// filehub.InstanceStore. now is the caller's clock, so the instances'
// clocks must agree to well within the interval their callers count as
// live. It also forgets instances silent for a day, so crashed processes
// do not pile up in the table.
func (db *DB) HeartbeatInstance(ctx context.Context, id string, now time.Time) error {
	if id == "" {
		return filehub.Errorf(filehub.EINVALID, "an instance needs an ID")
	}
	return db.tx(ctx, "heartbeat instance", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO instances (id, heartbeat_at) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, id, now); err != nil {
			return mapError(ctx, "heartbeat instance", err)
		}
		_, err := tx.Exec(ctx, `DELETE FROM instances WHERE heartbeat_at < $1`, now.Add(-instanceRetention))
		return mapError(ctx, "forget old instances", err)
	})
}

// LiveInstances counts the instances whose last heartbeat is after since;
// see filehub.InstanceStore.
func (db *DB) LiveInstances(ctx context.Context, since time.Time) (int, error) {
	if db.closed.Load() {
		return 0, errClosed
	}
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM instances WHERE heartbeat_at > $1`, since).Scan(&n)
	return n, mapError(ctx, "count live instances", err)
}

// RemoveInstance forgets instance id; see filehub.InstanceStore.
func (db *DB) RemoveInstance(ctx context.Context, id string) error {
	if db.closed.Load() {
		return errClosed
	}
	_, err := db.pool.Exec(ctx, `DELETE FROM instances WHERE id = $1`, id)
	return mapError(ctx, "remove instance", err)
}
