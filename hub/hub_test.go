package hub

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/playground-dev/playground"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func frame(seq int64) playground.Frame {
	return playground.Frame{Seq: seq, Type: playground.EventChunk, Data: []byte{byte('0' + seq%10)}}
}

func TestQueueDropsAViewerThatFallsBehind(t *testing.T) {
	q := NewQueue(3)
	for i := range int64(3) {
		if !q.Push(frame(i + 1)) {
			t.Fatalf("push %d refused below the bound", i+1)
		}
	}
	if q.Push(frame(4)) {
		t.Fatal("a fourth frame fit in a queue of three")
	}
	select {
	case <-q.Done():
	default:
		t.Fatal("an overflowed queue is not done")
	}
	if !q.Overflowed() || q.Push(frame(5)) {
		t.Fatal("overflow not reported, or a closed queue took a frame")
	}
	q.Close()
	q.Close() // twice is fine
}

// TestWakeQueueWakesItsWriter: a queue built with a wake function calls it
// after every push and when it overflows, so a connection that keeps no
// writer goroutine while idle starts one when it must, and learns it fell
// behind.
func TestWakeQueueWakesItsWriter(t *testing.T) {
	wakes := 0
	var q *Queue
	q = NewWakeQueue(2, func() {
		wakes++
		if wakes == 3 && !q.Overflowed() {
			t.Error("the wake for the push that overflowed came before the overflow showed")
		}
	})
	q.Push(frame(1))
	q.PushAll([]playground.Frame{frame(2)})
	if wakes != 2 || q.Len() != 2 {
		t.Fatalf("after two pushes: %d wakes, %d waiting", wakes, q.Len())
	}
	if q.Push(frame(3)) {
		t.Fatal("a third frame fit in a queue of two")
	}
	if wakes != 3 {
		t.Fatalf("the overflow woke the writer %d times, want once", wakes-2)
	}
	if got := q.Drain(nil); len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("drained %+v", got)
	}
}

// TestWakeAll: every viewer with something held is woken once, a large
// audience from several goroutines, and a viewer with nothing waiting is
// not woken at all.
func TestWakeAll(t *testing.T) {
	for _, n := range []int{3, 1000} {
		var woken atomic.Int64
		subs := map[*Subscriber]place{}
		for i := range n {
			q := NewWakeQueue(10, func() { woken.Add(1) })
			if i%2 == 0 {
				q.PushHeld(frame(1))
			}
			subs[&Subscriber{Queue: q}] = place{q: q}
		}
		if woken.Load() != 0 {
			t.Fatalf("%d viewers: PushHeld woke a writer", n)
		}
		wakeAll(subs)
		if got, want := woken.Load(), int64((n+1)/2); got != want {
			t.Fatalf("%d viewers: %d woken, want %d", n, got, want)
		}
	}
}

func TestQueueDrainKeepsOrderAndReusesItsBuffer(t *testing.T) {
	q := NewQueue(10)
	q.Push(frame(1))
	q.Push(frame(2))
	<-q.Ready()
	got := q.Drain(nil)
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("drained %v", got)
	}
	// A replay may go past the bound: it is bounded by the session's log.
	if !q.PushAll([]playground.Frame{frame(3), frame(4), frame(5)}) {
		t.Fatal("replay refused")
	}
	again := q.Drain(got)
	if len(again) != 3 || again[0].Seq != 3 {
		t.Fatalf("second drain %v", again)
	}
	if rest := q.Drain(again); len(rest) != 0 {
		t.Fatalf("empty queue drained %v", rest)
	}
}

type storeFunc func(ctx context.Context, id string) (*playground.Session, error)

func (f storeFunc) FindSession(ctx context.Context, id string) (*playground.Session, error) {
	return f(ctx, id)
}

