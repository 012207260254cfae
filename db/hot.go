package db

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/uptrace/bun"
)

// hotStmts holds the statements every comparison runs (charging quota,
// inserting the session, checkpoints, the final rows), each prepared once
// per connection pool and run with its arguments bound. Everything else
// goes through bun, which writes argument values into the SQL text: each
// such statement is a new text to the database, which parses and plans it
// again (on SQLite that was a tenth of the server's CPU with many
// comparisons at once).
//
// A hot statement's text is the same on both databases: its placeholders
// are $1…$n (SQLite reads $1 as a parameter named "1", which both drivers
// bind to the first argument), each used at least once, with no gap.
// Arguments are what both drivers bind alike: strings, integers, floats,
// booleans, nil and pointers to those; a time goes as dbTime's text.
//
// The statements are prepared when Migrate has brought the schema up to
// date (a prepared statement is bound to the schema it was prepared
// against). database/sql prepares a statement again on each connection it
// runs on, the first time only, and keeps it until the statement or the
// pool is closed. A statement missing from the cache is prepared on first
// use outside a transaction; inside one it runs unprepared, with its
// arguments bound all the same: preparing it would take a second
// connection from the pool while the transaction holds one, and with as
// many transactions as connections that waits forever.
type hotStmts struct {
	db  *sql.DB
	bun *bun.DB // the event's DB for hooks

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	hooks []bun.QueryHook // added before use (DB.AddQueryHook)
}

func newHotStmts(db *bun.DB) *hotStmts {
	return &hotStmts{db: db.DB, bun: db, stmts: map[string]*sql.Stmt{}}
}

// addHook makes hook see each hot statement as bun's hooks see a query:
// the SQL text in Query and QueryTemplate, the arguments in QueryArgs.
func (h *hotStmts) addHook(hook bun.QueryHook) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hooks = append(h.hooks, hook)
}

// observe calls the hooks' BeforeQuery and returns what calls their
// AfterQuery with the statement's outcome.
func (h *hotStmts) observe(ctx context.Context, query string, args []any) (context.Context, func(sql.Result, error)) {
	h.mu.Lock()
	hooks := h.hooks
	h.mu.Unlock()
	if len(hooks) == 0 {
		return ctx, func(sql.Result, error) {}
	}
	e := &bun.QueryEvent{DB: h.bun, Query: query, QueryTemplate: query, QueryArgs: args, StartTime: time.Now()}
	for _, hook := range hooks {
		ctx = hook.BeforeQuery(ctx, e)
	}
	return ctx, func(res sql.Result, err error) {
		e.Result, e.Err = res, err
		for i := len(hooks) - 1; i >= 0; i-- {
			hooks[i].AfterQuery(ctx, e)
		}
	}
}

// hotQueries are the statements Migrate prepares.
var hotQueries = []string{
	chargeSQL, insertSessionSQL, insertResponseSQL,
	checkpointResponseSQL, appendChunkSQL, checkpointSessionSQL,
	finishResponseSQL, dropChunksSQL, finishSessionSQL,
}

// prepare prepares each query afresh, replacing a statement prepared
// before (against an older schema).
func (h *hotStmts) prepare(ctx context.Context, queries ...string) error {
	for _, q := range queries {
		st, err := h.db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		h.mu.Lock()
		old := h.stmts[q]
		h.stmts[q] = st
		h.mu.Unlock()
		if old != nil {
			_ = old.Close()
		}
	}
	return nil
}

// get returns the statement of query, preparing it when it is missing.
// Two first uses at once may both prepare; one statement is kept.
func (h *hotStmts) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if st := h.cached(query); st != nil {
		return st, nil
	}
	// Prepared outside the lock: on PostgreSQL this is a round trip, and a
	// database that does not answer must not hold up the other statements.
	st, err := h.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if kept := h.stmts[query]; kept != nil {
		_ = st.Close()
		return kept, nil
	}
	h.stmts[query] = st
	return st, nil
}

func (h *hotStmts) cached(query string) *sql.Stmt {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stmts[query]
}

// in returns the statement of query to run in tx (on the pool when tx is
// nil), or nil when tx should run query unprepared. In a transaction it is
// the one prepared on the transaction's connection when there is one.
func (h *hotStmts) in(ctx context.Context, tx *bun.Tx, query string) (*sql.Stmt, error) {
	if tx == nil {
		return h.get(ctx, query)
	}
	st := h.cached(query)
	if st == nil {
		return nil, nil
	}
	return tx.Tx.StmtContext(ctx, st), nil
}

// exec runs query with args in tx (or on the pool when tx is nil).
func (h *hotStmts) exec(ctx context.Context, tx *bun.Tx, query string, args ...any) (res sql.Result, err error) {
	ctx, after := h.observe(ctx, query, args)
	defer func() { after(res, err) }()
	st, err := h.in(ctx, tx, query)
	switch {
	case err != nil:
		return nil, err
	case st == nil:
		return tx.Tx.ExecContext(ctx, query, args...)
	}
	return st.ExecContext(ctx, args...)
}

// affected runs query with args in tx (or on the pool) and answers how
// many rows it changed.
func (h *hotStmts) affected(ctx context.Context, tx *bun.Tx, query string, args ...any) (int64, error) {
	res, err := h.exec(ctx, tx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// scan runs query with args in tx (or on the pool) and scans its one row
// into dest: sql.ErrNoRows when there is none.
func (h *hotStmts) scan(ctx context.Context, tx *bun.Tx, query string, args []any, dest ...any) (err error) {
	ctx, after := h.observe(ctx, query, args)
	defer func() { after(nil, err) }()
	st, err := h.in(ctx, tx, query)
	switch {
	case err != nil:
		return err
	case st == nil:
		return tx.Tx.QueryRowContext(ctx, query, args...).Scan(dest...)
	}
	return st.QueryRowContext(ctx, args...).Scan(dest...)
}

// close closes every statement; the pool is closed next.
func (h *hotStmts) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for q, st := range h.stmts {
		_ = st.Close()
		delete(h.stmts, q)
	}
}

// dbTimeLayout is how bun writes a time into SQL on both dialects. SQLite
// stores timestamps as this text (and compares them as text), PostgreSQL
// parses it into a TIMESTAMPTZ.
const dbTimeLayout = "2006-01-02 15:04:05.999999-07:00"

// dbTime is t as a hot statement's argument: the text bun would have
// written, in UTC.
func dbTime(t time.Time) string {
	return t.UTC().Format(dbTimeLayout)
}

// dbTimePtr is dbTime of *t, or nil (NULL) for nil.
func dbTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return dbTime(*t)
}
