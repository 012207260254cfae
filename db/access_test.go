package db_test

import (
	"testing"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db"
)

// TestFindSessionAccess: the owner and share token that decide who sees a
// session are those FindSession gives, for a first turn, a later turn
// covered by its conversation's token, and a turn shared on its own;
// a share change is read at once; an unknown id is ENotFound.
func TestFindSessionAccess(t *testing.T) {
	forEachUser(t, "a@example.com", func(t *testing.T, d *db.DB, u *playground.User) {
		first := mustCreateSession(t, d, u.ID, "demo/a")
		next := newSession(u.ID, "demo/a")
		next.ParentID, next.RootID, next.Kind = &first.ID, first.ID, playground.KindFollowup
		if err := d.CreateSession(ctx, next); err != nil {
			t.Fatal(err)
		}
		agree := func(when string, id, wantToken string) {
			t.Helper()
			a, err := d.FindSessionAccess(ctx, id)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			full := mustFindSession(t, d, id)
			if a.UserID != u.ID || a.ShareToken != wantToken || a.ShareToken != full.ShareToken {
				t.Fatalf("%s: access %+v, FindSession's token %q, want owner %s token %q", when, a, full.ShareToken, u.ID, wantToken)
			}
		}
		agree("first turn, not shared", first.ID, "")
		agree("later turn, not shared", next.ID, "")

		if err := d.SetShareToken(ctx, next.ID, "conv-token"); err != nil {
			t.Fatal(err)
		}
		agree("first turn, conversation shared", first.ID, "conv-token")
		agree("later turn, conversation shared", next.ID, "conv-token")

		// A turn shared on its own, before conversations existed, keeps its
		// own token beside the conversation's.
		if _, err := d.Bun().NewUpdate().Table("sessions").Set("share_token = ?", "own-token").
			Where("id = ?", next.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		agree("later turn with its own token", next.ID, "own-token")
		agree("first turn beside it", first.ID, "conv-token")

		if err := d.SetShareToken(ctx, first.ID, ""); err != nil {
			t.Fatal(err)
		}
		agree("first turn, unshared", first.ID, "")

		_, err := d.FindSessionAccess(ctx, "s_nope")
		wantCode(t, err, playground.ENotFound)
	})
}
