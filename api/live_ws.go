package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/hub"
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
	var p *Principal
	if hasCredentials(r) {
		var err error
		if p, err = s.authenticate(r); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // Origin checked above
	if err != nil {
		s.log.Debug("ws: accept", "err", err)
		return
	}
	c.SetReadLimit(maxClientFrame)
	s.live.conns.Add(1)
	defer s.live.conns.Done()

	conn := &wsConn{s: s, c: c, p: p, queue: hub.NewQueue(s.opts.QueueSize), subs: map[string]wsSub{},
		revoked: make(chan struct{})}
	conn.serve(r.Context())
}

// wsConn is one WebSocket connection. Its reader (the handler goroutine)
// handles client frames in order; its writer goroutine, started by serve
// and waited for before serve returns, is the only one that writes to or
// closes the socket.
type wsConn struct {
	s       *Server
	c       *websocket.Conn
	p       *Principal
	queue   *hub.Queue
	subs    map[string]wsSub // owned by the reader
	revoked chan struct{}
}

type wsSub struct {
	sub *hub.Subscriber
	src hub.Source
}

// clientFrame is any frame a client sends.
type clientFrame struct {
	Type       string `json:"type"`
	SessionID  string `json:"sessionId"`
	Since      *int64 `json:"since"`
	ShareToken string `json:"shareToken"`
	ResponseID string `json:"responseId"`
}

func (cn *wsConn) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cn.p != nil {
		client := &hub.Client{JTI: cn.p.JTI, Revoke: func() { close(cn.revoked) }}
		cn.s.opts.Hub.AddClient(client)
		defer cn.s.opts.Hub.RemoveClient(client)
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		cn.writeLoop(ctx)
		cancel()
	}()
	defer func() {
		cancel()
		<-writerDone
		for id := range cn.subs {
			cn.unsubscribe(id)
		}
		cn.queue.Close()
	}()
	for {
		_, data, err := cn.c.Read(ctx)
		if err != nil {
			return
		}
		cn.handle(ctx, data)
	}
}

// reply queues a frame for this connection only. It counts against the
// queue's bound like any event: a client that sends pings and never reads
// the pongs is dropped like any viewer that falls behind.
func (cn *wsConn) reply(typ playground.EventType, sessionID string, v any) {
	cn.queue.Push(playground.EncodeFrame(typ, sessionID, 0, v))
}

func (cn *wsConn) replyError(sessionID string, err error) {
	f := hub.ErrorFrame(sessionID, err)
	f.SessionID = "" // a reply to this connection, not the end of a session (see isEnd)
	cn.queue.Push(f)
}

func (cn *wsConn) handle(ctx context.Context, data []byte) {
	var f clientFrame
	if err := json.Unmarshal(data, &f); err != nil {
		cn.replyError("", playground.Errorf(playground.EInvalid, "A frame must be one JSON object."))
		return
	}
	switch f.Type {
	case "ping":
		cn.reply(playground.EventPong, "", map[string]string{"type": string(playground.EventPong)})
	case "subscribe":
		cn.subscribe(ctx, f)
	case "unsubscribe":
		if f.SessionID == "" {
			cn.replyError("", playground.Invalid("sessionId", "sessionId is required."))
			return
		}
		cn.unsubscribe(f.SessionID)
		cn.reply(playground.EventUnsubscribed, f.SessionID, map[string]string{
			"type": string(playground.EventUnsubscribed), "sessionId": f.SessionID})
	case "cancel":
		cn.cancel(ctx, f)
	default:
		cn.replyError(f.SessionID, playground.Invalid("type", "Unknown frame type %q.", f.Type))
	}
}

func (cn *wsConn) unsubscribe(sessionID string) {
	if ws, ok := cn.subs[sessionID]; ok {
		if ws.src != nil {
			ws.src.Unsubscribe(ws.sub)
		}
		delete(cn.subs, sessionID)
		cn.s.metrics.liveViewers.Dec()
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
	_, owner, err := cn.s.storedSession(ctx, cn.p, f.SessionID, f.ShareToken)
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
	cn.subs[f.SessionID] = wsSub{sub: sub, src: src}
	cn.s.metrics.liveViewers.Inc()
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
	sess, owner, err := cn.s.storedSession(ctx, cn.p, f.SessionID, share)
	switch {
	case err != nil:
		cn.replyError(f.SessionID, err)
	case !owner:
		cn.replyError(f.SessionID, playground.Errorf(playground.EForbidden, "Only the session's owner can cancel it."))
	case f.ResponseID != "" && sess.Response(f.ResponseID) == nil:
		cn.replyError(f.SessionID, playground.Errorf(playground.ENotFound, "No such response in this session."))
	default:
		if err := cn.s.opts.Runner.Cancel(ctx, f.SessionID, f.ResponseID); err != nil {
			cn.replyError(f.SessionID, err)
		}
	}
}

// writeLoop is the connection's only writer: it sends everything queued as
// one frame (JSON objects separated by "\n"), each write bounded by the
// write timeout, and closes the socket with the code that fits when the
// viewer falls behind, its credentials end, or the server shuts down.
func (cn *wsConn) writeLoop(ctx context.Context) {
	var expiry <-chan time.Time
	if cn.p != nil {
		t := time.NewTimer(time.Until(cn.p.ExpiresAt))
		defer t.Stop()
		expiry = t.C
	}
	// One timer bounds every write: armed before it and stopped after it;
	// firing closes the socket, which fails the write. A context with a
	// deadline per write cost a timer and allocations for every message to
	// every viewer (a tenth of the server's CPU in a 1 000-viewer fan-out).
	// The connection's end likewise closes the socket once, so each write
	// needs no context of its own (coder/websocket registers one per write
	// for a context that can end).
	watchdog := time.AfterFunc(time.Hour, func() { cn.c.CloseNow() })
	watchdog.Stop()
	defer watchdog.Stop()
	defer context.AfterFunc(ctx, func() { cn.c.CloseNow() })()
	var frames []playground.Frame
	var buf []byte
	// flush sends everything waiting as one frame; false means the socket failed.
	flush := func() bool {
		frames = cn.queue.Drain(frames)
		msg := buf[:0]
		if len(frames) == 1 {
			msg = frames[0].Data // the shared bytes as they are: no copy
		} else {
			for i, f := range frames {
				if i > 0 {
					msg = append(msg, lineBreak...)
				}
				msg = append(msg, f.Data...)
			}
			buf = msg
		}
		if len(msg) == 0 {
			return true
		}
		watchdog.Reset(cn.s.opts.WriteTimeout)
		err := cn.c.Write(context.Background(), websocket.MessageText, msg)
		if !watchdog.Stop() {
			return false // it fired: the socket is closed
		}
		if cap(buf) > 64<<10 {
			buf = nil // do not keep a burst's buffer for an idle viewer
		}
		return err == nil
	}
	for {
		select {
		case <-cn.queue.Ready():
			if !flush() {
				cn.c.CloseNow()
				return
			}
		case <-cn.queue.Done():
			if cn.queue.Overflowed() {
				cn.close(closeTooSlow, "too slow to keep up")
			}
			return
		case <-expiry:
			cn.close(closeUnauthorized, "credentials expired")
			return
		case <-cn.revoked:
			cn.close(closeUnauthorized, "credentials revoked")
			return
		case <-cn.s.live.closing:
			flush() // the last events of comparisons that finished during shutdown
			cn.close(closeGoingAway, "server shutting down")
			return
		case <-ctx.Done():
			return
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
