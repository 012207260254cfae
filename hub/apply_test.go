package hub

import (
	"testing"

	"github.com/playground-dev/playground"
)

// A response's final row is committed before the session's events that
// end it: a snapshot taken in between, at the last seq logged so far,
// holds the text of that seq, so that the chunk still to come is added
// once. Thinking and the session's last seq come from the log too.
func TestFromLogIsTheLogsStateAtItsSeq(t *testing.T) {
	const sid = "s_1"
	stored := &playground.Session{ID: sid, Status: playground.SessionRunning, LastSeq: 1, Shared: true, Responses: []*playground.Response{{
		ID: "r_1", Status: playground.StatusComplete, Text: "one two three", Reasoning: "hmm", NextIndex: 3,
		Metrics: &playground.Metrics{Attempts: 1}, Rating: 1,
	}}}
	chunk := func(seq int64, i int, text string) playground.Frame {
		return playground.ChunkFrame(sid, seq, playground.ChunkEvent{ResponseID: "r_1", Index: i, Text: text})
	}
	log := []playground.Frame{
		playground.StatusFrame(sid, 1, playground.StatusEvent{ResponseID: "r_1", Status: playground.StatusStreaming}),
		playground.ReasoningFrame(sid, 2, playground.ReasoningEvent{ResponseID: "r_1", Index: 0, Text: "hmm"}),
		chunk(3, 0, "one "),
		chunk(4, 1, "two "),
	}
	logged, ok := FromLog(stored, log)
	if !ok {
		t.Fatal("a whole log was refused")
	}
	snap := Overlay(stored, logged)
	r := snap.Responses[0]
	if snap.LastSeq != 4 || r.Text != "one two " || r.Reasoning != "hmm" || r.Status != playground.StatusStreaming || r.Metrics != nil {
		t.Fatalf("snapshot at %d: %q, thinking %q, %s, metrics %v", snap.LastSeq, r.Text, r.Reasoning, r.Status, r.Metrics)
	}
	if !snap.Shared || r.Rating != 1 {
		t.Fatal("the stored session's sharing and ratings were lost")
	}
	// The viewer who got the snapshot adds the events after its seq.
	if !Extend(logged, []playground.Frame{log[3], chunk(5, 2, "three")}) {
		t.Fatal("the next event was refused")
	}
	if got := logged.Responses[0].Text; got != "one two three" {
		t.Fatalf("brought forward: %q", got)
	}
	// A log that does not start at seq 1, or skips one, is no log.
	if _, ok := FromLog(stored, log[1:]); ok {
		t.Fatal("a log without its first event was taken")
	}
	if Extend(logged, []playground.Frame{chunk(7, 3, "four")}) {
		t.Fatal("an event after a gap was taken")
	}
}
