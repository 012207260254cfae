package db_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/playground-dev/playground/db"
	"github.com/playground-dev/playground/db/dbtest"
)

func TestOpen(t *testing.T) {
	forEachDB(t, db.Options{}, func(t *testing.T, d *db.DB) {
		if err := d.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if got := d.Dialect(); got != t.Name()[strings.LastIndexByte(t.Name(), '/')+1:] {
			t.Fatalf("Dialect() = %q in subtest %s", got, t.Name())
		}
		if d.Dialect() != db.DialectSQLite {
			return
		}
		var mode string
		var fk int
		if err := d.Bun().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := d.Bun().QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || fk != 1 {
			t.Fatalf("journal_mode=%s foreign_keys=%d, want wal and 1", mode, fk)
		}
	})
}

func TestMigrate_Twice(t *testing.T) {
	forEachDB(t, db.Options{}, func(t *testing.T, d *db.DB) {
		applied := func() (n, names int) {
			t.Helper()
			if err := d.Bun().QueryRowContext(ctx, "SELECT count(*), count(DISTINCT name) FROM bun_migrations").Scan(&n, &names); err != nil {
				t.Fatal(err)
			}
			return n, names
		}
		before, _ := applied()
		if before < 2 {
			t.Fatalf("bun_migrations has %d rows after the first migrate, want every migration (at least 2)", before)
		}
		if err := d.Migrate(ctx); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		if n, names := applied(); n != before || names != n {
			t.Fatalf("after a second migrate bun_migrations has %d rows (%d names), want the same %d", n, names, before)
		}
	})
}

// Instances starting together on one PostgreSQL database wait for each
// other instead of failing on bun's migration lock.
func TestMigrate_ConcurrentPostgres(t *testing.T) {
	if !contains(dbtest.Dialects(), db.DialectPostgres) {
		t.Skip(dbtest.EnvURL + " not set")
	}
	url := dbtest.URL(t, db.DialectPostgres)
	const n = 5
	dbs := make([]*db.DB, n)
	for i := range dbs {
		d, err := db.Open(ctx, url, db.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		dbs[i] = d
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, d := range dbs {
		wg.Go(func() { errs[i] = d.Migrate(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrate %d: %v", i, err)
		}
	}
	mustCreateUser(t, dbs[0], "a@example.com")
}

func TestSQLiteURLForms(t *testing.T) {
	dir := t.TempDir()
	for _, url := range []string{dir + "/a.db", "sqlite://" + dir + "/b.db", "file:" + dir + "/c.db?mode=ro"} {
		d, err := db.Open(ctx, url, db.Options{Logger: quiet})
		if err != nil {
			t.Fatalf("open %q: %v", url, err)
		}
		if err := d.Migrate(ctx); err != nil {
			t.Fatalf("migrate %q: %v", url, err)
		}
		if d.Dialect() != db.DialectSQLite {
			t.Fatalf("dialect %q", d.Dialect())
		}
		d.Close()
	}
	// Which file an unnamed database is, is config's decision
	// (config.DefaultDatabaseURL): here it is an error, not a file in
	// whatever directory the process runs in.
	for _, url := range []string{"", "sqlite://", "file:?mode=ro"} {
		if d, err := db.Open(ctx, url, db.Options{Logger: quiet}); err == nil {
			d.Close()
			t.Errorf("open %q: a database with no file name opened", url)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
