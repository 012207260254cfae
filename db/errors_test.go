package db_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/playground-dev/playground/db"
)

// TestUnreachable: the errors that mean "the database cannot be reached
// now" are told apart from those of a wrong statement, however wrapped.
func TestUnreachable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{refused, true},
		{fmt.Errorf("query: %w", syscall.ECONNRESET), true},
		{fmt.Errorf("write: %w", syscall.EPIPE), true},
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{driver.ErrBadConn, true},
		{sql.ErrConnDone, true},
		{context.DeadlineExceeded, true},
		{sql.ErrNoRows, false},
		{errors.New(`ERROR: syntax error at or near "SELEC"`), false},
		{context.Canceled, false},
	} {
		if got := db.Unreachable(fmt.Errorf("db: x: %w", c.err)); got != c.want {
			t.Errorf("Unreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
