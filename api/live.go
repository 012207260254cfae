package api

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"sync"
)

// liveState tracks the long-lived viewer connections (WebSocket and SSE),
// which http.Server.Shutdown does not wait for: CloseLive ends closing,
// every connection sees it and ends (WebSockets with 1001), and CloseLive
// waits for them through conns (and for a leaderboard computation).
type liveState struct {
	closing context.Context
	close   context.CancelFunc
	conns   sync.WaitGroup
	lookups lookupQueue // the WebSocket frames that look a session up
}

// lookupQueue runs the WebSocket frames that look a session up (subscribe,
// cancel), over all connections, at most max at a time (as many as the
// database pool serves at once on SQLite) and in the order they came. A
// frame waiting for its turn holds no goroutine. A burst of subscribes,
// one per viewer of a shared session as a page of viewers opens, would
// otherwise have every viewer's reader wait in the database pool at the
// same time, each with the deep stack and the query a lookup builds:
// hundreds of megabytes at 10 000 viewers, which the runtime gives back to
// the system only slowly. The database serves the lookups as fast either
// way.
type lookupQueue struct {
	mu      sync.Mutex
	max     int
	running int      // goroutines working through the queue
	waiting []func() // in order
}

func newLookupQueue() lookupQueue { return lookupQueue{max: 4 * runtime.GOMAXPROCS(0)} }

// run runs f on a goroutine of the queue's, now or once its turn comes.
func (q *lookupQueue) run(f func()) {
	q.mu.Lock()
	if q.running < max(q.max, 1) {
		q.running++
		q.mu.Unlock()
		go q.work(f)
		return
	}
	q.waiting = append(q.waiting, f)
	q.mu.Unlock()
}

// work runs f, then what waits, and returns when nothing does.
func (q *lookupQueue) work(f func()) {
	for f != nil {
		f()
		q.mu.Lock()
		if len(q.waiting) == 0 {
			q.running--
			q.waiting, f = nil, nil // a burst's backlog is not kept
		} else {
			f = q.waiting[0]
			q.waiting[0], q.waiting = nil, q.waiting[1:]
		}
		q.mu.Unlock()
	}
}

// CloseLive ends every WebSocket (close code 1001) and SSE stream and
// waits until their goroutines have returned. Call it on shutdown, after
// the running comparisons have been given their time to finish.
func (s *Server) CloseLive() {
	s.live.close()
	s.live.conns.Wait()
	s.boards.wg.Wait() // a leaderboard computation stops with closing
}

// originAllowed reports whether a browser's Origin names this server (the
// same host and port as the request's Host) or FRONTEND_URL.
func (s *Server) originAllowed(r *http.Request, origin string) bool {
	if s.opts.FrontendURL != "" && strings.EqualFold(origin, s.opts.FrontendURL) {
		return true
	}
	_, host, ok := strings.Cut(origin, "://")
	return ok && strings.EqualFold(host, r.Host)
}

// lineBreak separates the JSON objects of one WebSocket frame.
var lineBreak = []byte{'\n'}

// writerRole is how a live connection (a WebSocket, or an SSE stream on a
// connection taken over) is written: at most one writer at a time, the
// holder of the role (writing). A producer that pushes to an idle viewer
// takes the role and sends on the spot (now); when that cannot finish,
// or an end is decided, a writer goroutine (later) takes over, and only
// it ends the connection (ended).
type writerRole struct {
	mu      sync.Mutex
	writing bool   // a writer is at work
	end     *wsEnd // how the connection is to end, once decided
	ended   bool   // it has ended: no writer starts again
	stopped chan struct{}

	now   func() bool // sends what waits without waiting; true: all went out and the role is given up
	later func()      // the writer goroutine
}

// stop decides how the connection ends (the first decision stands) and
// makes sure a writer carries it out.
func (w *writerRole) stop(e wsEnd) {
	w.mu.Lock()
	if w.end == nil {
		w.end = &e
	}
	w.mu.Unlock()
	w.wake()
}

// wake is called after every push to the queue. Unless a writer is at
// work or the connection has ended, the caller becomes the writer: it
// sends what waits without waiting for the socket and, when the socket
// took it all, is done; otherwise a writer goroutine takes over.
func (w *writerRole) wake() {
	w.mu.Lock()
	if w.writing || w.ended {
		w.mu.Unlock()
		return
	}
	w.writing = true
	now := w.end == nil
	w.mu.Unlock()
	if now && w.now() {
		return
	}
	go w.later()
}

// decided is the end decided so far (nil: none).
func (w *writerRole) decided() *wsEnd {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.end
}

// done marks the connection ended and the role given up for good.
func (w *writerRole) done() {
	w.mu.Lock()
	w.ended, w.writing = true, false
	w.mu.Unlock()
	close(w.stopped)
}
