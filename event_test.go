package playground

import (
	"encoding/json"
	"testing"
)

// TestFrameConstructors: each constructor states the type, session and seq
// in the frame and in its JSON alike, and only done and the errors that cut
// a viewer off end a subscription.
func TestFrameConstructors(t *testing.T) {
	s := &Session{ID: "s_1"}
	for _, c := range []struct {
		name   string
		f      Frame
		typ    EventType
		seq    int64 // in the JSON
		logID  int64
		logged bool
		ends   bool
	}{
		{"status", StatusFrame("s_1", 3, StatusEvent{ResponseID: "r", Status: StatusStreaming}), EventStatus, 3, 3, true, false},
		{"chunk", ChunkFrame("s_1", 4, ChunkEvent{ResponseID: "r", Text: "hi"}), EventChunk, 4, 4, true, false},
		{"metrics", MetricsFrame("s_1", 5, MetricsEvent{ResponseID: "r"}), EventMetrics, 5, 5, true, false},
		{"done", DoneFrame("s_1", 6, SessionComplete), EventDone, 6, 6, true, true},
		{"done read back", LogFrame("s_1", 6, EventDone, []byte(`{"type":"done","sessionId":"s_1","seq":6}`)), EventDone, 6, 6, true, true},
		{"chunk read back", LogFrame("s_1", 4, EventChunk, []byte(`{"type":"chunk","sessionId":"s_1","seq":4}`)), EventChunk, 4, 4, true, false},
		{"snapshot", SnapshotFrame(s, 5), EventSnapshot, 5, 5, true, false},
		{"empty snapshot", SnapshotFrame(s, 0), EventSnapshot, 0, 0, true, false},
		{"presence", PresenceFrame("s_1", 2), EventPresence, 0, 0, false, false},
		{"next", NextFrame("s_1", NextTurn{SessionID: "s_2", Kind: KindFollowup}), EventNext, 0, 0, false, false},
		{"subscribed", SubscribedFrame("s_1", 5), EventSubscribed, 5, 0, false, false},
		{"cut off", CutOffFrame("s_1"), EventError, 0, 0, false, true},
		{"reply error", ReplyErrorFrame("s_1", Errorf(ENotFound, "no")), EventError, 0, 0, false, false},
	} {
		var got WireEvent
		if err := json.Unmarshal(c.f.Data, &got); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		id, logged := c.f.LogID()
		if c.f.Type != c.typ || got.Type != c.typ || c.f.SessionID != "s_1" || got.SessionID != "s_1" || got.Seq != c.seq ||
			id != c.logID || logged != c.logged || c.f.Ends != c.ends {
			t.Errorf("%s: frame %+v (LogID %d %v), JSON %s", c.name, c.f, id, logged, c.f.Data)
		}
	}
}

// TestNextFrame: a next event names its parent as sessionId and the new
// turn under next, and carries no seq at all.
func TestNextFrame(t *testing.T) {
	f := NextFrame("s_1", NextTurn{SessionID: "s_2", Kind: KindRerun})
	want := `{"type":"next","sessionId":"s_1","next":{"sessionId":"s_2","kind":"rerun"}}`
	if string(f.Data) != want {
		t.Fatalf("next frame %s, want %s", f.Data, want)
	}
}
