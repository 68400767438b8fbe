package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
)

var (
	_ filehub.WSSessionStore  = (*DB)(nil)
	_ filehub.WSSessionLister = (*DB)(nil)
)

// wsSessionColumns are the columns scanWSSession reads, in order.
const wsSessionColumns = `id, key_id, token_hash, prev_token_hash, epoch, owner, in_seq, out_seq, client_acked,
	subscribed, event_cursor, created_at, updated_at, detached_at`

func scanWSSession(s scanner) (*filehub.WSSession, error) {
	var (
		ws       filehub.WSSession
		detached *time.Time
	)
	if err := s.Scan(&ws.ID, &ws.KeyID, &ws.TokenHash, &ws.PrevTokenHash, &ws.Epoch, &ws.Owner, &ws.InSeq,
		&ws.OutSeq, &ws.ClientAcked, &ws.Subscribed, &ws.EventCursor, &ws.CreatedAt, &ws.UpdatedAt, &detached); err != nil {
		return nil, err
	}
	ws.CreatedAt = ws.CreatedAt.UTC()
	ws.UpdatedAt = ws.UpdatedAt.UTC()
	if detached != nil {
		ws.DetachedAt = detached.UTC()
	}
	return &ws, nil
}

// detachedAt stores a zero DetachedAt (attached) as NULL.
func detachedAt(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// CreateWSSession stores a new session; see filehub.WSSessionStore.
func (db *DB) CreateWSSession(ctx context.Context, s *filehub.WSSession) error {
	if err := s.Validate(); err != nil {
		return err
	}
	updated := s.UpdatedAt
	if updated.IsZero() {
		updated = s.CreatedAt
	}
	return db.tx(ctx, "create ws session", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO ws_sessions (`+wsSessionColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			s.ID, s.KeyID, s.TokenHash, s.PrevTokenHash, s.Epoch, s.Owner, s.InSeq, s.OutSeq, s.ClientAcked,
			s.Subscribed, s.EventCursor, s.CreatedAt, updated, detachedAt(s.DetachedAt))
		if err != nil {
			return mapError(ctx, "create ws session", err)
		}
		var b wsBatch
		for _, f := range s.Out {
			if f.Seq > s.ClientAcked {
				b.addFrame(s.ID, f)
			}
		}
		for _, r := range dedupResults(s.Results) {
			b.putResult(s.ID, r)
		}
		return b.send(ctx, tx, "create ws session")
	})
}

// ClaimWSSession takes a session over; see filehub.WSSessionStore. The
// UPDATE locks the row until the claim commits, so concurrent claims (on any
// instance) queue up and each gets its own epoch, and the frames and results
// read after it are those of the claimed epoch: a save fenced by an older
// epoch cannot change them any more.
func (db *DB) ClaimWSSession(ctx context.Context, c filehub.WSClaim, now time.Time) (*filehub.WSSession, error) {
	if !c.Valid() {
		return nil, filehub.Errorf(filehub.EINVALID, "a WebSocket session claim needs an id, an owner, a key and a token hash")
	}
	id := c.ID
	var aliveAfter *time.Time
	if !c.AliveAfter.IsZero() {
		aliveAfter = &c.AliveAfter
	}
	var ws *filehub.WSSession
	err := db.tx(ctx, "claim ws session", func(tx pgx.Tx) error {
		if err := boundIdleInTx(ctx, tx); err != nil {
			return mapError(ctx, "claim ws session", err)
		}
		s, err := scanWSSession(tx.QueryRow(ctx, `UPDATE ws_sessions
			SET epoch = epoch + 1, owner = $1, detached_at = NULL, updated_at = $2
			WHERE id = $3 AND key_id = $4 AND (token_hash = $5 OR prev_token_hash = $5)
				AND ($6::timestamptz IS NULL OR coalesce(detached_at, updated_at) >= $6)
			RETURNING `+wsSessionColumns, c.Owner, now, id, c.KeyID, c.TokenHash, aliveAfter))
		if errNoRows(err) {
			var expired bool
			switch err := tx.QueryRow(ctx, `SELECT $2::timestamptz IS NOT NULL AND coalesce(detached_at, updated_at) < $2
				FROM ws_sessions WHERE id = $1`, id, aliveAfter).Scan(&expired); {
			case err == nil && expired:
				return fmt.Errorf("claim ws session %s: %w", id, filehub.ErrWSSessionExpired)
			case err == nil:
				return wsClaimRefused(id)
			case !errNoRows(err):
				return mapError(ctx, "claim ws session", err)
			}
			return filehub.Errorf(filehub.ENOTFOUND, "WebSocket session %s not found", id)
		}
		if err != nil {
			return mapError(ctx, "claim ws session", err)
		}
		rows, _ := tx.Query(ctx, `SELECT seq, data FROM ws_session_frames WHERE session_id = $1 ORDER BY seq`, id)
		s.Out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (filehub.WSFrame, error) {
			var f filehub.WSFrame
			err := r.Scan(&f.Seq, &f.Data)
			return f, err
		})
		if err != nil {
			return mapError(ctx, "load ws session frames", err)
		}
		rows, _ = tx.Query(ctx, `SELECT request_id, body FROM ws_session_results WHERE session_id = $1 ORDER BY pos`, id)
		s.Results, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (filehub.WSResult, error) {
			var res filehub.WSResult
			err := r.Scan(&res.ID, &res.Body)
			return res, err
		})
		if err != nil {
			return mapError(ctx, "load ws session results", err)
		}
		if len(s.Out) == 0 {
			s.Out = nil
		}
		if len(s.Results) == 0 {
			s.Results = nil
		}
		ws = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ws, nil
}

// SaveWSSessions applies a group commit's updates; see
// filehub.WSSessionStore. However many sessions it saves, it costs four
// round trips: BEGIN, one UPDATE of every session row from arrays (fenced
// by epoch; the ids it returns are the sessions saved), one pipelined batch
// of at most four statements for every saved session's frames and
// results, and COMMIT. pgx prepares each statement once per connection.
func (db *DB) SaveWSSessions(ctx context.Context, updates []filehub.WSSessionUpdate) ([]string, error) {
	if len(updates) == 0 {
		return nil, nil
	}
	if err := filehub.ValidateWSUpdates(updates); err != nil {
		return nil, err
	}
	n := len(updates)
	var (
		ids             = make([]string, n)
		epochs          = make([]int64, n)
		tokens, prevs   = make([][]byte, n), make([][]byte, n)
		inSeqs, outSeqs = make([]int64, n), make([]int64, n)
		acked, cursors  = make([]int64, n), make([]int64, n)
		subscribed      = make([]bool, n)
		updatedAt       = make([]time.Time, n)
		detached        = make([]*time.Time, n)
		lost            []string
	)
	for i := range updates {
		u := &updates[i]
		ids[i], epochs[i], tokens[i], prevs[i] = u.ID, u.Epoch, u.TokenHash, u.PrevTokenHash
		inSeqs[i], outSeqs[i], acked[i], cursors[i] = u.InSeq, u.OutSeq, u.ClientAcked, u.EventCursor
		subscribed[i], updatedAt[i], detached[i] = u.Subscribed, u.UpdatedAt, detachedAt(u.DetachedAt)
	}
	err := db.tx(ctx, "save ws sessions", func(tx pgx.Tx) error {
		if err := boundIdleInTx(ctx, tx); err != nil {
			return mapError(ctx, "save ws sessions", err)
		}
		rows, _ := tx.Query(ctx, `UPDATE ws_sessions s SET token_hash = u.token_hash, prev_token_hash = u.prev_token_hash,
				in_seq = u.in_seq, out_seq = u.out_seq, client_acked = u.client_acked, subscribed = u.subscribed,
				event_cursor = u.event_cursor, updated_at = u.updated_at, detached_at = u.detached_at
			FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bytea[], $5::bigint[], $6::bigint[], $7::bigint[],
				$8::boolean[], $9::bigint[], $10::timestamptz[], $11::timestamptz[])
				AS u(id, epoch, token_hash, prev_token_hash, in_seq, out_seq, client_acked, subscribed, event_cursor,
				updated_at, detached_at)
			WHERE s.id = u.id AND s.epoch = u.epoch
			RETURNING s.id`,
			ids, epochs, tokens, prevs, inSeqs, outSeqs, acked, subscribed, cursors, updatedAt, detached)
		savedIDs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return mapError(ctx, "save ws sessions", err)
		}
		saved := make(map[string]bool, len(savedIDs))
		for _, id := range savedIDs {
			saved[id] = true
		}
		lost = lost[:0] // a retried transaction starts over
		var b wsBatch
		for i := range updates {
			u := &updates[i]
			if !saved[u.ID] {
				lost = append(lost, u.ID)
				continue
			}
			if u.ClientAcked > 0 {
				b.ackIDs = append(b.ackIDs, u.ID)
				b.ackSeqs = append(b.ackSeqs, u.ClientAcked)
			}
			for _, f := range u.AddOut {
				if f.Seq > u.ClientAcked { // else acknowledged before it was ever saved
					b.addFrame(u.ID, f)
				}
			}
			for _, r := range dedupResults(u.PutResults) {
				b.putResult(u.ID, r)
			}
			for _, id := range u.DropResults {
				b.dropIDs = append(b.dropIDs, u.ID)
				b.dropReqs = append(b.dropReqs, id)
			}
		}
		return b.send(ctx, tx, "save ws sessions")
	})
	if err != nil {
		return nil, err
	}
	return lost, nil
}

// wsBatch collects the frame and result changes of many sessions as
// arrays, one statement per kind of change.
type wsBatch struct {
	ackIDs            []string
	ackSeqs           []int64
	frameIDs          []string
	frameSeqs         []int64
	frameData         [][]byte
	putIDs, putReqs   []string
	putBodies         [][]byte
	dropIDs, dropReqs []string
}

func (b *wsBatch) addFrame(id string, f filehub.WSFrame) {
	b.frameIDs = append(b.frameIDs, id)
	b.frameSeqs = append(b.frameSeqs, f.Seq)
	b.frameData = append(b.frameData, f.Data)
}

func (b *wsBatch) putResult(id string, r filehub.WSResult) {
	b.putIDs = append(b.putIDs, id)
	b.putReqs = append(b.putReqs, r.ID)
	b.putBodies = append(b.putBodies, r.Body)
}

// send runs the collected statements in one round trip, in the order the
// store's contract gives them: acknowledged frames are deleted, new frames
// inserted (a frame's bytes never change for its seq, so one inserted
// again is a no-op: a saver that did not learn whether a save committed
// can send it again), results upserted in order (an existing id keeps its
// position) and dropped.
func (b *wsBatch) send(ctx context.Context, tx pgx.Tx, op string) error {
	batch := &pgx.Batch{}
	if len(b.ackIDs) > 0 {
		batch.Queue(`DELETE FROM ws_session_frames f USING unnest($1::text[], $2::bigint[]) AS a(id, acked)
			WHERE f.session_id = a.id AND f.seq <= a.acked`, b.ackIDs, b.ackSeqs)
	}
	if len(b.frameIDs) > 0 {
		batch.Queue(`INSERT INTO ws_session_frames (session_id, seq, data)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])
			ON CONFLICT (session_id, seq) DO NOTHING`, b.frameIDs, b.frameSeqs, b.frameData)
	}
	if len(b.putIDs) > 0 {
		batch.Queue(`INSERT INTO ws_session_results (session_id, request_id, body)
			SELECT id, req, body FROM unnest($1::text[], $2::text[], $3::bytea[]) WITH ORDINALITY AS r(id, req, body, n)
			ORDER BY n
			ON CONFLICT (session_id, request_id) DO UPDATE SET body = excluded.body`, b.putIDs, b.putReqs, b.putBodies)
	}
	if len(b.dropIDs) > 0 {
		batch.Queue(`DELETE FROM ws_session_results r USING unnest($1::text[], $2::text[]) AS d(id, req)
			WHERE r.session_id = d.id AND r.request_id = d.req`, b.dropIDs, b.dropReqs)
	}
	if batch.Len() == 0 {
		return nil
	}
	return mapError(ctx, op, tx.SendBatch(ctx, batch).Close())
}

// dedupResults merges puts of one request id within one update (an upsert
// cannot touch a row twice in one statement): the first put's position,
// the last one's body, as applying them one by one would give.
func dedupResults(rs []filehub.WSResult) []filehub.WSResult {
	if len(rs) < 2 {
		return rs
	}
	at := make(map[string]int, len(rs))
	var out []filehub.WSResult
	for _, r := range rs {
		if i, ok := at[r.ID]; ok {
			out[i].Body = r.Body
			continue
		}
		at[r.ID] = len(out)
		out = append(out, r)
	}
	return out
}

// DeleteWSSession removes a session; see filehub.WSSessionStore. Its frames
// and results go with it (ON DELETE CASCADE).
func (db *DB) DeleteWSSession(ctx context.Context, id string, epoch int64) error {
	return db.tx(ctx, "delete ws session", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM ws_sessions WHERE id = $1 AND ($2 = 0 OR epoch = $2)`, id, epoch)
		return mapError(ctx, "delete ws session", err)
	})
}

