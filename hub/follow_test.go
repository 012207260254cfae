package hub

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/playground-dev/playground"
)

// announced decodes the next events waiting in q.
func announced(t *testing.T, q *Queue) []playground.NextEvent {
	t.Helper()
	var out []playground.NextEvent
	for _, f := range q.Drain(nil) {
		var ev playground.NextEvent
		if err := json.Unmarshal(f.Data, &ev); err != nil || f.Type != playground.EventNext {
			t.Fatalf("frame %s %s: %v", f.Type, f.Data, err)
		}
		out = append(out, ev)
	}
	return out
}

// TestFollowersHearOfTheirSessionsTurns: an announcement reaches the
// followers of that session only; a removed follower hears no more; an
// unshare cuts off exactly the followers who came with its token.
func TestFollowersHearOfTheirSessionsTurns(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	owner, shared, other := NewFollower(NewQueue(8), ""), NewFollower(NewQueue(8), "tok"), NewFollower(NewQueue(8), "")
	h.AddFollower("s_1", owner)
	h.AddFollower("s_1", shared)
	h.AddFollower("s_2", other)

	if err := h.Announce(context.Background(), "s_1", playground.NextTurn{SessionID: "s_3", Kind: playground.KindFollowup}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*Follower{owner, shared} {
		got := announced(t, f.Queue)
		if len(got) != 1 || got[0].SessionID != "s_1" || got[0].Next.SessionID != "s_3" || got[0].Next.Kind != playground.KindFollowup {
			t.Fatalf("a follower of s_1 got %+v", got)
		}
	}
	if got := announced(t, other.Queue); len(got) != 0 {
		t.Fatalf("a follower of s_2 heard of s_1's turn: %+v", got)
	}

	h.CutFollowers("s_1", "tok")
	h.CutFollowers("s_1", "tok") // each instance may hear of an unshare twice
	select {
	case <-shared.Cut():
	default:
		t.Fatal("the share viewer's follow was not cut")
	}
	select {
	case <-owner.Cut():
		t.Fatal("the owner's follow was cut by an unshare")
	default:
	}
	h.RemoveFollower("s_2", other)
	h.RemoveFollower("s_2", other)
	h.DeliverNext("s_1", playground.NextTurn{SessionID: "s_4", Kind: playground.KindRerun})
	h.DeliverNext("s_2", playground.NextTurn{SessionID: "s_5", Kind: playground.KindRerun})
	if got := announced(t, owner.Queue); len(got) != 1 || got[0].Next.SessionID != "s_4" {
		t.Fatalf("the owner got %+v", got)
	}
	if a, b := announced(t, shared.Queue), announced(t, other.Queue); len(a)+len(b) != 0 {
		t.Fatalf("followers who had let go heard %+v %+v", a, b)
	}
	if n := h.Followers(); n != 1 {
		t.Fatalf("%d follows registered, want 1", n)
	}
}
