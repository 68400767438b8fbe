package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/filehub/filehub"
)

// eventChannelSQL is the SQL expression of the NOTIFY channel of the event
// log in the connection's schema. Both sides evaluate it on connections
// with the same search_path, so deployments (or tests) sharing a database
// through Config.Schema do not wake each other. A hash keeps the channel
// within PostgreSQL's 63-byte identifier limit for any schema name; a
// collision would only cause spurious wake-ups.
const eventChannelSQL = `'filehub_events_' || left(md5(current_schema()), 16)`

// Timings of the listener.
const (
	// listenPingEvery is how long the listener waits for a notification
	// before it pings the server, so that a connection that died without
	// a word (a host gone, a NAT entry expired) is noticed within about
	// this time rather than TCP's keepalive time.
	listenPingEvery = 30 * time.Second
	// listenTimeout bounds the connection, LISTEN and ping round trips.
	listenTimeout = 10 * time.Second
	// listenMinBackoff and listenMaxBackoff bound the delay before the
	// listener reconnects after losing its connection.
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 5 * time.Second
)

var _ filehub.EventWaker = (*DB)(nil)

// WatchEvents implements filehub.EventWaker with PostgreSQL's LISTEN and
// NOTIFY: every event insert queues a notification on the schema's event
// channel in its own transaction (see insertEvent), and WatchEvents
// listens on that channel on a connection of its own, outside the pool,
// calling wake for each notification. When the connection fails it
// reconnects with a backoff of 100ms doubling up to 5s, logging each loss,
// and calls wake once it listens again. It returns nil when ctx ends, and
// EUNAVAILABLE if the store has been closed.
//
// NOTIFY costs the appending transactions little (their commits already
// serialize on the event counter, see the package doc). A listener that
// stops reading lets PostgreSQL's notification queue (8 GB) grow; each
// process has one, reading in its own goroutine, and wake never blocks.
func (db *DB) WatchEvents(ctx context.Context, wake func()) error {
	delay := listenMinBackoff
	for {
		if db.closed.Load() {
			return errClosed
		}
		listening, err := db.listen(ctx, wake)
		if ctx.Err() != nil {
			return nil
		}
		if listening {
			delay = listenMinBackoff // it worked for a while: retry soon
		}
		db.logger.Warn("postgres: event listener lost its connection, reconnecting",
			"err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, listenMaxBackoff)
	}
}

// listen opens a connection, listens on the event channel and calls wake
// once, then for every notification, until ctx ends or the connection
// fails. listening reports whether LISTEN succeeded.
func (db *DB) listen(ctx context.Context, wake func()) (listening bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, listenTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, db.pool.Config().ConnConfig)
	if err != nil {
		return false, mapError(cctx, "event listener: connect", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), listenTimeout)
		defer cancel()
		conn.Close(closeCtx)
	}()
	var channel string
	if err := conn.QueryRow(cctx, `SELECT `+eventChannelSQL).Scan(&channel); err != nil {
		return false, mapError(cctx, "event listener: channel name", err)
	}
	if _, err := conn.Exec(cctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false, mapError(cctx, "event listener: listen", err)
	}
	wake() // what was appended while no one listened was not heard
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPingEvery)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			wake()
		case ctx.Err() != nil:
			return true, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Quiet for a while: make sure the connection still works.
			// A notification that arrives meanwhile is kept by pgx and
			// returned by the next WaitForNotification.
			pctx, cancel := context.WithTimeout(ctx, listenTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, mapError(ctx, "event listener: ping", err)
			}
		default:
			return true, mapError(ctx, "event listener: wait", err)
		}
	}
}
