package hub

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playground-dev/playground"
)

// chunkAt is a logged chunk event of session s_1 at seq.
func chunkAt(seq int64) playground.Frame {
	return playground.ChunkFrame("s_1", seq, playground.ChunkEvent{ResponseID: "r_1", Index: int(seq), Text: "x"})
}

// seqs lists the frames waiting in q as a viewer reads them: each
// event's type and the seq it carries (a snapshot's: the seq it covers);
// an error is the cut-off.
func seqs(q *Queue) []string {
	var out []string
	for _, f := range q.Drain(nil) {
		seq := f.Seq
		switch f.Type {
		case playground.EventSnapshot:
			seq = f.Covers
		case playground.EventSubscribed:
			var ev playground.SubscribedEvent
			_ = json.Unmarshal(f.Data, &ev)
			seq = ev.Seq
		case playground.EventError:
			out = append(out, "cut off")
			continue
		}
		out = append(out, string(f.Type)+":"+strconv.FormatInt(seq, 10))
	}
	return out
}

func same(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func noCount(_ string, local int) int { return local }

// TestViewerSetReplaysAndDelivers: a viewer who comes back with a seq the
// log covers gets exactly the events after it, then the live ones; one
// who comes with a snapshot up to a later seq does not get again what the
// snapshot covers; the "subscribed" frame comes first, with the seq the
// viewer is up to.
func TestViewerSetReplaysAndDelivers(t *testing.T) {
	v := NewViewerSet("s_1", 2, noCount)
	for seq := int64(3); seq <= 5; seq++ {
		v.Publish(chunkAt(seq))
	}
	if _, ok := v.Replay(1); ok {
		t.Fatal("replayed from seq 1, which the log does not cover (it starts after 2)")
	}
	frames, ok := v.Replay(3)
	if !ok || len(frames) != 2 || frames[0].Seq != 4 {
		t.Fatalf("replay after 3 = %v, %v", frames, ok)
	}
	resumed := &Subscriber{Queue: NewQueue(16), Subscribed: true}
	if v.Add(resumed, frames, v.Last()) != Live {
		t.Fatal("a running session's viewer is not live")
	}
	// A snapshot from elsewhere that already covers seq 7.
	ahead := &Subscriber{Queue: NewQueue(16)}
	v.Add(ahead, []playground.Frame{playground.SnapshotFrame(&playground.Session{ID: "s_1"}, 7)}, 7)
	for seq := int64(6); seq <= 8; seq++ {
		v.Publish(chunkAt(seq))
	}
	v.Publish(chunkAt(7)) // again: the set has it, nobody gets it twice

	if got, want := seqs(resumed.Queue), []string{"subscribed:5", "chunk:4", "chunk:5", "chunk:6", "chunk:7", "chunk:8"}; !same(got, want) {
		t.Errorf("resumed viewer got %v, want %v", got, want)
	}
	if got, want := seqs(ahead.Queue), []string{"snapshot:7", "chunk:8"}; !same(got, want) {
		t.Errorf("viewer ahead got %v, want %v", got, want)
	}
}

// TestViewerSetDropsASlowViewer: a viewer whose queue is full is dropped
// and gets nothing more, the others get every event, and the next
// presence event counts one viewer fewer.
func TestViewerSetDropsASlowViewer(t *testing.T) {
	v := NewViewerSet("s_1", 0, noCount)
	slow, fast := &Subscriber{Queue: NewQueue(2)}, &Subscriber{Queue: NewQueue(16)}
	v.Add(slow, nil, 0)
	v.Add(fast, nil, 0)
	for seq := int64(1); seq <= 4; seq++ {
		v.Publish(chunkAt(seq))
	}
	if !slow.Queue.Overflowed() || v.Len() != 1 {
		t.Fatalf("slow viewer overflowed=%v, set holds %d", slow.Queue.Overflowed(), v.Len())
	}
	if n := fast.Queue.Len(); n != 4 {
		t.Fatalf("the other viewer has %d events, want 4", n)
	}
	select {
	case <-v.PresenceC():
	case <-time.After(5 * time.Second):
		t.Fatal("no presence event after a viewer was dropped")
	}
	v.SendPresence()
	got := fast.Queue.Drain(nil)
	var p playground.PresenceEvent
	if last := got[len(got)-1]; last.Type != playground.EventPresence || json.Unmarshal(last.Data, &p) != nil || p.Viewers != 1 {
		t.Fatalf("last frame %s %s, want presence of 1 viewer", last.Type, last.Data)
	}
}

// TestViewerSetUnshareAfterDone: unsharing cuts off exactly the viewers
// who came with that token, even after the session ended (for those who
// came during the replay window); after done nothing is published, and
// no presence event is due.
func TestViewerSetUnshareAfterDone(t *testing.T) {
	v := NewViewerSet("s_1", 0, noCount)
	owner, shared := &Subscriber{Queue: NewQueue(16)}, &Subscriber{Queue: NewQueue(16), ShareToken: "tok"}
	v.Add(owner, nil, 0)
	v.Add(shared, nil, 0)
	v.Publish(chunkAt(1))
	v.Publish(playground.DoneFrame("s_1", 2, playground.SessionComplete))
	v.Publish(chunkAt(3))
	if !v.Ended() || v.PresenceC() != nil {
		t.Fatalf("after done: ended=%v, presence due=%v", v.Ended(), v.PresenceC() != nil)
	}
	late, lateOwner := &Subscriber{Queue: NewQueue(16), ShareToken: "tok"}, &Subscriber{Queue: NewQueue(16)}
	if v.Add(late, nil, 2) != Ended || v.Add(lateOwner, nil, 2) != Ended {
		t.Fatal("a viewer after done is not told the session has ended")
	}
	v.Unshare("tok")
	want := map[*Subscriber][]string{
		owner:     {"chunk:1", "done:2"},
		shared:    {"chunk:1", "done:2", "cut off"},
		late:      {"cut off"},
		lateOwner: nil,
	}
	for sub, w := range want {
		if got := seqs(sub.Queue); !same(got, w) {
			t.Errorf("viewer with token %q got %v, want %v", sub.ShareToken, got, w)
		}
	}
	if v.Len() != 1 {
		t.Errorf("set holds %d viewers after the unshare, want the owner alone", v.Len())
	}
}

// TestViewerSetHoldsWritersUntilRelease: events published while held
// wake no writer; Release wakes each viewer's once.
func TestViewerSetHoldsWritersUntilRelease(t *testing.T) {
	v := NewViewerSet("s_1", 0, noCount)
	wakes := 0
	v.Add(&Subscriber{Queue: NewWakeQueue(16, func() { wakes++ })}, nil, 0)
	wakes = 0
	v.Hold()
	v.Publish(chunkAt(1))
	v.Publish(chunkAt(2))
	if wakes != 0 {
		t.Fatalf("held writer woken %d times", wakes)
	}
	v.Release()
	if wakes != 1 {
		t.Fatalf("released writer woken %d times, want once", wakes)
	}
	v.Publish(chunkAt(3))
	if wakes != 2 {
		t.Fatalf("an event after Release woke the writer %d times, want once more", wakes-1)
	}
}

// TestViewerSetReleaseDeliversInOrder: with an audience large enough to
// be served from several goroutines, Release gives every viewer the held
// events in seq order with one wake, drops the viewer whose queue fills
// (and only it), and a presence sent during a hold comes between the
// events published before and after it.
func TestViewerSetReleaseDeliversInOrder(t *testing.T) {
	v := NewViewerSet("s_1", 0, noCount)
	const n = parallelWake + 44
	subs := make([]*Subscriber, n)
	wakes := make([]atomic.Int32, n)
	for i := range subs {
		subs[i] = &Subscriber{Queue: NewWakeQueue(16, func() { wakes[i].Add(1) })}
		v.Add(subs[i], nil, 0)
	}
	tight := &Subscriber{Queue: NewQueue(2)}
	v.Add(tight, nil, 0)
	round := func(want []string, publish func()) {
		t.Helper()
		for i := range wakes {
			wakes[i].Store(0)
		}
		v.Hold()
		publish()
		for i := range wakes {
			if w := wakes[i].Load(); w != 0 {
				t.Fatalf("viewer %d woken %d times during the hold", i, w)
			}
		}
		v.Release()
		for i, sub := range subs {
			if got := seqs(sub.Queue); !same(got, want) || wakes[i].Load() != 1 {
				t.Fatalf("viewer %d got %v with %d wakes, want %v with one", i, got, wakes[i].Load(), want)
			}
		}
	}
	round([]string{"chunk:1", "chunk:2", "chunk:3"}, func() {
		for seq := int64(1); seq <= 3; seq++ {
			v.Publish(chunkAt(seq))
		}
	})
	if !tight.Queue.Overflowed() || v.Len() != n {
		t.Fatalf("the viewer with room for two: overflowed=%v; the set holds %d of %d", tight.Queue.Overflowed(), v.Len(), n)
	}
	round([]string{"chunk:4", "presence:0", "chunk:5"}, func() {
		v.Publish(chunkAt(4))
		v.SendPresence()
		v.Publish(chunkAt(5))
	})
	round([]string{"presence:0"}, func() { v.SendPresence() }) // nothing published during the hold
}

// TestViewerSetReset: after a gap nobody can replay, every viewer gets
// the snapshot and goes on from its seq; the log starts again there.
func TestViewerSetReset(t *testing.T) {
	v := NewViewerSet("s_1", 0, noCount)
	sub := &Subscriber{Queue: NewQueue(16)}
	v.Add(sub, nil, 0)
	v.Publish(chunkAt(1))
	v.Reset([]playground.Frame{playground.SnapshotFrame(&playground.Session{ID: "s_1"}, 9)}, 9)
	v.Publish(chunkAt(5)) // older than the snapshot: skipped
	v.Publish(chunkAt(10))
	if got, want := seqs(sub.Queue), []string{"chunk:1", "snapshot:9", "chunk:10"}; !same(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, ok := v.Replay(1); ok {
		t.Error("replayed across the reset")
	}
	if frames, ok := v.Replay(9); !ok || len(frames) != 1 || frames[0].Seq != 10 {
		t.Errorf("replay after 9 = %v, %v", frames, ok)
	}
}

// TestAskOfAnExitedOwner: asking a goroutine that has exited, before or
// after it took the request, answers not ok (Gone) at once, never hangs.
func TestAskOfAnExitedOwner(t *testing.T) {
	exited := make(chan struct{})
	close(exited)
	if _, ok := Ask(make(chan int), 1, make(chan SubscribeResult, 1), exited); ok {
		t.Fatal("an exited owner answered")
	}
	ctrl := make(chan int, 1) // takes the request, then the owner exits
	if r, ok := Ask(ctrl, 1, make(chan SubscribeResult, 1), exited); ok || r != Gone {
		t.Fatalf("got %v, %v; want Gone", r, ok)
	}
	reply := make(chan SubscribeResult, 1)
	reply <- Live
	if r, ok := Ask(make(chan int, 1), 1, reply, make(chan struct{})); !ok || r != Live {
		t.Fatalf("a live owner's reply: %v, %v", r, ok)
	}
}

// BenchmarkViewerSetPublish is one event to 100 and to 1,000 viewers
// whose writers drain on waking, as the WebSocket writer does: the cost of
// a delivery. Below parallelWake viewers it allocates nothing; above, the
// delivery spread over the cores starts its goroutines once per batch (its
// list of viewers is reused), and allocates nothing per viewer.
func BenchmarkViewerSetPublish(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			v := NewViewerSet("s_1", 0, noCount)
			for range n {
				var q *Queue
				var spare []playground.Frame
				q = NewWakeQueue(0, func() { spare = q.Drain(spare) })
				v.Add(&Subscriber{Queue: q}, nil, 0)
			}
			f := chunkAt(1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				f.Seq = int64(i + 1)
				v.Hold()
				v.Publish(f)
				v.Release()
				if len(v.log) == cap(v.log) {
					v.log = v.log[:0] // the log's growth is the session's, not the delivery's
				}
			}
		})
	}
}

