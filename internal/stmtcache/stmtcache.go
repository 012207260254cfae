// Package stmtcache runs the statements a program runs most often as
// statements prepared once, beside bun, for the code that goes beneath bun
// for speed (db's writes of every comparison). It keeps bun's query hooks
// and bun's way of writing times, so that the rest of the program cannot
// tell which way a statement went.
package stmtcache

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/uptrace/bun"
)

// Cache holds statements prepared once per connection pool and run with
// their arguments bound, beside bun, which writes argument values into the
// SQL text: each such statement is a new text to the database, which
// parses and plans it again.
//
// A statement's text must be the same on both databases: its placeholders
// are $1…$n (SQLite reads $1 as a parameter named "1", which its driver
// binds to the first argument), each used at least once, with no gap.
// Arguments are what both drivers bind alike: strings, integers, floats,
// booleans, nil and pointers to those; a time goes as Time's text.
//
// Prepare statements once the schema is up to date (a prepared statement
// is bound to the schema it was prepared against). database/sql prepares a
// statement again on each connection it runs on, the first time only, and
// keeps it until the statement or the pool is closed. A statement missing
// from the cache is prepared on first use outside a transaction; inside one
// it runs unprepared, with its arguments bound all the same: preparing it
// would take a second connection from the pool while the transaction holds
// one, and with as many transactions as connections that waits forever.
type Cache struct {
	db  *sql.DB
	bun *bun.DB // the event's DB for hooks

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	hooks []bun.QueryHook // added before use (AddHook)
}

// New returns an empty cache of db's statements.
func New(db *bun.DB) *Cache {
	return &Cache{db: db.DB, bun: db, stmts: map[string]*sql.Stmt{}}
}

// AddHook makes hook see each hot statement as bun's hooks see a query:
// the SQL text in Query and QueryTemplate, the arguments in QueryArgs.
func (h *Cache) AddHook(hook bun.QueryHook) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hooks = append(h.hooks, hook)
}

// observe calls the hooks' BeforeQuery and returns what calls their
// AfterQuery with the statement's outcome.
func (h *Cache) observe(ctx context.Context, query string, args []any) (context.Context, func(sql.Result, error)) {
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

// Prepare prepares each query afresh, replacing a statement prepared
// before (against an older schema).
func (h *Cache) Prepare(ctx context.Context, queries ...string) error {
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

// Get returns the statement of query, preparing it when it is missing.
// Two first uses at once may both prepare; one statement is kept.
func (h *Cache) Get(ctx context.Context, query string) (*sql.Stmt, error) {
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

func (h *Cache) cached(query string) *sql.Stmt {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stmts[query]
}

// in returns the statement of query to run in tx (on the pool when tx is
// nil), or nil when tx should run query unprepared. In a transaction it is
// the one prepared on the transaction's connection when there is one.
func (h *Cache) in(ctx context.Context, tx *bun.Tx, query string) (*sql.Stmt, error) {
	if tx == nil {
		return h.Get(ctx, query)
	}
	st := h.cached(query)
	if st == nil {
		return nil, nil
	}
	return tx.Tx.StmtContext(ctx, st), nil
}

// Exec runs query with args in tx (or on the pool when tx is nil).
func (h *Cache) Exec(ctx context.Context, tx *bun.Tx, query string, args ...any) (res sql.Result, err error) {
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

// Affected runs query with args in tx (or on the pool) and answers how
// many rows it changed.
func (h *Cache) Affected(ctx context.Context, tx *bun.Tx, query string, args ...any) (int64, error) {
	res, err := h.Exec(ctx, tx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Scan runs query with args in tx (or on the pool) and scans its one row
// into dest: sql.ErrNoRows when there is none.
func (h *Cache) Scan(ctx context.Context, tx *bun.Tx, query string, args []any, dest ...any) (err error) {
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

// Close closes every statement; close the pool after it.
func (h *Cache) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for q, st := range h.stmts {
		_ = st.Close()
		delete(h.stmts, q)
	}
}

// TimeLayout is how bun writes a time into SQL on both dialects. SQLite
// stores timestamps as this text (and compares them as text), PostgreSQL
// parses it into a TIMESTAMPTZ.
const TimeLayout = "2006-01-02 15:04:05.999999-07:00"

// Time is t as a statement's argument: the text bun would have
// written, in UTC.
func Time(t time.Time) string {
	return t.UTC().Format(TimeLayout)
}

// TimePtr is Time of *t, or nil (NULL) for nil.
func TimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return Time(*t)
}
