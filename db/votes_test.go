package db_test

import (
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db"
)

// A vote replaces the account's earlier one; after the reveal a vote is a
// conflict and leaves the votes as they were; only revealed sessions'
// votes are counted, each with its session's complete models.
func TestVotesCastRevealCount(t *testing.T) {
	forEachDB(t, db.Options{Plans: plans}, func(t *testing.T, d *db.DB) {
		u, v := mustCreateUser(t, d, "u@example.com"), mustCreateUser(t, d, "v@example.com")
		s := newSession(u.ID, "demo/fast", "demo/slow", "demo/steady")
		s.Blind = true
		if err := d.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		if got := mustFindSession(t, d, s.ID); !got.Blind || got.Revealed || got.Votes == nil || *got.Votes != 0 {
			t.Fatalf("stored blind session: blind %v revealed %v votes %v", got.Blind, got.Revealed, got.Votes)
		}
		for i, r := range s.Responses[:2] {
			r.Status = playground.StatusComplete
			if i == 1 {
				r.Status = playground.StatusError
			}
			r.Metrics = &playground.Metrics{FinishReason: playground.FinishStop}
			if err := d.FinishResponse(ctx, s.ID, r, false); err != nil {
				t.Fatal(err)
			}
		}
		s.Responses[2].Status = playground.StatusComplete
		s.Responses[2].Metrics = &playground.Metrics{FinishReason: playground.FinishStop}
		if err := d.FinishResponse(ctx, s.ID, s.Responses[2], false); err != nil {
			t.Fatal(err)
		}
		cast := func(user, choice string) error {
			return d.CastVote(ctx, &playground.Vote{SessionID: s.ID, UserID: user, Choice: choice, At: time.Now()})
		}
		for _, c := range []struct{ user, choice string }{{u.ID, "tie"}, {u.ID, s.Responses[0].ID}, {v.ID, "all_bad"}} {
			if err := cast(c.user, c.choice); err != nil {
				t.Fatal(err)
			}
		}
		if cv, err := d.CountedVotes(ctx, ""); err != nil || len(cv) != 0 {
			t.Fatalf("counted before the reveal: %v %v", cv, err)
		}
		if did, err := d.Reveal(ctx, s.ID); err != nil || !did {
			t.Fatalf("reveal: %v %v", did, err)
		}
		if did, err := d.Reveal(ctx, s.ID); err != nil || did {
			t.Fatalf("second reveal: %v %v", did, err)
		}
		wantCode(t, cast(v.ID, "tie"), playground.EConflict)
		tally, err := d.Tally(ctx, s.ID)
		if err != nil || len(tally) != 2 || tally[s.Responses[0].ID] != 1 || tally["all_bad"] != 1 {
			t.Fatalf("tally %v %v", tally, err)
		}
		mine, err := d.CountedVotes(ctx, u.ID)
		if err != nil || len(mine) != 1 {
			t.Fatalf("u's counted votes: %v %v", mine, err)
		}
		if m := mine[0]; m.Winner != "demo/fast" || len(m.Models) != 2 || m.Models[0] != "demo/fast" || m.Models[1] != "demo/steady" {
			t.Errorf("u's vote: %+v (demo/slow ended in error and is no opponent)", m)
		}
		all, err := d.CountedVotes(ctx, "")
		if err != nil || len(all) != 2 {
			t.Fatalf("all counted votes: %v %v", all, err)
		}
		wantCode(t, d.CastVote(ctx, &playground.Vote{SessionID: "s_none", UserID: u.ID, Choice: "tie", At: time.Now()}), playground.ENotFound)
	})
}
