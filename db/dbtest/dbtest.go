// Package dbtest gives tests a fresh, migrated database per test, on every
// dialect under test: SQLite always (a file in the test's temp dir), and
// PostgreSQL as well when PLAYGROUND_TEST_DATABASE_URL is set (a schema of
// its own, dropped when the test ends). With the variable set, a
// PostgreSQL that cannot be reached fails the test: it never skips.
//
//	func TestX(t *testing.T) {
//		dbtest.Each(t, db.Options{}, func(t *testing.T, d *db.DB) { ... })
//	}
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db"
)

// EnvURL names the environment variable holding the PostgreSQL URL tests
// run against, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvURL = "PLAYGROUND_TEST_DATABASE_URL"

// DefaultPlans are used when a test's Options leave Plans zero (a zero
// plan would leave every new user without quota).
var DefaultPlans = playground.Plans{FreePerDay: 50, ProPerDay: 1000}

// Dialects lists the dialects under test: db.DialectSQLite, and
// db.DialectPostgres when EnvURL is set.
func Dialects() []string {
	ds := []string{db.DialectSQLite}
	if os.Getenv(EnvURL) != "" {
		ds = append(ds, db.DialectPostgres)
	}
	return ds
}

// URL returns a DATABASE_URL for a fresh, empty database of the dialect,
// for tests that start the real server: an SQLite file in tb.TempDir(), or
// a new PostgreSQL schema (search_path set in the URL) dropped at cleanup.
func URL(tb testing.TB, dialect string) string {
	tb.Helper()
	if dialect == db.DialectSQLite {
		return filepath.Join(tb.TempDir(), "playground.db")
	}
	base := os.Getenv(EnvURL)
	if base == "" {
		tb.Fatalf("dbtest: %s is not set", EnvURL)
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("dbtest: %s: %v", EnvURL, err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])

	exec := func(query string) error {
		admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(base)))
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := admin.ExecContext(ctx, query)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		tb.Fatalf("dbtest: create schema on %s: %v", EnvURL, err)
	}
	tb.Cleanup(func() {
		// Registered before the caller's cleanups, so it runs after them:
		// the test's own connections are closed by then.
		if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			tb.Errorf("dbtest: drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// MustOpenDB returns a fresh, migrated DB of the dialect, closed when the
// test ends.
func MustOpenDB(tb testing.TB, dialect string, opts db.Options) *db.DB {
	tb.Helper()
	if opts.Plans == (playground.Plans{}) {
		opts.Plans = DefaultPlans
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := db.Open(ctx, URL(tb, dialect), opts)
	if err != nil {
		tb.Fatalf("dbtest: open %s: %v", dialect, err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Errorf("dbtest: close %s: %v", dialect, err)
		}
	})
	if err := d.Migrate(ctx); err != nil {
		tb.Fatalf("dbtest: migrate %s: %v", dialect, err)
	}
	return d
}

// Open returns one fresh, migrated DB per dialect under test.
func Open(tb testing.TB, opts db.Options) []*db.DB {
	tb.Helper()
	var out []*db.DB
	for _, dialect := range Dialects() {
		out = append(out, MustOpenDB(tb, dialect, opts))
	}
	return out
}

// Each runs fn as a subtest named after each dialect under test, each with
// its own fresh DB.
func Each(t *testing.T, opts db.Options, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	for _, dialect := range Dialects() {
		t.Run(dialect, func(t *testing.T) {
			fn(t, MustOpenDB(t, dialect, opts))
		})
	}
}
