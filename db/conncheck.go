package db

import (
	"context"
	"database/sql/driver"

	"github.com/uptrace/bun/driver/pgdriver"
)

// checkAlive runs (as pgdriver's ResetSession hook) when database/sql
// takes a pooled PostgreSQL connection for another query. A connection
// the server closed while it sat idle (a restart, an idle timeout) is
// refused with driver.ErrBadConn, and database/sql retries on a fresh one,
// instead of the query failing with EOF or the server's goodbye: after a
// database restart, requests succeed at once rather than once per stale
// connection.
func checkAlive(_ context.Context, cn *pgdriver.Conn) error {
	if closedByPeer(cn.Conn()) {
		return driver.ErrBadConn
	}
	return nil
}
