package db

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/playground-dev/playground"
)

// openSQLite is a fresh, migrated SQLite DB in the test's temp dir (the
// package's own tests; db_test's run on every dialect through dbtest).
func openSQLite(t *testing.T) *DB {
	t.Helper()
	ctx := context.Background()
	d, err := Open(ctx, t.TempDir()+"/hot.db", Options{Plans: playground.Plans{FreePerDay: 10, ProPerDay: 100}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

// A transaction never waits for a second connection to prepare a
// statement: with none prepared yet and more comparisons at once than the
// pool has connections, each runs its statements unprepared and all
// finish.
func TestHotStmtsUnpreparedInTransactions(t *testing.T) {
	d := openSQLite(t)
	d.plans = playground.Plans{FreePerDay: 1000}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := &playground.User{Email: "t@example.com", PasswordHash: "x"}
	if err := d.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	d.hot.Close() // nothing prepared: each statement in a transaction runs unprepared
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			s := &playground.Session{UserID: u.ID, Prompt: "p", Responses: []*playground.Response{{Model: "demo/a"}}}
			if err := d.CreateSession(ctx, s); err != nil {
				t.Error(err)
				return
			}
			r := s.Responses[0]
			if err := d.Checkpoint(ctx, s.ID, 1, []playground.ResponseCheckpoint{{ID: r.ID, Status: playground.StatusStreaming, Text: "a"}}); err != nil {
				t.Error(err)
			}
			r.Status, r.Text = playground.StatusComplete, "ab"
			if err := d.FinishResponse(ctx, s.ID, r, false); err != nil {
				t.Error(err)
			}
			if err := d.FinishSession(ctx, s.ID, playground.SessionComplete, 2); err != nil {
				t.Error(err)
			}
			got, err := d.FindSession(ctx, s.ID)
			if err != nil || got.Status != playground.SessionComplete || got.Responses[0].Text != "ab" {
				t.Errorf("stored %+v, %v; want complete with text ab", got, err)
			}
		})
	}
	wg.Wait()
	u2, err := d.FindUserByID(ctx, u.ID)
	if err != nil || u2.Quota.Remaining != 980 {
		t.Fatalf("quota left %+v, %v; want 980", u2, err)
	}
}

// The hot writes store times as bun writes them: on SQLite, where a time
// is text and compared as text, in bun's UTC form with microseconds, the
// same as the rows bun writes (the user's created_at).
func TestHotWritesStoreTimesAsBun(t *testing.T) {
	d := openSQLite(t)
	ctx := context.Background()
	clock := time.Date(2026, 3, 10, 23, 59, 58, 123456789, time.FixedZone("CET", 3600))
	d.nowFn = func() time.Time { return clock }
	u := &playground.User{Email: "t@example.com", PasswordHash: "x"}
	if err := d.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	s := &playground.Session{UserID: u.ID, Prompt: "p", Responses: []*playground.Response{{Model: "demo/a"}}}
	if err := d.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	r := s.Responses[0]
	r.Status, r.Metrics = playground.StatusComplete, &playground.Metrics{FinishReason: playground.FinishStop}
	if err := d.FinishResponse(ctx, s.ID, r, false); err != nil {
		t.Fatal(err)
	}
	var userCreated, period, created, ended string
	if err := d.db.QueryRowContext(ctx, "SELECT u.created_at, u.quota_period_start, s.created_at, r.ended_at"+
		" FROM users u, sessions s, responses r WHERE s.id = ? AND r.session_id = s.id AND u.id = s.user_id", s.ID).
		Scan(&userCreated, &period, &created, &ended); err != nil {
		t.Fatal(err)
	}
	const want = "2026-03-10 22:59:58.123456+00:00"
	if userCreated != want || created != want || ended != want {
		t.Fatalf("stored user created %q, session created %q, response ended %q; want all %q", userCreated, created, ended, want)
	}
	if period != "2026-03-10 00:00:00+00:00" {
		t.Fatalf("stored quota period %q, want 2026-03-10 00:00:00+00:00", period)
	}
	got, err := d.FindSession(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(clock.Truncate(time.Microsecond)) {
		t.Fatalf("created at %v, want %v", got.CreatedAt, clock.Truncate(time.Microsecond))
	}
	if !errors.Is(d.FinishSession(ctx, s.ID, playground.SessionComplete, 3), nil) {
		t.Fatal("finish session failed")
	}
}

// seen records the statements a query hook sees.
type seen struct {
	mu      sync.Mutex
	queries []string
	args    [][]any
}

func (h *seen) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (h *seen) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.queries = append(h.queries, e.Query)
	h.args = append(h.args, e.QueryArgs)
}

// A query hook added to the DB sees the prepared statements too, with
// their arguments.
func TestQueryHookSeesHotStatements(t *testing.T) {
	d := openSQLite(t)
	h := &seen{}
	d.AddQueryHook(h)
	ctx := context.Background()
	u := &playground.User{Email: "t@example.com", PasswordHash: "x"}
	if err := d.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	s := &playground.Session{UserID: u.ID, Prompt: "p", Responses: []*playground.Response{{Model: "demo/a"}}}
	if err := d.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var found bool
	for i, q := range h.queries {
		if q == insertSessionSQL && len(h.args[i]) == 15 && h.args[i][0] == s.ID {
			found = true
		}
	}
	if !found || h.queries[0] == insertSessionSQL {
		t.Fatalf("hook saw %q; want bun's insert of the user, then the session's insert with its 15 arguments", h.queries)
	}
}
