package api

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/hub"
	"github.com/playground-dev/playground/internal/wsraw"
)

// An SSE stream over HTTP/1.1 is written like a WebSocket's messages
// (live_ws.go): the handler takes the connection over, writes the
// response's head itself and returns, and the events are written on the
// spot by whoever pushes them, when the socket takes them without
// waiting, else by a writer goroutine that exists only while they wait.
// The body is delimited by the connection's close (Connection: close, no
// Content-Length, no chunked encoding), so the events go out exactly as
// they are framed, and nothing of net/http (its 4 KiB buffers, the
// handler's goroutine and its stack) is kept for an idle viewer: only a
// goroutine parked in a read, which learns that the client left.

// canHijack reports whether r's stream can be written on the spot: a GET
// over HTTP/1.x whose connection can be taken over (the writer beneath
// the middleware's wrappers is net/http's own).
func canHijack(w http.ResponseWriter, r *http.Request) bool {
	if r.ProtoMajor != 1 || r.Method != http.MethodGet {
		return false
	}
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			_, ok := w.(http.Hijacker)
			return ok
		}
		w = u.Unwrap()
	}
}

// sseConn is one SSE stream on a connection taken over. Like wsConn, at
// most one writer is at work at a time (the writing flag is its role),
// and only it ends the connection; the reader goroutine, when the socket
// closes, tears the stream down.
type sseConn struct {
	s       *Server
	id      string
	follow  bool
	conn    net.Conn
	out     *wsraw.Conn
	queue   *hub.Queue
	release []func() // undoes serve's registrations, at teardown

	// The heartbeat: a comment after SSEHeartbeat without a write.
	beat      *time.Timer
	beatDue   atomic.Bool
	lastWrite atomic.Int64 // unix nanoseconds

	writerRole // stop and wake: see writerRole; an SSE end has neither code nor reason

	// The writer's own, used by one writer at a time.
	frames []playground.Frame
	heads  []byte
	offs   []int
	parts  [][]byte
	last   bool // the batch taken ends the stream (done, or the follower's next)
}

var (
	sseKeepAlive = []byte(": keep-alive\n\n")
	sseGap       = []byte("\n\n")
)

// newSSEConn returns a stream whose queue is written on the spot once
// serve has taken the connection over; until then pushes only queue.
func (s *Server) newSSEConn(id string, follow bool) *sseConn {
	cn := &sseConn{s: s, id: id, follow: follow}
	// The handler holds the writer's role until the head is out.
	cn.writing, cn.stopped, cn.now, cn.later = true, make(chan struct{}), cn.sendNow, cn.write
	cn.queue = hub.NewWakeQueue(s.opts.QueueSize, cn.wake).LimitBytes(s.opts.QueueBytes)
	return cn
}

// serve takes the connection over, writes the head and hands the stream
// to its reader goroutine; the handler then returns. The end of the
// credentials watch watches ends the stream (nil: a share holder's, which
// no logout ends); serve owns it from now on. live is
// false when the session had ended and all there is was queued already.
func (cn *sseConn) serve(w http.ResponseWriter, r *http.Request, watch *credWatch, sub *hub.Subscriber, src hub.Source, fl *hub.Follower, live bool) {
	s := cn.s
	cn.release = append(cn.release, watch.stop)
	if src != nil {
		cn.release = append(cn.release, func() { src.Unsubscribe(sub) })
	}
	if cn.follow {
		fl.OnCut = func() { cn.stop(wsEnd{flush: true}) } // what waits, a running turn's cut-off error, goes first
	}
	s.opts.Hub.AddFollower(cn.id, fl)
	cn.release = append(cn.release, func() { s.opts.Hub.RemoveFollower(cn.id, fl) })

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // tell proxies such as nginx not to buffer
	h.Set("Connection", "close")     // the body ends where the connection does
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&head)
	head.WriteString("\r\n")

	// net/http's buffers (4 KiB each way) are not kept: they go with the
	// request. The client sends nothing more on a GET whose answer ends
	// the connection, and what it does send is read and dropped.
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		for _, f := range cn.release {
			f()
		}
		cn.queue.Close()
		s.writeError(w, r, playground.Errorf(playground.EUnavailable, "The stream could not be opened; try again."))
		return
	}
	recordHijackedStatus(w, http.StatusOK)
	cn.conn = conn
	cn.out = wsraw.NewPlainConn(conn)
	_ = conn.SetDeadline(time.Now().Add(s.opts.WriteTimeout))
	err = cn.out.Flush([][]byte{head.Bytes()})
	_ = conn.SetDeadline(time.Time{})
	if err != nil {
		conn.Close()
		for _, f := range cn.release {
			f()
		}
		cn.queue.Close()
		return
	}

	s.live.conns.Add(1)
	s.metrics.liveViewers.Inc()
	cn.release = append(cn.release, s.metrics.liveViewers.Dec)
	watch.attach(func(string) { cn.stop(wsEnd{}) })
	// On shutdown, the last events of comparisons that finished during it
	// are sent before the stream ends.
	stopClosing := context.AfterFunc(s.live.closing, func() { cn.stop(wsEnd{flush: true}) })
	cn.release = append(cn.release, func() { stopClosing() })
	cn.lastWrite.Store(time.Now().UnixNano())
	cn.beat = time.AfterFunc(s.opts.SSEHeartbeat, cn.heartbeat)
	if !live && !cn.follow {
		cn.stop(wsEnd{flush: true}) // the session had ended: what is queued is all
	}
	go cn.read()
	// The handler was the writer until now: send what waits.
	if cn.decided() == nil && cn.sendNow() {
		return
	}
	go cn.write()
}

