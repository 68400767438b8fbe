package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/filehub/filehub"
)

var (
	_ filehub.WSSessionStore  = (*DB)(nil)
	_ filehub.WSSessionLister = (*DB)(nil)
)

// wsSessionColumns are the columns scanWSSession reads, in order.
const wsSessionColumns = `id, key_id, token_hash, prev_token_hash, epoch, owner, in_seq, out_seq, client_acked,
	subscribed, event_cursor, created_at, updated_at, detached_at`

// The statements of SaveWSSessions, prepared once by the writer (see
// prepareStmts): a group commit runs them for every session it saves.
// A frame's bytes never change for its seq, so inserting one again is a
// no-op: a saver that did not learn whether a save committed can send the
// same update again without failing the batch.
const (
	qSaveWSSession = `UPDATE ws_sessions SET token_hash = ?, prev_token_hash = ?, in_seq = ?, out_seq = ?,
		client_acked = ?, subscribed = ?, event_cursor = ?, updated_at = ?, detached_at = ?
		WHERE id = ? AND epoch = ?`
	qAckWSFrames   = `DELETE FROM ws_session_frames WHERE session_id = ? AND seq <= ?`
	qInsertWSFrame = `INSERT INTO ws_session_frames (session_id, seq, data) VALUES (?, ?, ?)
		ON CONFLICT (session_id, seq) DO NOTHING`
	qPutWSResult = `INSERT INTO ws_session_results (session_id, request_id, body) VALUES (?, ?, ?)
		ON CONFLICT (session_id, request_id) DO UPDATE SET body = excluded.body`
	qDropWSResult = `DELETE FROM ws_session_results WHERE session_id = ? AND request_id = ?`
)

// wsSessionStmts are the statements above, for prepareStmts.
var wsSessionStmts = []string{qSaveWSSession, qAckWSFrames, qInsertWSFrame, qPutWSResult, qDropWSResult}

func scanWSSession(s scanner) (*filehub.WSSession, error) {
	var (
		ws               filehub.WSSession
		created, updated int64
		detached         sql.NullInt64
	)
	if err := s.Scan(&ws.ID, &ws.KeyID, &ws.TokenHash, &ws.PrevTokenHash, &ws.Epoch, &ws.Owner, &ws.InSeq,
		&ws.OutSeq, &ws.ClientAcked, &ws.Subscribed, &ws.EventCursor, &created, &updated, &detached); err != nil {
		return nil, err
	}
	ws.CreatedAt = fromNanos(created)
	ws.UpdatedAt = fromNanos(updated)
	if detached.Valid {
		ws.DetachedAt = fromNanos(detached.Int64)
	}
	return &ws, nil
}

// detachedNanos stores a zero DetachedAt (attached) as NULL.
func detachedNanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: nanos(t), Valid: true}
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
	return db.write(ctx, "create ws session", func(wctx context.Context, tx *wtx) error {
		_, err := tx.exec(wctx, `INSERT INTO ws_sessions (`+wsSessionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.ID, s.KeyID, s.TokenHash, s.PrevTokenHash, s.Epoch, s.Owner, s.InSeq, s.OutSeq, s.ClientAcked,
			s.Subscribed, s.EventCursor, nanos(s.CreatedAt), nanos(updated), detachedNanos(s.DetachedAt))
		if err != nil {
			return mapError(wctx, "create ws session", err)
		}
		for _, f := range s.Out {
			if f.Seq <= s.ClientAcked {
				continue
			}
			if _, err := tx.exec(wctx, qInsertWSFrame, s.ID, f.Seq, f.Data); err != nil {
				return mapError(wctx, "create ws session: frame", err)
			}
		}
		for _, r := range s.Results {
			if _, err := tx.exec(wctx, qPutWSResult, s.ID, r.ID, r.Body); err != nil {
				return mapError(wctx, "create ws session: result", err)
			}
		}
		return nil
	})
}

