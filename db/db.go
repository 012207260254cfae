// Package db stores Playground's users, sessions, responses, revoked tokens
// and settings with bun, on PostgreSQL or on an embedded SQLite file.
//
// One *DB implements playground.UserService, SessionService, TokenService
// and SettingService. Everything that must be atomic (charging quota and
// inserting a session, refunding a run once, never overwriting an ended
// response) is done by single statements or single transactions, so any
// number of server instances may share one PostgreSQL database.
//
// SQLite has one writer at a time: writes run in IMMEDIATE transactions
// (they take the write lock when they begin, so a transaction never has to
// upgrade a read lock and fail with "database is locked"), an instance's
// writes wait for each other in order (writeTurns), and a busy timeout
// makes them wait for other processes' instead of failing.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/internal/stmtcache"
)

// Dialect names returned by (*DB).Dialect.
const (
	DialectPostgres = "pg"
	DialectSQLite   = "sqlite"
)

// sqliteBusyTimeout is how long a SQLite writer waits for the write lock
// before it gives up with "database is locked".
const sqliteBusyTimeout = 5 * time.Second

// Options configure a DB.
type Options struct {
	// Plans sets each plan's quota per period.
	Plans playground.Plans
	// Now is the clock (nil means time.Now); tests move it to turn the
	// quota period.
	Now func() time.Time
	// Logger receives migration progress and background failures (nil
	// means slog.Default()).
	Logger *slog.Logger
}

// DB is the storage of Playground. It is safe for concurrent use.
type DB struct {
	db      *bun.DB
	hot     *stmtcache.Cache // the statements every comparison runs (hotQueries)
	dialect string
	turns   *writeTurns // SQLite's writes in order; nil on PostgreSQL
	plans   playground.Plans
	nowFn   func() time.Time
	log     *slog.Logger
}

// Compile-time checks that *DB implements the services of the root package.
var (
	_ playground.UserService    = (*DB)(nil)
	_ playground.SessionService = (*DB)(nil)
	_ playground.TokenService   = (*DB)(nil)
	_ playground.SettingService = (*DB)(nil)
)

// Open connects to the database named by url: PostgreSQL when it starts
// with postgres:// or postgresql://, else an SQLite file (the path may be
// prefixed with sqlite:// , sqlite: or file:). The default, when a person
// names none, is config's to choose: an empty url is an error here.
// It pings the database before returning. Call Migrate before use.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	d := &DB{plans: opts.Plans, nowFn: opts.Now, log: opts.Logger}
	if d.nowFn == nil {
		d.nowFn = time.Now
	}
	if d.log == nil {
		d.log = slog.Default()
	}

	if IsPostgresURL(url) {
		sqldb := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(url), pgdriver.WithResetSessionFunc(checkAlive)))
		// Bounded, so that many instances stay under max_connections
		// (bun's recommended size).
		sqldb.SetMaxOpenConns(4 * runtime.GOMAXPROCS(0))
		sqldb.SetMaxIdleConns(4 * runtime.GOMAXPROCS(0))
		d.db = bun.NewDB(sqldb, pgdialect.New())
		d.dialect = DialectPostgres
	} else {
		dsn, err := sqliteDSN(url)
		if err != nil {
			return nil, fail("open sqlite", err)
		}
		sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
		if err != nil {
			return nil, fail("open sqlite", err)
		}
		// A few connections let readers proceed while one writer holds
		// the lock (WAL); writers queue in writeTurns.
		sqldb.SetMaxOpenConns(8)
		sqldb.SetMaxIdleConns(8)
		d.db = bun.NewDB(sqldb, sqlitedialect.New())
		d.dialect = DialectSQLite
		d.turns = newWriteTurns()
	}

	d.hot = stmtcache.New(d.db)
	if err := d.Ping(ctx); err != nil {
		_ = d.db.Close()
		return nil, err
	}
	return d, nil
}

// IsPostgresURL reports whether url names a PostgreSQL database.
func IsPostgresURL(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// sqliteDSN turns a path into a DSN for the driver sqliteshim picked:
// WAL (readers do not block the writer), a busy timeout, foreign keys and
// IMMEDIATE transactions. The parameter names differ per driver.
func sqliteDSN(url string) (string, error) {
	path := url
	for _, p := range []string{"sqlite://", "sqlite:", "file:"} {
		if strings.HasPrefix(path, p) {
			path = strings.TrimPrefix(path, p)
			break
		}
	}
	// Parameters given in the URL are dropped: ours are the ones the
	// package relies on.
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return "", fmt.Errorf("no database file in %q", url)
	}
	ms := sqliteBusyTimeout.Milliseconds()
	if sqliteshim.DriverName() == "sqlite3" { // mattn/go-sqlite3 (cgo builds)
		return fmt.Sprintf("file:%s?_busy_timeout=%d&_journal_mode=WAL&_foreign_keys=on&_txlock=immediate", path, ms), nil
	}
	// modernc.org/sqlite: without a "file:" prefix the path is used as is
	// and the query holds the driver's parameters.
	return fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate", path, ms), nil
}

