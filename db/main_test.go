package db_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db"
	"github.com/playground-dev/playground/db/dbtest"
)

// TestMain checks that no test leaves a goroutine behind (connection
// openers of unclosed pools, in particular).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// MustOpenDB returns a fresh, migrated DB of the dialect.
func MustOpenDB(tb testing.TB, dialect string, opts db.Options) *db.DB {
	tb.Helper()
	return dbtest.MustOpenDB(tb, dialect, opts)
}

// forEachDB runs fn once per dialect under test, on a fresh DB each.
func forEachDB(t *testing.T, opts db.Options, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	dbtest.Each(t, opts, fn)
}

// forEachUser is forEachDB (with the test plans) and one account, email,
// created in each DB: how most tests begin.
func forEachUser(t *testing.T, email string, fn func(t *testing.T, d *db.DB, u *playground.User)) {
	t.Helper()
	forEachDB(t, db.Options{Plans: plans}, func(t *testing.T, d *db.DB) { fn(t, d, mustCreateUser(t, d, email)) })
}

// together runs fn(0) … fn(n-1) at once, each in its own goroutine,
// released together so that they race, and waits for all of them.
func together(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var ctx = context.Background()

func mustCreateUser(tb testing.TB, d *db.DB, email string) *playground.User {
	tb.Helper()
	u := &playground.User{Email: email, PasswordHash: "hash"}
	if err := d.CreateUser(ctx, u); err != nil {
		tb.Fatalf("create user: %v", err)
	}
	return u
}

func newSession(userID string, models ...string) *playground.Session {
	s := &playground.Session{UserID: userID, Prompt: "Explain CRDTs"}
	for _, m := range models {
		s.Responses = append(s.Responses, &playground.Response{Model: m})
	}
	return s
}

func mustCreateSession(tb testing.TB, d *db.DB, userID string, models ...string) *playground.Session {
	tb.Helper()
	s := newSession(userID, models...)
	if err := d.CreateSession(ctx, s); err != nil {
		tb.Fatalf("create session: %v", err)
	}
	return s
}

func mustFindSession(tb testing.TB, d *db.DB, id string) *playground.Session {
	tb.Helper()
	s, err := d.FindSession(ctx, id)
	if err != nil {
		tb.Fatalf("find session %s: %v", id, err)
	}
	return s
}

// wantCode fails unless err is a *playground.Error with the code.
func wantCode(tb testing.TB, err error, code string) *playground.Error {
	tb.Helper()
	var pe *playground.Error
	if !errors.As(err, &pe) || pe.Code != code {
		tb.Fatalf("err = %v, want code %s", err, code)
	}
	return pe
}

func ptr[T any](v T) *T { return &v }

// forEachDBAt is forEachDB with a clock of its own per dialect, starting
// at start, for tests that move time.
func forEachDBAt(t *testing.T, plans playground.Plans, start time.Time, fn func(t *testing.T, d *db.DB, clk *clock)) {
	t.Helper()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			clk := newClock(start)
			fn(t, MustOpenDB(t, dialect, db.Options{Plans: plans, Now: clk.Now}), clk)
		})
	}
}

var quiet = slog.New(slog.DiscardHandler)
