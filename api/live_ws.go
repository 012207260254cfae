package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/hub"
	"github.com/playground-dev/playground/internal/wsraw"
)

// WebSocket close codes of the contract.
const (
	closeGoingAway    = websocket.StatusGoingAway       // 1001: server shutting down
	closeTooSlow      = websocket.StatusPolicyViolation // 1008: the viewer's queue overflowed
	closeUnauthorized = websocket.StatusCode(4401)      // credentials revoked or expired
	maxClientFrame    = 32 << 10                        // a larger frame closes with 1009
)

// handleWS serves GET /ws: one connection may watch many sessions.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	// A browser's Origin must name this server or FRONTEND_URL, checked
	// here because cross-origin protection does not cover GET.
	if origin := r.Header.Get("Origin"); origin != "" && !s.originAllowed(r, origin) {
		s.writeError(w, r, playground.Errorf(playground.EForbidden, "This origin may not open a live connection."))
		return
	}
	// Credentials that do not verify are not refused here: the share
	// token of each subscribe decides (see sessionAccess). Only credentials
	// that cannot be checked (503) stop the upgrade.
	who, err := s.callerOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	watch, err := s.watchCredentials(r.Context(), who.p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	hj := &wsraw.Hijacker{ResponseWriter: w}
	c, err := websocket.Accept(hj, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // Origin checked above
	if err != nil {
		watch.stop()
		s.log.Debug("ws: accept", "err", err)
		return
	}
	c.SetReadLimit(maxClientFrame)
	cn := &wsConn{s: s, c: c, who: who, watch: watch, out: hj.Conn, subs: map[string]wsSub{}, opened: s.now()}
	cn.stopped, cn.now, cn.later, cn.resume = make(chan struct{}), cn.sendNow, cn.write, cn.read
	cn.queue = hub.NewWakeQueue(s.opts.QueueSize, cn.wake).LimitBytes(s.opts.QueueBytes)
	// One timer bounds every write: armed before it and stopped after it;
	// firing closes the socket, which fails the write. A context with a
	// deadline per write cost a timer and allocations for every message to
	// every viewer (a tenth of the server's CPU in a 1 000-viewer fan-out).
	cn.watchdog = time.AfterFunc(time.Hour, func() { cn.c.CloseNow() })
	cn.watchdog.Stop()
	s.live.conns.Add(1)
	// The handler returns and net/http lets go of the request, its headers
	// and its goroutine's deep stack; the connection lives on in a reader
	// goroutine only while the client's frames are read and handled, and a
	// writer only while there is something to send.
	go cn.serve()
}

// wsConn is one WebSocket connection. Its reader goroutine handles client
// frames in order. Its writer exists only while frames wait: the producer
// that pushes a frame to an idle viewer sends it on the spot if the
// socket takes it without waiting, and otherwise a writer goroutine
// starts, sends until the queue is empty and returns. Its reader, too,
// exists only while the client's frames are read and handled: between
// them the connection is parked with the idle poller (wsraw.Conn.Park),
// so an idle viewer costs no goroutine (one parked in a read where there
// is no epoll). At most one writer is at work at a time
// (the writing flag is its role), and only it ends the connection.
type wsConn struct {
	s       *Server
	c       *websocket.Conn
	who     caller      // each subscribe and cancel is decided for it
	watch   *credWatch  // the revocation or expiry of who's credentials ends the connection (nil: none presented)
	out     *wsraw.Conn // every write to the socket
	queue   *hub.Queue
	subs    map[string]wsSub // owned by the reader (or the frame it handed to the lookup queue)
	lookup  lookupState      // the database work of the frame being handled
	release []func()         // undoes serve's registrations, at teardown
	opened  time.Time
	resume  func() // read, once parked (see next)

	// Closing it when it watches nothing (live_ws_idle.go).
	unwatched wsIdle
	nsubs     atomic.Int32 // len(subs), for the idle timer

	writerRole // stop and wake: see writerRole

	// The writer's own, used by one writer at a time.
	watchdog *time.Timer
	frames   []playground.Frame
	parts    [][]byte
}

// wsEnd is how a connection ends: with a close code and reason (none: the
// socket is just closed), sending what is queued first or not.
type wsEnd struct {
	code   websocket.StatusCode
	reason string
	flush  bool
}

type wsSub struct {
	sub    *hub.Subscriber
	src    hub.Source
	follow *hub.Follower // a follower if the subscribe asked to follow, else a watcher
}

// clientFrame is any frame a client sends.
type clientFrame struct {
	Type       string `json:"type"`
	SessionID  string `json:"sessionId"`
	Since      *int64 `json:"since"`
	ShareToken string `json:"shareToken"`
	ResponseID string `json:"responseId"`
	Follow     bool   `json:"follow"`
}

// serve sets the connection up, then reads.
func (cn *wsConn) serve() {
	cn.release = append(cn.release, cn.watch.stop)
	cn.watch.attach(func(reason string) { cn.stop(wsEnd{code: closeUnauthorized, reason: reason}) })
	// On shutdown, the last events of comparisons that finished during it
	// are sent before the 1001.
	stopClosing := context.AfterFunc(cn.s.live.closing, func() {
		cn.stop(wsEnd{code: closeGoingAway, reason: "server shutting down", flush: true})
	})
	cn.release = append(cn.release, func() { stopClosing() })
	cn.startIdle()
	cn.next()
}

// read waits for the client's next frame and handles it, then goes on
// reading in a fresh goroutine. Handling a frame (a subscription looks the
// session up in the database) can grow a stack to tens of KiB, and a
// parked goroutine keeps most of it: the GC only halves a stack, and only
// while less than a quarter is in use. A fresh one starts at the size
// goroutines typically need. Between frames the connection is parked
// (next), and a reader only starts once the client has sent something;
// where it cannot be parked, the reader waits for the socket to become
// readable (WaitRead) before it goes into the library's read, which needs
// a 4 KiB stack. A frame that looks a session up is handed, with what
// follows it, to the server's lookup queue. Frames are still handled one
// at a time, in order.
func (cn *wsConn) read() {
	ok := false
	defer cn.readEnded(&ok)
	// No context: a cancellable one costs a registration per read, and
	// the writer ends a read by closing the socket.
	cn.out.WaitRead()
	_, data, err := cn.c.Read(context.Background())
	if err != nil {
		return
	}
	handed := cn.handle(data)
	ok = true
	if !handed {
		cn.next()
	}
}

// readEnded, deferred, tears the connection down unless ok: the read
// failed, or handling the frame panicked.
func (cn *wsConn) readEnded(ok *bool) {
	if *ok {
		return
	}
	if v := recover(); v != nil {
		cn.s.log.Error("ws: panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
	cn.teardown()
}

// lookupFrame handles a subscribe or cancel on the lookup queue, then
// waits for the client's next frame.
func (cn *wsConn) lookupFrame(f clientFrame) {
	ok := false
	defer cn.readEnded(&ok)
	if ctx, live := cn.lookup.begin(); live {
		if f.Type == "subscribe" {
			cn.subscribe(ctx, f)
		} else {
			cn.cancel(ctx, f)
		}
		cn.lookup.clear()
	}
	ok = true
	cn.next()
}

// next waits for the client's next frame: parked with the idle poller,
// where it can be (no goroutine), else in a fresh reader goroutine.
func (cn *wsConn) next() {
	if !cn.out.Park(cn.resume) {
		go cn.read()
	}
}

// teardown runs once, when the reader ends: the connection is closed (if
// it was not already), its subscriptions end and its registrations go.
func (cn *wsConn) teardown() {
	defer cn.s.live.conns.Done()
	cn.stop(wsEnd{}) // the client is gone, unless an end was decided already
	<-cn.stopped
	for id := range cn.subs {
		cn.unsubscribe(id)
	}
	cn.queue.Close()
	for _, f := range cn.release {
		f()
	}
	cn.watchdog.Stop()
	// The request log has the upgrade (101); this is the connection's life.
	cn.s.log.Info("websocket closed", "duration", cn.s.now().Sub(cn.opened),
		"overflowed", cn.queue.Overflowed(), "user", cn.userID())
}

func (cn *wsConn) userID() string {
	if cn.who.p == nil {
		return ""
	}
	return cn.who.p.UserID
}

// sendNow sends what waits, in the caller's goroutine, without waiting on
// the socket. It reports true when everything went out and the writer's
// role is given up; false leaves the role to a writer goroutine (the
// socket was full, the lock busy, or more is waiting).
func (cn *wsConn) sendNow() bool {
	if cn.queue.Overflowed() {
		return false
	}
	if !cn.out.WriteNow(cn.drain) {
		return false
	}
	return cn.idle()
}

// drain takes what waits in the queue as the parts of one message: the
// frames' JSON objects separated by "\n" (nil: nothing waits). The parts
// slice is the writer's, reused.
func (cn *wsConn) drain() [][]byte {
	cn.frames = cn.queue.Drain(cn.frames)
	if len(cn.frames) == 0 {
		return nil
	}
	cn.parts = cn.parts[:0]
	for i, f := range cn.frames {
		if i > 0 {
			cn.parts = append(cn.parts, lineBreak)
		}
		cn.parts = append(cn.parts, f.Data)
	}
	return cn.parts
}

// idle gives up the writer's role if nothing waits and no end is decided.
func (cn *wsConn) idle() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.end != nil || cn.queue.Len() > 0 {
		return false
	}
	clear(cn.frames) // an idle viewer keeps no chunk alive
	clear(cn.parts)
	cn.writing = false
	return true
}

// write is the writer goroutine: it sends what waits, batch by batch, and
// returns when nothing does, or ends the connection as decided.
func (cn *wsConn) write() {
	for {
		if cn.queue.Overflowed() {
			cn.finish(wsEnd{code: closeTooSlow, reason: "too slow to keep up"})
			return
		}
		end := cn.decided()
		if end != nil && !end.flush {
			cn.finish(*end)
			return
		}
		if !cn.flush() {
			cn.finish(wsEnd{}) // the socket failed or the write timed out
			return
		}
		if end != nil {
			cn.finish(*end)
			return
		}
		if cn.idle() {
			return
		}
	}
}

// finish ends the connection: the close frame if there is one to send,
// then the socket, which also ends the reader.
func (cn *wsConn) finish(e wsEnd) {
	if e.code != 0 {
		cn.close(e.code, e.reason)
	}
	cn.c.CloseNow()
	cn.lookup.end()
	cn.done()
}

// flush sends, waiting for the socket within the write timeout, the end
// of a message sendNow began and then everything waiting as one frame
// (JSON objects separated by "\n"); false means the socket failed.
func (cn *wsConn) flush() bool {
	parts := cn.drain()
	cn.watchdog.Reset(cn.s.opts.WriteTimeout)
	err := cn.out.Flush(parts)
	fired := !cn.watchdog.Stop()
	return err == nil && !fired
}

// reply queues a frame for this connection only. It counts against the
// queue's bound like any event: a client that sends pings and never reads
// the pongs is dropped like any viewer that falls behind.
func (cn *wsConn) reply(typ playground.EventType, sessionID string, v any) {
	cn.queue.Push(playground.EncodeFrame(typ, sessionID, 0, v))
}

func (cn *wsConn) replyError(sessionID string, err error) {
	cn.queue.Push(playground.ReplyErrorFrame(sessionID, err))
}

// handle handles one frame; true: it was handed to the lookup queue,
// which goes on reading once it is handled.
func (cn *wsConn) handle(data []byte) bool {
	var f clientFrame
	if err := json.Unmarshal(data, &f); err != nil {
		cn.replyError("", playground.Errorf(playground.EInvalid, "A frame must be one JSON object."))
		return false
	}
	switch f.Type {
	case "ping":
		cn.reply(playground.EventPong, "", map[string]string{"type": string(playground.EventPong)})
	case "subscribe", "cancel":
		cn.s.live.lookups.run(func() { cn.lookupFrame(f) })
		return true
	case "unsubscribe":
		if f.SessionID == "" {
			cn.replyError("", playground.Invalid("sessionId", "sessionId is required."))
			return false
		}
		cn.unsubscribe(f.SessionID)
		cn.reply(playground.EventUnsubscribed, f.SessionID, map[string]string{
			"type": string(playground.EventUnsubscribed), "sessionId": f.SessionID})
	default:
		cn.replyError(f.SessionID, playground.Invalid("type", "Unknown frame type %q.", f.Type))
	}
	return false
}

// lookupState is the context of the frame being handled against the
// database, which the connection's end cancels. It exists only while such
// a frame is handled: a context kept for the connection's whole life cost
// an idle viewer a few hundred bytes (the context, its channel and the
// map of its children).
type lookupState struct {
	mu     sync.Mutex
	cancel context.CancelFunc // of the frame being handled
	ended  bool               // the connection has ended: no lookup starts
}

// begin returns the frame's context; false: the connection has ended.
func (l *lookupState) begin() (context.Context, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return nil, false
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel // end cancels it; clear, after the lookup
	return ctx, true
}

// clear lets the frame's context go, once its lookup is over.
func (l *lookupState) clear() {
	l.mu.Lock()
	cancel := l.cancel
	l.cancel = nil
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// end cancels the lookup under way, if any, and any to come.
func (l *lookupState) end() {
	l.mu.Lock()
	l.ended = true
	l.mu.Unlock()
	l.clear()
}

func (cn *wsConn) unsubscribe(sessionID string) {
	if ws, ok := cn.subs[sessionID]; ok {
		if ws.src != nil {
			ws.src.Unsubscribe(ws.sub)
		}
		if ws.follow != nil {
			cn.s.opts.Hub.RemoveFollower(sessionID, ws.follow)
		}
		delete(cn.subs, sessionID)
		cn.s.metrics.liveViewers.Dec()
		cn.subsChanged()
	}
}

func (cn *wsConn) subscribe(ctx context.Context, f clientFrame) {
	if f.SessionID == "" {
		cn.replyError("", playground.Invalid("sessionId", "sessionId is required."))
		return
	}
	since := int64(0)
	if f.Since != nil {
		if since = *f.Since; since < 0 {
			cn.replyError(f.SessionID, playground.Invalid("since", "since must be 0 or more."))
			return
		}
	}
	owner, err := cn.s.sessionAccess(ctx, cn.who, f.SessionID, f.ShareToken, toSee)
	if err != nil {
		cn.replyError(f.SessionID, err)
		return
	}
	cn.unsubscribe(f.SessionID) // a second subscribe replaces the first
	sub := &hub.Subscriber{Queue: cn.queue, Subscribed: true}
	if !owner {
		sub.ShareToken = f.ShareToken
	}
	src, _, err := cn.s.opts.Hub.Subscribe(ctx, sub, f.SessionID, since)
	if err != nil {
		cn.replyError(f.SessionID, err)
		return
	}
	ws := wsSub{sub: sub, src: src}
	// Taken after the subscription, so that "subscribed" comes first; it
	// lasts, past done, until the viewer lets go: a follower hears of the
	// next turns and the reveal, a watcher of the reveal only.
	if f.Follow {
		ws.follow = hub.NewFollower(cn.queue, sub.ShareToken)
	} else {
		ws.follow = hub.NewWatcher(cn.queue, sub.ShareToken)
	}
	cn.s.opts.Hub.AddFollower(f.SessionID, ws.follow)
	cn.subs[f.SessionID] = ws
	cn.s.metrics.liveViewers.Inc()
	cn.subsChanged()
}

func (cn *wsConn) cancel(ctx context.Context, f clientFrame) {
	if f.SessionID == "" {
		cn.replyError("", playground.Invalid("sessionId", "sessionId is required."))
		return
	}
	share := ""
	if ws, ok := cn.subs[f.SessionID]; ok {
		share = ws.sub.ShareToken
	}
	sess, _, err := cn.s.storedSession(ctx, cn.who, f.SessionID, share, toAct)
	switch {
	case err != nil:
		cn.replyError(f.SessionID, err)
	case f.ResponseID != "" && sess.Response(f.ResponseID) == nil:
		cn.replyError(f.SessionID, playground.Errorf(playground.ENotFound, "No such response in this session."))
	default:
		if err := cn.s.opts.Runner.Cancel(ctx, f.SessionID, f.ResponseID); err != nil {
			cn.replyError(f.SessionID, err)
		}
	}
}

// close sends a close frame without waiting long for the peer's answer.
func (cn *wsConn) close(code websocket.StatusCode, reason string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := cn.c.Close(code, reason); err != nil && !errors.Is(err, context.Canceled) {
			cn.s.log.Debug("ws: close", "code", code, "err", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		cn.c.CloseNow()
		<-done
	}
}
