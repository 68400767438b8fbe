package sqlite

import (
	"context"
	"time"

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
// filehub.InstanceStore. It also forgets instances silent for a day, so
// crashed processes do not pile up in the table.
func (db *DB) HeartbeatInstance(ctx context.Context, id string, now time.Time) error {
	if id == "" {
		return filehub.Errorf(filehub.EINVALID, "an instance needs an ID")
	}
	return db.write(ctx, "heartbeat instance", func(wctx context.Context, tx *wtx) error {
		if _, err := tx.exec(wctx, `INSERT INTO instances (id, heartbeat_at) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, id, nanos(now)); err != nil {
			return mapError(wctx, "heartbeat instance", err)
		}
		_, err := tx.exec(wctx, `DELETE FROM instances WHERE heartbeat_at < ?`, nanos(now.Add(-instanceRetention)))
		return mapError(wctx, "forget old instances", err)
	})
}

// LiveInstances counts the instances whose last heartbeat is after since;
// see filehub.InstanceStore.
func (db *DB) LiveInstances(ctx context.Context, since time.Time) (int, error) {
	if db.closed.Load() {
		return 0, errClosed
	}
	var n int
	err := db.rdb.QueryRowContext(ctx, `SELECT count(*) FROM instances WHERE heartbeat_at > ?`, nanos(since)).Scan(&n)
	return n, mapError(ctx, "count live instances", err)
}

// RemoveInstance forgets instance id; see filehub.InstanceStore.
func (db *DB) RemoveInstance(ctx context.Context, id string) error {
	return db.write(ctx, "remove instance", func(wctx context.Context, tx *wtx) error {
		_, err := tx.exec(wctx, `DELETE FROM instances WHERE id = ?`, id)
		return mapError(wctx, "remove instance", err)
	})
}
