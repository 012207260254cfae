package hub

import (
	"runtime"
	"slices"
	"sync"

	"github.com/playground-dev/playground"
)

// DefaultQueueSize is how many frames a viewer may have waiting before it
// is dropped as too slow to keep up.
const DefaultQueueSize = 1024

// DefaultQueueBytes is how many bytes of events a viewer may have waiting,
// a replay aside, before it is dropped as too slow to keep up: 256 KiB,
// about three seconds of eight models streaming 100-byte chunks at 50 a
// second. A session of large chunks reaches it long before
// DefaultQueueSize frames (256 chunks of 1 KiB), so an overloaded server
// lets go of a slow viewer's backlog sooner.
const DefaultQueueBytes = 256 << 10

// Queue is one viewer connection's outbox: bounded, never blocking the
// producer. Producers (session actors, followers, the hub) Push encoded
// frames; the connection's single writer waits on Ready (or is started by
// the wake function of NewWakeQueue), takes everything waiting with Drain
// and sends it as one frame (or one SSE flush).
//
// A push that finds the queue full (DefaultQueueSize frames, or
// DefaultQueueBytes bytes of frames pushed one by one: see LimitBytes)
// marks it overflowed and closes it: the
// producer drops that viewer, the others never wait for it, and the writer
// sees Done and closes the connection (WebSocket code 1008). Memory is
// only held while frames wait: an idle viewer's queue is a few words.
type Queue struct {
	mu       sync.Mutex
	items    []playground.Frame
	max      int
	maxBytes int
	bytes    int // of the frames pushed one by one since the last Drain
	closed   bool
	overflow bool
	ready    chan struct{} // capacity 1: "something is waiting"; nil with wake
	wake     func()        // called instead, outside the lock
	done     chan struct{} // closed once, by Close or an overflow
}

// NewQueue returns a queue that holds at most max frames.
func NewQueue(max int) *Queue {
	if max <= 0 {
		max = DefaultQueueSize
	}
	return &Queue{max: max, maxBytes: DefaultQueueBytes, ready: make(chan struct{}, 1), done: make(chan struct{})}
}

// LimitBytes sets how many bytes of events pushed one by one may wait
// (zero or less: DefaultQueueBytes); call it before the first push. A
// replay (PushAll) does not count, and a single frame larger than the
// bound still fits an empty queue. It returns q.
func (q *Queue) LimitBytes(n int) *Queue {
	if n <= 0 {
		n = DefaultQueueBytes
	}
	q.maxBytes = n
	return q
}

// NewWakeQueue returns a queue that calls wake, outside its lock, after
// every push and when it overflows, instead of signalling Ready: for a
// connection that keeps no goroutine waiting while it is idle and starts
// its writer when there is something to send.
func NewWakeQueue(max int, wake func()) *Queue {
	q := NewQueue(max)
	q.ready, q.wake = nil, wake
	return q
}

// Push appends a frame and wakes the writer. It reports false when the
// queue is closed or has just overflowed; the caller must then forget
// this viewer.
func (q *Queue) Push(f playground.Frame) bool {
	if !q.PushHeld(f) {
		return false
	}
	q.signal()
	return true
}

// PushHeld appends a frame without waking the writer: a producer with
// several frames for many viewers pushes them all, then calls Wake on
// each queue, so that each viewer gets them in one write. An overflow
// still wakes the writer at once.
func (q *Queue) PushHeld(f playground.Frame) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	n := len(f.Data)
	if len(q.items) >= q.max || (q.bytes > 0 && q.bytes+n > q.maxBytes) {
		q.overflow = true
		q.closeLocked()
		q.mu.Unlock()
		if q.wake != nil {
			q.wake() // the writer sees Overflowed and closes the connection
		}
		return false
	}
	q.items = append(q.items, f)
	q.bytes += n
	q.mu.Unlock()
	return true
}

// Wake wakes the writer if frames are waiting: the end of a batch of
// PushHeld.
func (q *Queue) Wake() {
	q.mu.Lock()
	waiting := len(q.items) > 0 && !q.closed
	q.mu.Unlock()
	if waiting {
		q.signal()
	}
}