func TestSubscribeToAStoredSession(t *testing.T) {
	ended := &playground.Session{ID: "s_1", Status: playground.SessionComplete, LastSeq: 9,
		Responses: []*playground.Response{{ID: "r_1", Model: "demo/fast", Status: playground.StatusComplete, Text: "hi"}}}
	h := New(Options{Store: storeFunc(func(_ context.Context, id string) (*playground.Session, error) {
		if id != ended.ID {
			return nil, playground.Errorf(playground.ENotFound, "no")
		}
		return ended, nil
	})})
	defer h.Close()

	q := NewQueue(10)
	src, live, err := h.Subscribe(context.Background(), &Subscriber{Queue: q, Subscribed: true}, "s_1", 0)
	if err != nil || src != nil || live {
		t.Fatalf("subscribe: %v %v %v", src, live, err)
	}
	var evs []playground.WireEvent
	for _, f := range q.Drain(nil) {
		var ev playground.WireEvent
		if err := json.Unmarshal(f.Data, &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if len(evs) != 3 || evs[0].Type != playground.EventSubscribed || evs[0].Seq != 9 ||
		evs[1].Type != playground.EventSnapshot || evs[1].Seq != 8 || evs[1].Session.Responses[0].Text != "hi" ||
		evs[2].Type != playground.EventDone || evs[2].Seq != 9 || evs[2].Status != playground.SessionComplete {
		t.Fatalf("a stored session gave %+v", evs)
	}
	// A viewer that has seen everything gets nothing more.
	q2 := NewQueue(10)
	h.Subscribe(context.Background(), &Subscriber{Queue: q2}, "s_1", 9)
	if got := q2.Drain(nil); len(got) != 0 {
		t.Fatalf("caught-up viewer got %d frames", len(got))
	}
	if _, _, err := h.Subscribe(context.Background(), &Subscriber{Queue: NewQueue(1)}, "s_2", 0); playground.ErrorCode(err) != playground.ENotFound {
		t.Fatalf("unknown session: %v", err)
	}
}

func TestRevokeClosesOnlyThatToken(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	closed := make(chan string, 2)
	h.AddClient(&Client{JTI: "a", Revoke: func() { closed <- "a" }})
	h.AddClient(&Client{JTI: "b", Revoke: func() { closed <- "b" }})
	h.RevokeToken("a")
	if got := <-closed; got != "a" {
		t.Fatalf("revoked %s", got)
	}
	if _, clients := h.Counts(); clients != 1 {
		t.Fatalf("%d clients left", clients)
	}
}

func TestApplySkipsWhatTheCheckpointHas(t *testing.T) {
	s := &playground.Session{ID: "s", Status: playground.SessionRunning, LastSeq: 3,
		Responses: []*playground.Response{{ID: "r", Status: playground.StatusStreaming, Text: "ab", NextIndex: 2}}}
	chunk := func(seq int64, idx int, text string) playground.Frame {
		return playground.EncodeFrame(playground.EventChunk, "s", seq, playground.ChunkEvent{Type: playground.EventChunk,
			SessionID: "s", Seq: seq, ResponseID: "r", Index: idx, Text: text})
	}
	Apply(s, chunk(3, 1, "b")) // already in the checkpoint
	Apply(s, chunk(4, 2, "c"))
	Apply(s, playground.DoneFrame("s", 5, playground.SessionComplete))
	if r := s.Responses[0]; r.Text != "abc" || r.NextIndex != 3 || s.LastSeq != 5 || s.Status != playground.SessionComplete {
		t.Fatalf("applied: %+v, session %+v", r, s)
	}
}

// Reasoning has no stored index: what a checkpoint holds is what came up
// to its seq, and a final row holds all of it, so only newer events of a
// running response are added.
func TestApplyReasoningAfterTheCheckpoint(t *testing.T) {
	s := &playground.Session{ID: "s", Status: playground.SessionRunning, LastSeq: 3,
		Responses: []*playground.Response{
			{ID: "r", Status: playground.StatusStreaming, Reasoning: "ab"},
			{ID: "e", Status: playground.StatusComplete, Reasoning: "all"},
		}}
	reasoning := func(seq int64, resp string, idx int, text string) playground.Frame {
		return playground.ReasoningFrame("s", seq, playground.ReasoningEvent{ResponseID: resp, Index: idx, Text: text})
	}
	// Recovery lays the whole log over the checkpoint.
	Apply(s, reasoning(2, "r", 0, "a"))
	Apply(s, reasoning(3, "r", 1, "b"))
	Apply(s, reasoning(4, "r", 2, "c"))
	Apply(s, reasoning(5, "e", 3, "!"))
	if r := s.Responses[0]; r.Reasoning != "abc" {
		t.Fatalf("reasoning %q, want abc", r.Reasoning)
	}
	if r := s.Responses[1]; r.Reasoning != "all" {
		t.Fatalf("ended response's reasoning %q, want its final row's", r.Reasoning)
	}
}
