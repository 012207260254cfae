package db

import (
	"context"
	"database/sql/driver"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// SQLite lets one connection write at a time, and a connection that finds
// the write lock taken sleeps in SQLite's busy handler: 1, 2, 5, 10, 15,
// 20, 25 ms … between tries, however soon the lock is free. With many
// sessions writing at once (creations, checkpoints, endings), those
// sleeps were most of the time a session took to be created. So the
// writers of one pool queue here instead, on a channel, in the order they
// came, each woken the moment the one before it is done: a transaction
// (every one is IMMEDIATE, a writer) holds the turn from BEGIN to COMMIT
// or ROLLBACK, a statement outside one from its start to its end (a
// query's, to its rows' Close). Reads outside a transaction do not queue
// (WAL: they never wait for the writer). A writer that waits longer than
// the busy timeout gives up with SQLITE_BUSY, as SQLite's own wait did,
// and SQLite's busy handler still guards against writers of other
// processes (a command run beside the server).

// writerTurn is the one write turn of a pool.
type writerTurn chan struct{}

// take waits for the turn, at most sqliteBusyTimeout.
func (w writerTurn) take(ctx context.Context) error {
	select {
	case w <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(sqliteBusyTimeout)
	defer t.Stop()
	select {
	case w <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errWriterBusy
	}
}

func (w writerTurn) give() { <-w }

// writerBusy is the error of a writer that waited out the busy timeout:
// SQLITE_BUSY, as the driver reports it (see Unreachable).
type writerBusy struct{}

func (writerBusy) Error() string {
	return fmt.Sprintf("database is locked (5) (SQLITE_BUSY): no write turn within %v", sqliteBusyTimeout)
}
func (writerBusy) Code() int { return 5 }

var errWriterBusy error = writerBusy{}

// queuedConnector opens the pool's connections, each queueing its writes
// on the pool's one turn.
type queuedConnector struct {
	drv  driver.Driver
	dsn  string
	turn writerTurn
}

func newQueuedConnector(drv driver.Driver, dsn string) *queuedConnector {
	return &queuedConnector{drv: drv, dsn: dsn, turn: make(writerTurn, 1)}
}

func (c *queuedConnector) Connect(context.Context) (driver.Conn, error) {
	raw, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	for _, need := range []reflect.Type{
		reflect.TypeFor[driver.ConnBeginTx](), reflect.TypeFor[driver.ExecerContext](),
		reflect.TypeFor[driver.QueryerContext](), reflect.TypeFor[driver.ConnPrepareContext](),
	} {
		if !reflect.TypeOf(raw).Implements(need) {
			raw.Close()
			return nil, fmt.Errorf("sqlite driver %T lacks %v", raw, need)
		}
	}
	return &queuedConn{raw: raw, turn: c.turn}, nil
}

func (c *queuedConnector) Driver() driver.Driver { return c.drv }

// queuedConn is one connection; database/sql uses it from one goroutine
// at a time, so inTx needs no lock.
type queuedConn struct {
	raw  driver.Conn
	turn writerTurn
	inTx bool
}

var (
	_ driver.ConnBeginTx        = (*queuedConn)(nil)
	_ driver.ExecerContext      = (*queuedConn)(nil)
	_ driver.QueryerContext     = (*queuedConn)(nil)
	_ driver.ConnPrepareContext = (*queuedConn)(nil)
	_ driver.SessionResetter    = (*queuedConn)(nil)
	_ driver.Validator          = (*queuedConn)(nil)
	_ driver.Pinger             = (*queuedConn)(nil)
)

func (c *queuedConn) Prepare(query string) (driver.Stmt, error) { return c.raw.Prepare(query) }

// Close gives back the turn of a transaction that never ended.
func (c *queuedConn) Close() error {
	if c.inTx {
		c.inTx = false
		c.turn.give()
	}
	return c.raw.Close()
}

//nolint:staticcheck // database/sql calls BeginTx; Begin completes driver.Conn.
func (c *queuedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *queuedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.raw.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *queuedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.turn.take(ctx); err != nil {
		return nil, err
	}
	tx, err := c.raw.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		c.turn.give()
		return nil, err
	}
	c.inTx = true
	return &queuedTx{raw: tx, c: c}, nil
}

func (c *queuedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if !c.inTx {
		if err := c.turn.take(ctx); err != nil {
			return nil, err
		}
		defer c.turn.give()
	}
	return c.raw.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c *queuedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q := c.raw.(driver.QueryerContext)
	if c.inTx || !writes(query) {
		return q.QueryContext(ctx, query, args)
	}
	if err := c.turn.take(ctx); err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, query, args)
	if err != nil {
		c.turn.give()
		return nil, err
	}
	return &queuedRows{Rows: rows, turn: c.turn}, nil
}

func (c *queuedConn) ResetSession(ctx context.Context) error {
	if r, ok := c.raw.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *queuedConn) IsValid() bool {
	if v, ok := c.raw.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *queuedConn) Ping(ctx context.Context) error {
	if p, ok := c.raw.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// writes reports whether a statement run as a query may write: one that
// does not begin with SELECT (an UPDATE … RETURNING, say). A WITH may
// write too, so it counts as a writer.
func writes(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	return len(q) < 6 || !strings.EqualFold(q[:6], "SELECT")
}

// queuedTx gives the turn back when it ends.
type queuedTx struct {
	raw driver.Tx
	c   *queuedConn
}

func (t *queuedTx) Commit() error   { defer t.end(); return t.raw.Commit() }
func (t *queuedTx) Rollback() error { defer t.end(); return t.raw.Rollback() }

func (t *queuedTx) end() {
	t.c.inTx = false
	t.c.turn.give()
}

// queuedRows gives the turn back when a writing query's rows are closed
// (the statement holds the write lock until then).
type queuedRows struct {
	driver.Rows
	turn  writerTurn
	given bool
}

func (r *queuedRows) Close() error {
	err := r.Rows.Close()
	if !r.given {
		r.given = true
		r.turn.give()
	}
	return err
}