// PushAll appends frames that must arrive together (a subscription's
// replay, a snapshot), beyond the bounds if need be, and not counted
// against the bytes of the frames that follow: a replay is bounded by the
// session's own log, and cutting it short would leave the viewer with a
// gap; a viewer that resumes far back must not be dropped for it.
func (q *Queue) PushAll(fs []playground.Frame) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, fs...)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *Queue) signal() {
	if q.wake != nil {
		q.wake()
		return
	}
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Ready fires when frames may be waiting.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// parallelWake is the audience from which wakeAll spreads its wakes over
// the cores. A wake may write to the viewer's socket on the spot (a system
// call of a few microseconds), and a thousand of them in a row would hold
// one core for milliseconds while the others idle.
const parallelWake = 256

// wakeAll wakes every subscriber's writer: the end of a batch of
// PushHeld. A large audience is woken from one goroutine per core; wakeAll
// returns when all are woken.
func wakeAll(subs map[*Subscriber]place) {
	procs := runtime.GOMAXPROCS(0)
	if procs == 1 || len(subs) < parallelWake {
		for _, at := range subs {
			at.q.Wake()
		}
		return
	}
	list := make([]*Queue, 0, len(subs))
	for _, at := range subs {
		list = append(list, at.q)
	}
	per := (len(list) + procs - 1) / procs
	var wg sync.WaitGroup
	for i := 0; i < len(list); i += per {
		part := list[i:min(i+per, len(list))]
		wg.Go(func() {
			for _, q := range part {
				q.Wake()
			}
		})
	}
	wg.Wait()
}

// deliverAll queues fs, the events of one batch, for every subscriber
// that does not have them yet (seq after its base), and wakes its writer
// with the last push: one visit to each viewer, which for a single event
// is one Push. A large audience is served from one goroutine per core, as
// in wakeAll. It returns the subscribers whose queue refused (for the
// caller to drop). A large audience is listed in *list, the caller's to
// reuse (emptied again on return), so that it allocates once, not for
// every event.
func deliverAll(subs map[*Subscriber]place, fs []playground.Frame, list *[]viewerAt) []*Subscriber {
	procs := runtime.GOMAXPROCS(0)
	if procs == 1 || len(subs) < parallelWake {
		var refused []*Subscriber
		for sub, at := range subs {
			if !deliver(at.q, at.base, fs) {
				refused = append(refused, sub)
			}
		}
		return refused
	}
	vs := (*list)[:0]
	for sub, at := range subs {
		vs = append(vs, viewerAt{sub, at})
	}
	defer func() { clear(vs); *list = vs[:0] }()
	per := (len(vs) + procs - 1) / procs
	refused := make([][]*Subscriber, (len(vs)+per-1)/per)
	var wg sync.WaitGroup
	for i, part := 0, 0; i < len(vs); i, part = i+per, part+1 {
		wg.Go(func() {
			for _, v := range vs[i:min(i+per, len(vs))] {
				if !deliver(v.q, v.base, fs) {
					refused[part] = append(refused[part], v.sub)
				}
			}
		})
	}
	wg.Wait()
	return slices.Concat(refused...)
}

// viewerAt is a viewer of a large audience, listed to be served in parts.
type viewerAt struct {
	sub *Subscriber
	place
}

// deliver queues the events of fs after base for one viewer, waking
// its writer with the last; false: the queue refused one.
func deliver(q *Queue, base int64, fs []playground.Frame) bool {
	last := len(fs) - 1
	for last >= 0 && fs[last].Seq <= base {
		last--
	}
	if last < 0 {
		return true
	}
	for _, f := range fs[:last] {
		if f.Seq > base && !q.PushHeld(f) {
			return false
		}
	}
	return q.Push(fs[last])
}

// Len reports how many frames are waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Done is closed when the queue is closed or overflowed.
func (q *Queue) Done() <-chan struct{} { return q.done }

// Overflowed reports whether the viewer fell too far behind.
func (q *Queue) Overflowed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.overflow
}

// Drain returns every waiting frame, in order, and keeps spare (emptied)
// as the next buffer, so a writer that hands back the slice it was given
// last time allocates nothing in the steady state.
func (q *Queue) Drain(spare []playground.Frame) []playground.Frame {
	clear(spare)
	q.mu.Lock()
	out := q.items
	q.items = spare[:0]
	q.bytes = 0
	q.mu.Unlock()
	return out
}

// Close closes the queue; it is safe to call more than once.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closeLocked()
	q.mu.Unlock()
}

func (q *Queue) closeLocked() {
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}