// ClaimWSSession takes a session over; see filehub.WSSessionStore. It runs
// in the writer, so claims of one session are serialized and each gets its
// own epoch, and the state it returns is the committed state of that epoch.
func (db *DB) ClaimWSSession(ctx context.Context, c filehub.WSClaim, now time.Time) (*filehub.WSSession, error) {
	if !c.Valid() {
		return nil, filehub.Errorf(filehub.EINVALID, "a WebSocket session claim needs an id, an owner, a key and a token hash")
	}
	var ws *filehub.WSSession
	err := db.write(ctx, "claim ws session", func(wctx context.Context, tx *wtx) error {
		ws = nil // a job runs once, but keep the result that of the committed run
		s, err := scanWSSession(tx.queryRow(wctx, `UPDATE ws_sessions
			SET epoch = epoch + 1, owner = ?, detached_at = NULL, updated_at = ?
			WHERE id = ? AND key_id = ? AND (token_hash = ? OR prev_token_hash = ?)
				AND coalesce(detached_at, updated_at) >= ?
			RETURNING `+wsSessionColumns, c.Owner, nanos(now), c.ID, c.KeyID, c.TokenHash, c.TokenHash, nanosOrZero(c.AliveAfter)))
		if errors.Is(err, sql.ErrNoRows) {
			var alive int64
			switch err := tx.queryRow(wctx, `SELECT coalesce(detached_at, updated_at) FROM ws_sessions WHERE id = ?`, c.ID).Scan(&alive); {
			case err == nil && alive < nanosOrZero(c.AliveAfter):
				return fmt.Errorf("claim ws session %s: %w", c.ID, filehub.ErrWSSessionExpired)
			case err == nil:
				return wsClaimRefused(c.ID)
			case !errors.Is(err, sql.ErrNoRows):
				return mapError(wctx, "claim ws session", err)
			}
			return filehub.Errorf(filehub.ENOTFOUND, "WebSocket session %s not found", c.ID)
		}
		if err != nil {
			return mapError(wctx, "claim ws session", err)
		}
		if err := loadWSChildren(wctx, tx.tx, s); err != nil {
			return err
		}
		ws = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ws, nil
}

// loadWSChildren reads s's frames by seq and its results in insertion
// order.
func loadWSChildren(ctx context.Context, tx *sql.Tx, s *filehub.WSSession) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, data FROM ws_session_frames WHERE session_id = ? ORDER BY seq`, s.ID)
	if err != nil {
		return mapError(ctx, "load ws session frames", err)
	}
	for rows.Next() {
		var f filehub.WSFrame
		if err := rows.Scan(&f.Seq, &f.Data); err != nil {
			rows.Close()
			return mapError(ctx, "load ws session frames", err)
		}
		s.Out = append(s.Out, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return mapError(ctx, "load ws session frames", err)
	}

	// The driver reads an empty BLOB as nil; body IS NULL tells it from a
	// tombstone.
	rows, err = tx.QueryContext(ctx, `SELECT request_id, body, body IS NULL FROM ws_session_results
		WHERE session_id = ? ORDER BY pos`, s.ID)
	if err != nil {
		return mapError(ctx, "load ws session results", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r         filehub.WSResult
			tombstone bool
		)
		if err := rows.Scan(&r.ID, &r.Body, &tombstone); err != nil {
			return mapError(ctx, "load ws session results", err)
		}
		if r.Body == nil && !tombstone {
			r.Body = []byte{}
		}
		s.Results = append(s.Results, r)
	}
	return mapError(ctx, "load ws session results", rows.Err())
}

// SaveWSSessions applies a group commit's updates; see
// filehub.WSSessionStore. The whole batch is one write request, so it
// shares the writer's transaction (and its fsync) with whatever else is
// waiting, and every statement is prepared once.
func (db *DB) SaveWSSessions(ctx context.Context, updates []filehub.WSSessionUpdate) ([]string, error) {
	if len(updates) == 0 {
		return nil, nil
	}
	if err := filehub.ValidateWSUpdates(updates); err != nil {
		return nil, err
	}
	var lost []string
	err := db.write(ctx, "save ws sessions", func(wctx context.Context, tx *wtx) error {
		lost = lost[:0]
		st, err := bindWSSaveStmts(wctx, tx)
		if err != nil {
			return err
		}
		for i := range updates {
			u := &updates[i]
			ok, err := saveWSSession(wctx, st, u)
			if err != nil {
				return err
			}
			if !ok {
				lost = append(lost, u.ID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lost, nil
}

// wsSaveStmts are SaveWSSessions' statements bound to one batch
// transaction, once per call rather than once per statement run (binding
// costs an allocation and a lock each time).
type wsSaveStmts struct{ save, ack, frame, put, drop *sql.Stmt }

func bindWSSaveStmts(ctx context.Context, tx *wtx) (*wsSaveStmts, error) {
	bind := func(q string) (*sql.Stmt, error) {
		if st, ok := tx.stmts[q]; ok {
			return tx.tx.StmtContext(ctx, st), nil
		}
		// Not prepared by the writer (its prepareStmts failed): prepared
		// here, closed with the transaction.
		return tx.tx.PrepareContext(ctx, q)
	}
	var (
		st  wsSaveStmts
		err error
	)
	for _, b := range []struct {
		dst **sql.Stmt
		q   string
	}{{&st.save, qSaveWSSession}, {&st.ack, qAckWSFrames}, {&st.frame, qInsertWSFrame}, {&st.put, qPutWSResult}, {&st.drop, qDropWSResult}} {
		if *b.dst, err = bind(b.q); err != nil {
			return nil, mapError(ctx, "save ws sessions: prepare", err)
		}
	}
	return &st, nil
}

// saveWSSession applies u, or reports false if its epoch is not the stored
// one (or the session is gone), having changed nothing.
func saveWSSession(ctx context.Context, st *wsSaveStmts, u *filehub.WSSessionUpdate) (bool, error) {
	res, err := st.save.ExecContext(ctx, u.TokenHash, u.PrevTokenHash, u.InSeq, u.OutSeq, u.ClientAcked,
		u.Subscribed, u.EventCursor, nanos(u.UpdatedAt), detachedNanos(u.DetachedAt), u.ID, u.Epoch)
	if err != nil {
		return false, mapError(ctx, "save ws session", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, mapError(ctx, "save ws session", err)
	}
	if u.ClientAcked > 0 {
		if _, err := st.ack.ExecContext(ctx, u.ID, u.ClientAcked); err != nil {
			return false, mapError(ctx, "save ws session: ack frames", err)
		}
	}
	for _, f := range u.AddOut {
		if f.Seq <= u.ClientAcked {
			continue // acknowledged before it was ever saved
		}
		if _, err := st.frame.ExecContext(ctx, u.ID, f.Seq, f.Data); err != nil {
			return false, mapError(ctx, "save ws session: add frame", err)
		}
	}
	for _, r := range u.PutResults {
		if _, err := st.put.ExecContext(ctx, u.ID, r.ID, r.Body); err != nil {
			return false, mapError(ctx, "save ws session: put result", err)
		}
	}
	for _, id := range u.DropResults {
		if _, err := st.drop.ExecContext(ctx, u.ID, id); err != nil {
			return false, mapError(ctx, "save ws session: drop result", err)
		}
	}
	return true, nil
}

// DeleteWSSession removes a session; see filehub.WSSessionStore. Its frames
// and results go with it (ON DELETE CASCADE).
func (db *DB) DeleteWSSession(ctx context.Context, id string, epoch int64) error {
	return db.write(ctx, "delete ws session", func(wctx context.Context, tx *wtx) error {
		_, err := tx.exec(wctx, `DELETE FROM ws_sessions WHERE id = ? AND (? = 0 OR epoch = ?)`, id, epoch, epoch)
		return mapError(wctx, "delete ws session", err)
	})
}

// ExpireWSSessions deletes sessions detached too long; see
// filehub.WSSessionStore. Selection and deletion are one statement in the
// writer, so a session claimed meanwhile (detached_at cleared) is never
// deleted.
func (db *DB) ExpireWSSessions(ctx context.Context, detachedBefore time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	var ids []string
	err := db.write(ctx, "expire ws sessions", func(wctx context.Context, tx *wtx) error {
		ids = ids[:0]
		rows, err := tx.tx.QueryContext(wctx, `DELETE FROM ws_sessions WHERE id IN (
			SELECT id FROM ws_sessions WHERE coalesce(detached_at, updated_at) < ?
			ORDER BY coalesce(detached_at, updated_at), id LIMIT ?) RETURNING id`, nanos(detachedBefore), limit)
		if err != nil {
			return mapError(wctx, "expire ws sessions", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return mapError(wctx, "expire ws sessions", err)
			}
			ids = append(ids, id)
		}
		return mapError(wctx, "expire ws sessions", rows.Err())
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
	if limit <= 0 {
		limit = -1
	}
	rows, err := db.rdb.QueryContext(ctx, `SELECT `+wsSessionColumns+` FROM ws_sessions
		WHERE coalesce(detached_at, updated_at) < ? ORDER BY coalesce(detached_at, updated_at), id LIMIT ?`, nanos(detachedBefore), limit)
	if err != nil {
		return nil, mapError(ctx, "list expired ws sessions", err)
	}
	defer rows.Close()
	var out []*filehub.WSSession
	for rows.Next() {
		s, err := scanWSSession(rows)
		if err != nil {
			return nil, mapError(ctx, "list expired ws sessions", err)
		}
		out = append(out, s)
	}
	return out, mapError(ctx, "list expired ws sessions", rows.Err())
}

// CountWSSessions counts a key's sessions; see filehub.WSSessionStore.
func (db *DB) CountWSSessions(ctx context.Context, keyID string) (int, error) {
	if db.closed.Load() {
		return 0, errClosed
	}
	var n int
	err := db.rdb.QueryRowContext(ctx, `SELECT count(*) FROM ws_sessions WHERE key_id = ?`, keyID).Scan(&n)
	if err != nil {
		return 0, mapError(ctx, "count ws sessions", err)
	}
	return n, nil
}

// wsClaimRefused is the error of a claim whose key or token does not match.
func wsClaimRefused(id string) error {
	return filehub.Errorf(filehub.EFORBIDDEN, "WebSocket session %s: the key or the resume token does not match", id)
}

// nanosOrZero is nanos(t), or 0 for the zero time (no bound).
func nanosOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return nanos(t)
}
