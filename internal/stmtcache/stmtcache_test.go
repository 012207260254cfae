package stmtcache_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"go.uber.org/goleak"

	"github.com/playground-dev/playground/db"
	"github.com/playground-dev/playground/db/dbtest"
	"github.com/playground-dev/playground/internal/stmtcache"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// each runs fn on a fresh, migrated database of each dialect under test,
// with an empty cache of its own.
func each(t *testing.T, fn func(t *testing.T, b *bun.DB, c *stmtcache.Cache)) {
	dbtest.Each(t, db.Options{}, func(t *testing.T, d *db.DB) {
		c := stmtcache.New(d.Bun())
		t.Cleanup(c.Close)
		fn(t, d.Bun(), c)
	})
}

var ctx = context.Background()

// The drivers bind $n to the n-th argument, also where it appears twice,
// on both databases: the statements' texts rely on it.
func TestPlaceholdersOnBothDatabases(t *testing.T) {
	each(t, func(t *testing.T, b *bun.DB, c *stmtcache.Cache) {
		var got string
		if err := c.Scan(ctx, nil, "SELECT CAST($1 AS TEXT) || CAST($2 AS TEXT) || CAST($1 AS TEXT)", []any{"a", "b"}, &got); err != nil || got != "aba" {
			t.Fatalf("scan = %q, %v; want aba", got, err)
		}
		if n, err := c.Affected(ctx, nil, "INSERT INTO settings (key, value) VALUES ($1, $2)", "k", "it's"); err != nil || n != 1 {
			t.Fatalf("insert: %d rows, %v", n, err)
		}
		var v string
		if err := b.NewSelect().Table("settings").Column("value").Where("key = ?", "k").Scan(ctx, &v); err != nil || v != "it's" {
			t.Fatalf("stored %q, %v; want it's", v, err)
		}
	})
}

// A statement is prepared once and the same one serves every later call,
// also when the first calls come at once.
func TestPreparedOnce(t *testing.T) {
	each(t, func(t *testing.T, _ *bun.DB, c *stmtcache.Cache) {
		const q = "SELECT COUNT(*) FROM settings WHERE key = $1"
		got := make([]any, 8)
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() {
				st, err := c.Get(ctx, q)
				if err != nil {
					t.Error(err)
				}
				got[i] = st
			})
		}
		wg.Wait()
		for i := range got {
			if got[i] != got[0] {
				t.Fatalf("call %d got statement %p, call 0 %p", i, got[i], got[0])
			}
		}
		if err := c.Prepare(ctx, q, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		if c.Len() != 2 {
			t.Fatalf("%d statements kept, want 2", c.Len())
		}
	})
}

// A statement that cannot be prepared is an error and is not kept; one run
// after the cache is closed is refused.
func TestErrorsAndClose(t *testing.T) {
	each(t, func(t *testing.T, _ *bun.DB, c *stmtcache.Cache) {
		if _, err := c.Exec(ctx, nil, "UPDATE no_such_table SET x = $1", 1); err == nil {
			t.Fatal("exec on a missing table: no error")
		}
		if err := c.Prepare(ctx, "UPDATE no_such_table SET x = $1"); err == nil {
			t.Fatal("prepare of a missing table: no error")
		}
		if c.Len() != 0 {
			t.Fatalf("%d statements kept after failed prepares, want 0", c.Len())
		}
		st, err := c.Get(ctx, "SELECT 1")
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if _, err := st.ExecContext(ctx); err == nil {
			t.Fatal("a closed statement ran")
		}
	})
}

// A transaction never waits for a second connection to prepare a
// statement: with one connection, held by the transaction, a statement
// not prepared yet runs unprepared.
func TestUnpreparedInTransaction(t *testing.T) {
	each(t, func(t *testing.T, b *bun.DB, c *stmtcache.Cache) {
		b.SetMaxOpenConns(1)
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := b.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := c.Exec(ctx, &tx, "INSERT INTO settings (key, value) VALUES ($1, $2)", "k", "v"); err != nil {
				return err
			}
			var v string
			return c.Scan(ctx, &tx, "SELECT value FROM settings WHERE key = $1", []any{"k"}, &v)
		})
		if err != nil {
			t.Fatal(err)
		}
		if c.Len() != 0 {
			t.Fatalf("%d statements prepared inside the transaction, want 0", c.Len())
		}
		// Prepared, it runs in a transaction on the transaction's connection.
		if err := c.Prepare(ctx, "UPDATE settings SET value = $1 WHERE key = $2"); err != nil {
			t.Fatal(err)
		}
		err = b.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := c.Exec(ctx, &tx, "UPDATE settings SET value = $1 WHERE key = $2", "w", "k")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// hook records what a bun query hook sees.
type hook struct {
	mu     sync.Mutex
	events []bun.QueryEvent
}

func (h *hook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (h *hook) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, *e)
}

// Query hooks see each statement as bun's hooks see a query, with the
// arguments and the outcome.
func TestHooksSeeStatements(t *testing.T) {
	each(t, func(t *testing.T, _ *bun.DB, c *stmtcache.Cache) {
		h := &hook{}
		c.AddHook(h)
		const q = "INSERT INTO settings (key, value) VALUES ($1, $2)"
		if _, err := c.Exec(ctx, nil, q, "k", "v"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, nil, q, "k", "v"); err == nil {
			t.Fatal("a second insert of the same key: no error")
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.events) != 2 {
			t.Fatalf("hook saw %d statements, want 2", len(h.events))
		}
		for i, e := range h.events {
			if e.Query != q || len(e.QueryArgs) != 2 || e.QueryArgs[0] != "k" {
				t.Fatalf("event %d: %q %v", i, e.Query, e.QueryArgs)
			}
		}
		if h.events[0].Err != nil || h.events[1].Err == nil {
			t.Fatalf("errors seen %v, %v; want none, then the conflict", h.events[0].Err, h.events[1].Err)
		}
	})
}

// Time writes a time as bun writes it into SQL: SQLite keeps times as that
// text and compares them as text.
func TestTimeAsBun(t *testing.T) {
	each(t, func(t *testing.T, b *bun.DB, _ *stmtcache.Cache) {
		for _, tm := range []time.Time{
			time.Date(2026, 3, 10, 23, 59, 58, 123456789, time.FixedZone("CET", 3600)),
			time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC),
		} {
			want := strings.Trim(b.QueryGen().FormatQuery("?", tm), "'")
			if got := stmtcache.Time(tm); got != want {
				t.Fatalf("Time(%v) = %q, bun writes %q", tm, got, want)
			}
		}
		if stmtcache.TimePtr(nil) != nil {
			t.Fatal("TimePtr(nil) is not nil")
		}
	})
}
