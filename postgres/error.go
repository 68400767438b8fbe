package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/filehub/filehub"
)

// mapError turns an error of pgx into an error a caller can act on: context
// errors pass through (wrapped), *filehub.Error values are returned
// unchanged, and everything else becomes an *filehub.Error whose Message
// never contains SQL; the cause and op are kept in Err for the logs.
//
// A unique violation is ECONFLICT, other constraint violations EINVALID.
// Everything that means "the database cannot be reached or cannot serve
// right now" is EUNAVAILABLE, so the HTTP layer answers 503 at once: a
// refused, closed or timed-out connection, the server shutting down
// (SQLSTATE class 57P, e.g. 57P01 admin_shutdown), connection exceptions
// (class 08), insufficient resources (class 53, e.g. too many connections),
// and a deadlock or serialization failure that persisted through tx's
// retries. Anything else is EINTERNAL.
func mapError(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	var fe *filehub.Error
	if errors.As(err, &fe) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if ctx.Err() != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		// A deadline that is not the caller's: pgx's own connect timeout.
		return unavailable(op, err)
	}
	cause := fmt.Errorf("%s: %w", op, err)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505":
			return filehub.WrapError(filehub.ECONFLICT, "already exists", cause)
		case strings.HasPrefix(pe.Code, "23"):
			return filehub.WrapError(filehub.EINVALID, "invalid record", cause)
		case pe.Code == "53100": // disk_full
			return filehub.WrapError(filehub.ESTORAGE, "metadata disk is full", cause)
		case pe.Code == "57014": // query_canceled
			if ctx.Err() != nil {
				return fmt.Errorf("postgres: %s: %w", op, ctx.Err())
			}
			return unavailable(op, err) // statement_timeout
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "57P"),
			strings.HasPrefix(pe.Code, "53"), pe.Code == "40001", pe.Code == "40P01",
			pe.Code == "55P03": // lock_not_available (lock_timeout)
			return unavailable(op, err)
		}
		return filehub.WrapError(filehub.EINTERNAL, "metadata store error", cause)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("postgres: %s: %w", op, ctx.Err())
	}
	if connectionError(err) {
		return unavailable(op, err)
	}
	return filehub.WrapError(filehub.EINTERNAL, "metadata store error", cause)
}

// connectionError reports whether err (not a server error) comes from the
// connection rather than from the statement: the network, a connection
// pgx has closed, or the pool being closed.
func connectionError(err error) bool {
	var (
		ce *pgconn.ConnectError
		ne net.Error
	)
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		pgconn.Timeout(err), pgconn.SafeToRetry(err):
		return true
	}
	// pgx and puddle do not export these.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "closed pool") ||
		strings.Contains(msg, "conn busy") || strings.Contains(msg, "unexpected EOF")
}

// retryable reports whether err is a deadlock or serialization failure,
// after which PostgreSQL has aborted the transaction and running it again
// may succeed.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// unavailable returns an EUNAVAILABLE error for op caused by err.
func unavailable(op string, err error) *filehub.Error {
	return filehub.WrapError(filehub.EUNAVAILABLE, "metadata store unavailable", fmt.Errorf("%s: %w", op, err))
}