// ExpireWSSessions deletes sessions detached too long; see
// filehub.WSSessionStore. The outer condition is checked again on the
// locked row, so a session claimed meanwhile (detached_at cleared) is
// never deleted; rows another transaction holds (a claim in progress) are
// skipped for the next run.
func (db *DB) ExpireWSSessions(ctx context.Context, detachedBefore time.Time, limit int) ([]string, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	var ids []string
	err := db.tx(ctx, "expire ws sessions", func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `DELETE FROM ws_sessions WHERE id IN (
				SELECT id FROM ws_sessions WHERE coalesce(detached_at, updated_at) < $1
				ORDER BY coalesce(detached_at, updated_at), id LIMIT $2 FOR UPDATE SKIP LOCKED)
			AND coalesce(detached_at, updated_at) < $1 RETURNING id`, detachedBefore, lim)
		var err error
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return mapError(ctx, "expire ws sessions", err)
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// ListExpiredWSSessions lists the sessions ExpireWSSessions would delete;
// see filehub.WSSessionLister.
func (db *DB) ListExpiredWSSessions(ctx context.Context, detachedBefore time.Time, limit int) ([]*filehub.WSSession, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, _ := db.pool.Query(ctx, `SELECT `+wsSessionColumns+` FROM ws_sessions
		WHERE coalesce(detached_at, updated_at) < $1 ORDER BY coalesce(detached_at, updated_at), id LIMIT $2`, detachedBefore, lim)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*filehub.WSSession, error) { return scanWSSession(r) })
	if err != nil {
		return nil, mapError(ctx, "list expired ws sessions", err)
	}
	return out, nil
}

