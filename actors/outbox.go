package actors

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/internal/backoff"
)

// outbox keeps the endings this instance could not commit when they
// happened (the database was down): final rows of responses and the
// session ends that follow them, in the order they happened. Viewers have
// been told already; the outbox makes the database say the same once it
// answers again. Each write is one that the store makes once (a response
// or session that has ended already keeps its row), so the owner and
// another instance's recovery pass may both write and the first one wins
// with the same content.
//
// Its goroutine (flushLoop) is started by the first add that finds it
// idle and returns when the outbox is empty or the engine stops; the
// engine's WaitGroup waits for it.
type outbox struct {
	e       *Engine
	mu      sync.Mutex
	items   []pendingEnd
	running bool
}

// pendingEnd is one ending to commit: a response's final row (resp set)
// or a session's end.
type pendingEnd struct {
	sessionID string
	resp      *playground.Response
	refund    bool
	status    string // the session's final status
	lastSeq   int64  // the seq of its done
}

func (p pendingEnd) write(ctx context.Context, store playground.SessionService) error {
	if p.resp != nil {
		r := *p.resp
		return store.FinishResponse(ctx, p.sessionID, &r, p.refund)
	}
	return store.FinishSession(ctx, p.sessionID, p.status, p.lastSeq)
}

// add queues an ending and makes sure the flush loop runs.
func (o *outbox) add(p pendingEnd) {
	if p.resp != nil {
		r := *p.resp // the caller's copy goes on to the session actor
		p.resp = &r
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.items = append(o.items, p)
	if o.running {
		return
	}
	o.running = true
	o.e.wg.Add(1)
	go o.flushLoop()
}

// holds reports whether an ending of the session waits here: this
// instance still has the truth about it, and its next write must queue
// behind.
func (o *outbox) holds(sessionID string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range o.items {
		if p.sessionID == sessionID {
			return true
		}
	}
	return false
}

// flushLoop writes the queued endings in order, retrying with back-off
// (100 ms doubling to 2 s) while the database does not answer. On engine
// stop it makes one last attempt; what still fails then is logged, and
// the next recovery pass ends those sessions from the event log.
func (o *outbox) flushLoop() {
	defer o.e.wg.Done()
	for failures := 0; ; failures++ {
		if o.flush() {
			return
		}
		if !backoff.Wait(o.e.stop, failures) {
			if !o.flush() {
				o.mu.Lock()
				o.e.log.Error("actors: endings not committed before shutdown", "count", len(o.items))
				o.items, o.running = nil, false
				o.mu.Unlock()
			}
			return
		}
	}
}

// flush writes queued endings in order until one fails; it reports true
// (and marks the loop stopped) when none is left.
func (o *outbox) flush() bool {
	for {
		o.mu.Lock()
		if len(o.items) == 0 {
			o.running = false
			o.mu.Unlock()
			return true
		}
		p := o.items[0]
		o.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := p.write(ctx, o.e.store)
		cancel()
		if err != nil && playground.ErrorCode(err) != playground.ENotFound {
			o.e.log.Debug("actors: commit an ending, will retry", "session", p.sessionID, "err", err)
			return false
		}
		if err != nil {
			o.e.log.Warn("actors: ending of a session that is gone", "session", p.sessionID, "err", err)
		}
		o.mu.Lock()
		o.items = o.items[1:]
		o.mu.Unlock()
	}
}

// commitEnding writes an ending now unless an earlier one of the same
// session waits in the outbox; when it cannot be written, the outbox
// takes it. It reports whether it was written now.
func (e *Engine) commitEnding(ctx context.Context, p pendingEnd) bool {
	if !e.outbox.holds(p.sessionID) {
		err := p.write(ctx, e.store)
		if err == nil {
			return true
		}
		if !errors.Is(err, context.Canceled) {
			e.log.Warn("actors: commit an ending; kept to retry", "session", p.sessionID, "err", err)
		}
	}
	e.outbox.add(p)
	return false
}