// Close closes the connection pool.
func (d *DB) Close() error {
	d.hot.Close()
	if err := d.db.Close(); err != nil {
		return fail("close", err)
	}
	return nil
}

// Ping checks that the database answers (for /readyz).
func (d *DB) Ping(ctx context.Context) error {
	if err := d.db.PingContext(ctx); err != nil {
		return fail("ping", err)
	}
	return nil
}

// Dialect returns DialectPostgres or DialectSQLite.
func (d *DB) Dialect() string { return d.dialect }

// Bun returns the underlying bun handle, for tests and tools.
func (d *DB) Bun() *bun.DB { return d.db }

// AddQueryHook makes hook see every statement d runs: bun's queries, and
// the prepared statements of the comparisons' writes (see hotQueries), whose
// arguments are in the event's QueryArgs rather than in its Query. Add
// hooks before using d.
func (d *DB) AddQueryHook(hook bun.QueryHook) {
	d.db.AddQueryHook(hook)
	d.hot.AddHook(hook)
}

// Plans returns the plans the DB charges quota by.
func (d *DB) Plans() playground.Plans { return d.plans }

// Users returns d as a playground.UserService, for wiring code that
// prefers to name what it hands on.
func (d *DB) Users() playground.UserService { return d }

// Sessions returns d as a playground.SessionService.
func (d *DB) Sessions() playground.SessionService { return d }

// Tokens returns d as a playground.TokenService.
func (d *DB) Tokens() playground.TokenService { return d }

// Settings returns d as a playground.SettingService.
func (d *DB) Settings() playground.SettingService { return d }

// now is the current time in UTC, truncated to microseconds: both
// databases keep microseconds, so a value handed back to a caller is
// exactly the value stored.
func (d *DB) now() time.Time {
	return d.nowFn().UTC().Truncate(time.Microsecond)
}

// NewID returns prefix followed by a random UUID ("u_", "s_", "r_").
func NewID(prefix string) string {
	return prefix + uuid.NewString()
}

// ID prefixes of the stored kinds.
const (
	UserIDPrefix     = "u_"
	SessionIDPrefix  = "s_"
	ResponseIDPrefix = "r_"
)

func notFound(what string) error {
	return playground.Errorf(playground.ENotFound, "%s not found.", what)
}

// findRow reads the one row of T (a model) that matches where, or
// ENotFound naming what.
func findRow[T any](ctx context.Context, db bun.IDB, what, where string, arg any) (*T, error) {
	row := new(T)
	if err := db.NewSelect().Model(row).Where(where, arg).Scan(ctx); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, notFound(what)
		}
		return nil, fail("find "+strings.ToLower(what), err)
	}
	return row, nil
}

// isUniqueViolation reports whether err is a unique constraint failure on
// either database.
func isUniqueViolation(err error) bool {
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) {
		return pgErr.Field('C') == "23505"
	}
	// modernc.org/sqlite and mattn/go-sqlite3 both expose the extended
	// result code; SQLITE_CONSTRAINT_UNIQUE = 2067, _PRIMARYKEY = 1555.
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		if c := coded.Code(); c == 2067 || c == 1555 {
			return true
		}
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// planLimitSQL is the SQL expression of the plan limit of the row's plan,
// with the limits as arguments (unknown plans get the free limit, as
// playground.Plans.Limit does).
func (d *DB) planLimitSQL(col string) (string, []any) {
	return "(CASE " + col + " WHEN 'pro' THEN ? ELSE ? END)", []any{d.plans.ProPerDay, d.plans.FreePerDay}
}

// effectiveRemainingSQL is the row's remaining quota as of the period
// starting at periodStart: the plan's limit when the stored period has
// turned (the lazy reset), else the stored counter.
func (d *DB) effectiveRemainingSQL(periodStart time.Time) (string, []any) {
	limit, args := d.planLimitSQL("plan")
	return "(CASE WHEN quota_period_start < ? THEN " + limit + " ELSE quota_remaining END)",
		append([]any{periodStart}, args...)
}
