package db_test

import (
	"testing"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db"
)

// A response's visible thinking is stored next to its text: by each
// checkpoint while it runs, by the final row when it ends, and read back
// with the session.
func TestReasoningStored(t *testing.T) {
	forEachUser(t, "a@example.com", func(t *testing.T, d *db.DB, u *playground.User) {
		s := mustCreateSession(t, d, u.ID, "demo/a")
		if r := mustFindSession(t, d, s.ID).Responses[0]; r.Reasoning != "" {
			t.Fatalf("new response reasoning %q", r.Reasoning)
		}
		r := s.Responses[0]
		if err := d.Checkpoint(ctx, s.ID, 3, []playground.ResponseCheckpoint{
			{ID: r.ID, Status: playground.StatusStreaming, Reasoning: "Think", Text: "", NextIndex: 0, Attempts: 1},
		}); err != nil {
			t.Fatal(err)
		}
		if got := mustFindSession(t, d, s.ID).Responses[0]; got.Reasoning != "Think" || got.Text != "" {
			t.Fatalf("checkpointed reasoning %q, text %q", got.Reasoning, got.Text)
		}
		r.Status, r.Reasoning, r.Text, r.NextIndex = playground.StatusComplete, "Think, then think more.", "Answer.", 1
		r.Metrics = &playground.Metrics{DurationMs: 10, Attempts: 1, FinishReason: "stop"}
		if err := d.FinishResponse(ctx, s.ID, r, false); err != nil {
			t.Fatal(err)
		}
		if got := mustFindSession(t, d, s.ID).Responses[0]; got.Reasoning != "Think, then think more." || got.Text != "Answer." {
			t.Fatalf("final reasoning %q, text %q", got.Reasoning, got.Text)
		}
	})
}
