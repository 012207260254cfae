package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/playground-dev/playground"
)

// fail is how every method of DB reports a failure of the database. One
// that says the database cannot be reached right now becomes
// playground's EUnavailable (the API answers 503 with Retry-After), the
// driver's error kept for the log; any other is wrapped with the
// operation's name and stays an internal error.
func fail(op string, err error) error {
	wrapped := fmt.Errorf("db: %s: %w", op, err)
	if Unreachable(err) {
		return playground.Unavailable(wrapped, "The database is unavailable right now; try again shortly.")
	}
	return wrapped
}

// txFail is the error of a transaction whose function may refuse with a
// coded error: that error as it is, any other wrapped as fail wraps it,
// nil for nil.
func txFail(op string, err error) error {
	var perr *playground.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &perr):
		return perr
	default:
		return fail(op, err)
	}
}

// Unreachable reports whether err says the database could not be
// reached or is going away, rather than that a statement was wrong:
//
//   - a connection refused, reset or cut (broken pipe, EOF on a pooled
//     connection the server closed, a closed connection, database/sql's
//     ErrBadConn and ErrConnDone, any network error or timeout);
//   - PostgreSQL saying it is shutting down, starting up, out of
//     connections, or ending the connection (SQLSTATE class 08, 57P01,
//     57P02, 57P03, 53300; any FATAL or PANIC);
//   - a deadline that ran out before the database answered;
//   - SQLite still busy (locked) after its busy timeout, or a write that
//     waited as long for its turn (writeTurns).
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) {
		code := pgErr.Field('C')
		switch {
		case strings.HasPrefix(code, "08"), code == "57P01", code == "57P02", code == "57P03", code == "53300":
			return true
		}
		sev := pgErr.Field('V')
		return sev == "FATAL" || sev == "PANIC"
	}
	var netErr net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, errNoTurn), errors.As(err, &netErr):
		return true
	}
	// modernc.org/sqlite and mattn/go-sqlite3 expose the result code;
	// the primary code is its low byte: SQLITE_BUSY 5, SQLITE_LOCKED 6.
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		if c := coded.Code() & 0xff; c == 5 || c == 6 {
			return true
		}
	}
	return false
}