// read waits on the socket until it closes: the client left, or the
// writer ended the stream. A client sends nothing after its request;
// whatever it does send is dropped.
func (cn *sseConn) read() {
	defer cn.teardown()
	buf := make([]byte, 16)
	for {
		if _, err := cn.conn.Read(buf); err != nil {
			return
		}
	}
}

// teardown runs once, when the reader ends.
func (cn *sseConn) teardown() {
	defer cn.s.live.conns.Done()
	cn.stop(wsEnd{}) // the client is gone, unless an end was decided already
	<-cn.stopped
	cn.beat.Stop()
	cn.queue.Close()
	for _, f := range cn.release {
		f()
	}
}

// heartbeat sends a comment when nothing was written for SSEHeartbeat,
// and waits for the next such moment.
func (cn *sseConn) heartbeat() {
	every := cn.s.opts.SSEHeartbeat
	idle := time.Duration(time.Now().UnixNano() - cn.lastWrite.Load())
	next := every - idle
	if next <= 0 {
		cn.beatDue.Store(true)
		cn.wake()
		next = every
	}
	cn.mu.Lock()
	ended := cn.ended
	cn.mu.Unlock()
	if !ended {
		cn.beat.Reset(next)
	}
}

// sendNow sends what waits without waiting on the socket; true when it
// all went out and the writer's role is given up.
func (cn *sseConn) sendNow() bool {
	if cn.queue.Overflowed() {
		return false
	}
	if !cn.out.WriteNow(cn.drain) || cn.last {
		return false
	}
	return cn.idle()
}

// drain takes what waits as the parts of one write: each event framed as
// today's SSE handler frames it (appendSSE), up to the one that ends the
// stream; or a keep-alive comment when only that is due; nil when nothing
// is. The buffers are the writer's, reused.
func (cn *sseConn) drain() [][]byte {
	if cn.last {
		return nil
	}
	cn.frames = cn.queue.Drain(cn.frames)
	frames := cn.frames
	for i, f := range frames {
		if sseEnds(f, cn.id, cn.follow) {
			frames, cn.last = frames[:i+1], true
			break
		}
	}
	cn.parts = cn.parts[:0]
	if len(frames) == 0 {
		if !cn.beatDue.Swap(false) {
			return nil
		}
		cn.parts = append(cn.parts, sseKeepAlive)
	} else {
		cn.beatDue.Store(false)
		cn.heads, cn.offs = cn.heads[:0], cn.offs[:0]
		for _, f := range frames {
			cn.heads = appendSSEHead(cn.heads, f)
			cn.offs = append(cn.offs, len(cn.heads))
		}
		from := 0
		for i, f := range frames {
			cn.parts = append(cn.parts, cn.heads[from:cn.offs[i]], f.Data, sseGap)
			from = cn.offs[i]
		}
	}
	cn.lastWrite.Store(time.Now().UnixNano())
	return cn.parts
}

// idle gives up the writer's role if nothing waits and no end is decided.
func (cn *sseConn) idle() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.end != nil || cn.queue.Len() > 0 || cn.beatDue.Load() {
		return false
	}
	clear(cn.frames) // an idle viewer keeps no chunk alive
	clear(cn.parts)
	cn.writing = false
	return true
}

// write is the writer goroutine: it sends what waits and returns when
// nothing does, or ends the stream as decided.
func (cn *sseConn) write() {
	for {
		if cn.last || cn.queue.Overflowed() {
			cn.finish() // the end was sent, or the viewer is too slow: it resumes
			return
		}
		end := cn.decided()
		if end != nil && !end.flush {
			cn.finish()
			return
		}
		if !cn.flush() || end != nil || cn.last {
			cn.finish()
			return
		}
		if cn.idle() {
			return
		}
	}
}

// flush sends, waiting within the write timeout, the end of a write
// sendNow began and then everything waiting; false: the socket failed.
func (cn *sseConn) flush() bool {
	parts := cn.drain()
	_ = cn.conn.SetWriteDeadline(time.Now().Add(cn.s.opts.WriteTimeout))
	err := cn.out.Flush(parts)
	_ = cn.conn.SetWriteDeadline(time.Time{})
	return err == nil
}

// finish ends the stream: closing the connection ends the body, and the
// reader.
func (cn *sseConn) finish() {
	cn.conn.Close()
	cn.done()
}

// appendSSEHead appends what comes before an event's data: its id (see
// Frame.LogID), its type and "data: ".
func appendSSEHead(b []byte, f playground.Frame) []byte {
	if id, ok := f.LogID(); ok {
		b = append(b, "id: "...)
		b = strconv.AppendInt(b, id, 10)
		b = append(b, '\n')
	}
	b = append(b, "event: "...)
	b = append(b, f.Type...)
	return append(b, "\ndata: "...)
}
