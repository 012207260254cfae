package providers

import (
	"context"
	"io"
	"sync"

	"github.com/playground-dev/playground"
)

// sdkStream adapts one SDK's event stream to playground.Stream, the same
// way for every provider: the SDK's events come from next, each becomes a
// Delta through read, and a failed read is classified by fail. What is
// left to each provider is only what differs: how an event reads and how
// an error is classified.
//
// Recv holds mu while it reads, so Close (which may come from another
// goroutine) first cancels the request's context, which unblocks that
// read, then takes mu and stops the SDK's stream (for genai's pull
// iterator, ending its goroutine). Close is safe to call twice.
type sdkStream[E any] struct {
	provider string
	cancel   context.CancelFunc // the request's context

	// next returns the next event; ok false at the end of the stream, with
	// err nil for a clean end. stop releases the SDK's stream.
	next func() (ev E, ok bool, err error)
	stop func()
	// read turns an event into a Delta; end reports that the event tells
	// the answer is complete, so that the stream may end after it.
	read func(ev E) (d playground.Delta, end bool, err error)
	// fail classifies a read that failed; started: an event was received.
	fail func(err error, started bool) error

	mu      sync.Mutex
	started bool // an event was received
	ended   bool // an event said the answer is complete
	closed  bool
}

func (st *sdkStream[E]) Recv() (playground.Delta, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return playground.Delta{}, context.Canceled
	}
	ev, ok, err := st.next()
	switch {
	case ok:
	case err != nil:
		return playground.Delta{}, st.fail(err, st.started)
	case !st.ended:
		// A clean end before the answer said it was complete.
		return playground.Delta{}, truncatedStream(st.provider)
	default:
		return playground.Delta{}, io.EOF
	}
	st.started = true
	d, end, err := st.read(ev)
	if end {
		st.ended = true
	}
	return d, err
}

func (st *sdkStream[E]) Close() error {
	st.cancel()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return nil
	}
	st.closed = true
	st.stop()
	return nil
}

// eventStream is what the OpenAI and Anthropic SDKs' ssestream.Stream
// offer: for s.Next() { s.Current() }, then s.Err(), and always Close.
type eventStream[E any] interface {
	Next() bool
	Current() E
	Err() error
	Close() error
}

// pullEvents is next and stop for an eventStream.
func pullEvents[E any](s eventStream[E]) (next func() (E, bool, error), stop func()) {
	next = func() (E, bool, error) {
		if s.Next() {
			return s.Current(), true, nil
		}
		var zero E
		return zero, false, s.Err()
	}
	return next, func() { _ = s.Close() }
}
