package db_test

import (
	"testing"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db"
)

// Sessions written before conversations existed are read as first turns:
// a session with a parent was a rerun, its root is the first session up
// its parent chain, every response ran with its session's params and
// system prompt, continues nothing and has no reasoning, and the list
// shows one conversation with its turns.
func TestMigrate_OldRowsReadAsFirstTurns(t *testing.T) {
	forEachUser(t, "old@example.com", func(t *testing.T, d *db.DB, u *playground.User) {
		// Back to before conversations (and everything after them).
		if err := db.UndoMigrationsFrom(ctx, d, "20261206000001"); err != nil {
			t.Fatal(err)
		}
		b := d.Bun()
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := b.ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		at := "2025-01-01 00:00:00+00:00"
		for _, s := range []struct{ id, parent string }{{"s_a", ""}, {"s_b", "s_a"}, {"s_c", "s_b"}} {
			var parent any
			if s.parent != "" {
				parent = s.parent
			}
			exec(`INSERT INTO sessions (id, user_id, prompt, system, params, parent_id, created_at, status)
				VALUES (?, ?, 'Hi', 'Be brief', '{"temperature":0.5}', ?, ?, 'complete')`,
				s.id, u.ID, parent, at)
			for pos, model := range []string{"demo/fast", "demo/slow"} {
				exec(`INSERT INTO responses (id, session_id, position, model, text, status)
					VALUES (?, ?, ?, ?, 'answer', 'complete')`,
					s.id+"_r"+string(rune('0'+pos)), s.id, pos, model)
			}
		}
		if err := d.Migrate(ctx); err != nil {
			t.Fatalf("migrate forward: %v", err)
		}

		for _, want := range []struct{ id, kind string }{{"s_a", playground.KindNew}, {"s_b", playground.KindRerun}, {"s_c", playground.KindRerun}} {
			s, err := d.FindSession(ctx, want.id)
			if err != nil {
				t.Fatal(err)
			}
			if s.Kind != want.kind || s.RootID != "s_a" || !s.Revealed || s.Blind {
				t.Errorf("%s: kind %q root %q revealed %v blind %v, want %q, s_a, revealed, not blind",
					want.id, s.Kind, s.RootID, s.Revealed, s.Blind, want.kind)
			}
			for i, r := range s.Responses {
				if r.Label != playground.Label(i) || r.System == nil || *r.System != "Be brief" ||
					r.Params.Temperature == nil || *r.Params.Temperature != 0.5 || r.Continues != nil || r.Reasoning != "" {
					t.Errorf("%s response %d: label %q system %v params %+v continues %v reasoning %q",
						want.id, i, r.Label, r.System, r.Params, r.Continues, r.Reasoning)
				}
			}
		}
		list, _, err := d.ListSessions(ctx, u.ID, "", 20)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].ID != "s_a" || list[0].Turns != 3 {
			t.Fatalf("list: %d items (first %+v), want one conversation s_a of 3 turns", len(list), list)
		}
	})
}

// A response still running when the chunk table arrived keeps the text of
// its last whole-text checkpoint: recovery ends it with that text.
func TestMigrate_RunningTextKept(t *testing.T) {
	forEachUser(t, "old@example.com", func(t *testing.T, d *db.DB, u *playground.User) {
		s := mustCreateSession(t, d, u.ID, "demo/a")
		if err := db.UndoMigrationsFrom(ctx, d, "20261207000002"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Bun().ExecContext(ctx, `UPDATE responses SET text = 'so far', status = 'streaming' WHERE id = ?`, s.Responses[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := d.Migrate(ctx); err != nil {
			t.Fatalf("migrate forward: %v", err)
		}
		if got := mustFindSession(t, d, s.ID).Responses[0]; got.Text != "so far" || got.Status != playground.StatusStreaming {
			t.Fatalf("after the migration: %s %q, want streaming %q", got.Status, got.Text, "so far")
		}
	})
}
