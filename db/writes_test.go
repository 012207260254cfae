package db

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/playground-dev/playground"
)

// On SQLite, an instance's writes are served in the order they asked,
// never starved by writes that came later. Another process (a backup, the
// admin command) holds the write lock; a person starts a comparison, and
// while they wait, six more people do, one after the other. When the lock
// is let go, the sessions are stored in the order they were asked for.
// SQLite's busy timeout alone lets each writer poll, sleeping up to 100 ms
// between tries, and those that asked later, polling more often, went
// first: the first to ask was stored third to seventh in four runs.
func TestSQLiteWritesTakeTurns(t *testing.T) {
	d := openSQLite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := &playground.User{Email: "t@example.com", PasswordHash: "x"}
	if err := d.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}

	other, err := d.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	const people = 7
	ids := make([]string, people)
	var wg sync.WaitGroup
	for i := range people {
		s := &playground.Session{UserID: u.ID, Prompt: "p", Responses: []*playground.Response{{Model: "demo/a"}}}
		wg.Go(func() {
			if err := d.CreateSession(ctx, s); err != nil {
				t.Errorf("person %d: %v", i, err)
			}
			ids[i] = s.ID
		})
		time.Sleep(50 * time.Millisecond) // waiting before the next one asks
	}
	if _, err := other.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	var stored []string
	if err := d.db.NewSelect().Table("sessions").Column("id").OrderExpr("rowid").Scan(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stored, ids) {
		t.Fatalf("sessions stored in the order\n%v\nwant the order asked\n%v", stored, ids)
	}
}

// A write that cannot have its turn within the busy timeout fails as the
// database being unavailable (the API's 503 with Retry-After), and one
// whose caller gives up stops waiting.
func TestSQLiteWriteTurnWaitEnds(t *testing.T) {
	d := openSQLite(t)
	d.turns.wait = 200 * time.Millisecond
	ctx := context.Background()
	if err := d.turns.take(ctx); err != nil { // a write that does not end
		t.Fatal(err)
	}
	defer d.turns.give()

	start := time.Now()
	err := d.CreateUser(ctx, &playground.User{Email: "t@example.com", PasswordHash: "x"})
	if took := time.Since(start); playground.ErrorCode(err) != playground.EUnavailable || took < d.turns.wait {
		t.Fatalf("create user with the turn held: %v after %v; want unavailable after %v", err, took, d.turns.wait)
	}

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := d.SetShareToken(short, "s_x", "tok"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("share with the turn held and a 50ms deadline: %v, want the deadline", err)
	}
}