// TestViewerSetDropsAViewerPastTheByteBound: on a session of 1 KiB chunks,
// a viewer that stops reading is dropped once DefaultQueueBytes of them
// wait (256 chunks, a quarter of the frame bound); a viewer that reads
// keeps getting every chunk; and a viewer that joins with a replay larger
// than the bound is not dropped for it: the replay does not count.
func TestViewerSetDropsAViewerPastTheByteBound(t *testing.T) {
	text := strings.Repeat("x", 1<<10-100) // about 1 KiB of JSON per chunk
	chunk := func(seq int64) playground.Frame {
		return playground.ChunkFrame("s_1", seq, playground.ChunkEvent{ResponseID: "r_1", Text: text})
	}
	const start = 1000 // every seq of the test has four digits: every chunk has one size
	v := NewViewerSet("s_1", start, noCount)
	stalled := &Subscriber{Queue: NewQueue(0)}
	reading := &Subscriber{Queue: NewQueue(0)}
	v.Add(stalled, nil, start)
	v.Add(reading, nil, start)
	size := len(chunk(start).Data)
	bound := DefaultQueueBytes / size
	seq := int64(start)
	for seq < start+int64(bound) {
		seq++
		v.Publish(chunk(seq))
		reading.Queue.Drain(nil)
	}
	if stalled.Queue.Overflowed() || stalled.Queue.Len() != bound {
		t.Fatalf("dropped before %d chunks of %d bytes waited (%d wait)", bound, size, stalled.Queue.Len())
	}
	seq++
	v.Publish(chunk(seq))
	if !stalled.Queue.Overflowed() {
		t.Fatalf("with %d bytes for it the viewer was not dropped", (bound+1)*size)
	}
	if v.Len() != 1 || len(reading.Queue.Drain(nil)) != 1 {
		t.Fatal("the viewer that reads lost its place or a chunk")
	}

	// A viewer resuming from the start gets the whole log, more than the
	// bound, and then every new chunk.
	for range 10 {
		seq++
		v.Publish(chunk(seq))
	}
	late := &Subscriber{Queue: NewQueue(0)}
	replay, ok := v.Replay(start + 1)
	if !ok || len(replay)*size <= DefaultQueueBytes {
		t.Fatalf("a replay of %d chunks does not exceed the bound", len(replay))
	}
	v.Add(late, replay, seq)
	v.Publish(chunk(seq + 1))
	if late.Queue.Overflowed() || late.Queue.Len() != len(replay)+1 {
		t.Fatalf("the resuming viewer was dropped (%v) or is missing events: %d waiting", late.Queue.Overflowed(), late.Queue.Len())
	}
}