// CountWSSessions counts a key's sessions; see filehub.WSSessionStore.
func (db *DB) CountWSSessions(ctx context.Context, keyID string) (int, error) {
	if db.closed.Load() {
		return 0, errClosed
	}
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM ws_sessions WHERE key_id = $1`, keyID).Scan(&n); err != nil {
		return 0, mapError(ctx, "count ws sessions", err)
	}
	return n, nil
}

// wsClaimRefused is the error of a claim whose key or token does not match.
func wsClaimRefused(id string) error {
	return filehub.Errorf(filehub.EFORBIDDEN, "WebSocket session %s: the key or the resume token does not match", id)
}

// wsIdleInTxTimeout bounds how long a claim's or a save's transaction may sit
// idle between its statements — milliseconds when its process runs. A
// process that stopped inside one (SIGSTOP, a VM paused, a GC stall of
// minutes) holds the session's row lock; PostgreSQL ends its connection
// after this long, so that another instance's claim gets the session
// instead of waiting for the stopped owner to wake. The woken owner's
// commit then fails, and its next save is fenced.
const wsIdleInTxTimeout = "5s"

// boundIdleInTx applies wsIdleInTxTimeout to the rest of tx.
func boundIdleInTx(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "SET LOCAL idle_in_transaction_session_timeout = '"+wsIdleInTxTimeout+"'")
	return err
}
