package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/filehub/filehub"
)

// mapError turns an error of the driver or of database/sql into an error a
// caller can act on: context errors pass through (wrapped), *filehub.Error
// values are returned unchanged, and everything else becomes an
// *filehub.Error whose Message never contains SQL; the cause and op are kept
// in Err for the logs.
func mapError(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	var fe *filehub.Error
	if errors.As(err, &fe) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	cause := fmt.Errorf("%s: %w", op, err)
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code()
		switch code & 0xff {
		case sqlite3.SQLITE_CONSTRAINT:
			switch code {
			case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
				return filehub.WrapError(filehub.ECONFLICT, "already exists", cause)
			case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL,
				sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, sqlite3.SQLITE_CONSTRAINT_DATATYPE:
				return filehub.WrapError(filehub.EINVALID, "invalid record", cause)
			}
		case sqlite3.SQLITE_INTERRUPT:
			// The driver interrupts a statement when its context ends.
			if ctx.Err() != nil {
				return fmt.Errorf("sqlite: %s: %w", op, ctx.Err())
			}
			return unavailable(op, err)
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL,
			sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOLFS:
			return unavailable(op, err)
		case sqlite3.SQLITE_FULL:
			return filehub.WrapError(filehub.ESTORAGE, "metadata disk is full", cause)
		}
		return filehub.WrapError(filehub.EINTERNAL, "metadata store error", cause)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("sqlite: %s: %w", op, ctx.Err())
	}
	// database/sql does not export its "database is closed" error.
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "database is closed") {
		return filehub.WrapError(filehub.EUNAVAILABLE, "metadata store is closed", cause)
	}
	return filehub.WrapError(filehub.EINTERNAL, "metadata store error", cause)
}

// unavailable returns an EUNAVAILABLE error for op caused by err.
func unavailable(op string, err error) *filehub.Error {
	return filehub.WrapError(filehub.EUNAVAILABLE, "metadata store unavailable", fmt.Errorf("%s: %w", op, err))
}
