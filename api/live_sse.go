package api

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/auth"
	"github.com/playground-dev/playground/hub"
)

// handleSSE serves GET /sessions/{id}/stream: the session's live events as
// Server-Sent Events, resumable with Last-Event-ID or ?since=n, ended by
// the server after done; with ?follow=1, after the first next instead.
func (s *Server) handleSSE(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, share, err := s.requestCaller(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	owner, err := s.sessionAccess(r.Context(), c, id, share, toSee)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	since, err := sseSince(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	follow, err := sseFollow(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	watch, err := s.watchCredentials(r.Context(), c.p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Over HTTP/1.1 the stream is written on the spot, as a WebSocket's
	// messages are (live_sse_raw.go); over HTTP/2, or when the connection
	// cannot be taken over, by this handler through net/http.
	var cn *sseConn
	var q *hub.Queue
	if canHijack(w, r) {
		cn = s.newSSEConn(id, follow)
		q = cn.queue
	} else {
		q = hub.NewQueue(s.opts.QueueSize).LimitBytes(s.opts.QueueBytes)
	}
	sub := &hub.Subscriber{Queue: q}
	if !owner {
		sub.ShareToken = share
	}
	src, live, err := s.opts.Hub.Subscribe(r.Context(), sub, id, since)
	if err != nil {
		q.Close()
		watch.stop()
		s.writeError(w, r, err)
		return
	}
	// A follower waits past done for the next turn; an unshare cuts it off.
	// Any other stream is a watcher: it hears of a reveal while it lasts.
	fl := hub.NewWatcher(q, sub.ShareToken)
	if follow {
		fl = hub.NewFollower(q, sub.ShareToken)
	}
	if cn != nil {
		cn.serve(w, r, watch, sub, src, fl, live)
		return
	}
	defer q.Close()
	if src != nil {
		defer src.Unsubscribe(sub)
	}
	var cut <-chan struct{}
	if follow {
		cut = fl.Cut()
	}
	s.opts.Hub.AddFollower(id, fl)
	defer s.opts.Hub.RemoveFollower(id, fl)
	defer watch.stop()
	signedOut := make(chan struct{})
	signOut := closeOnce(signedOut)
	watch.attach(func(string) { signOut() })
	s.live.conns.Add(1)
	defer s.live.conns.Done()
	s.metrics.liveViewers.Inc()
	defer s.metrics.liveViewers.Dec()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // tell proxies such as nginx not to buffer
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}

	var frames []playground.Frame
	var buf []byte
	if !live && !follow {
		// The session had ended: everything there is was queued already.
		for _, f := range sub.Queue.Drain(nil) {
			buf = appendSSE(buf, f)
		}
		s.writeSSE(rc, w, buf)
		return
	}
	heartbeat := time.NewTicker(s.opts.SSEHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-sub.Queue.Ready():
			frames = sub.Queue.Drain(frames)
			buf = buf[:0]
			end := false
			for _, f := range frames {
				buf = appendSSE(buf, f)
				if sseEnds(f, id, follow) {
					end = true
					break
				}
			}
			if !s.writeSSE(rc, w, buf) || end {
				return
			}
			heartbeat.Reset(s.opts.SSEHeartbeat)
		case <-heartbeat.C:
			if !s.writeSSE(rc, w, []byte(": keep-alive\n\n")) {
				return
			}
		case <-sub.Queue.Done():
			return // too slow: the stream ends and the client resumes
		case <-cut:
			buf = buf[:0] // what waits: a running turn's cut-off error, if it came first
			for _, f := range sub.Queue.Drain(frames) {
				buf = appendSSE(buf, f)
			}
			s.writeSSE(rc, w, buf)
			return
		case <-s.live.closing.Done():
			// Send what is waiting (the last events of comparisons that
			// finished during shutdown) before the stream ends.
			buf = buf[:0]
			for _, f := range sub.Queue.Drain(frames) {
				buf = appendSSE(buf, f)
			}
			s.writeSSE(rc, w, buf)
			return
		case <-signedOut:
			return // the credentials were revoked or ran out
		case <-r.Context().Done():
			return
		}
	}
}

// credWatch ends a live connection when its credentials may no longer be
// used: revoked on any instance (a logout) or expired. It is registered
// with the hub before the connection is set up, and the token is checked
// against the revocations once more after that (watchCredentials): a
// logout at any moment after the request's authentication either finds
// the registered client or is seen by that check, so that no stream
// outlives its token's logout. What happens before the connection exists
// waits for attach.
type credWatch struct {
	s      *Server
	client *hub.Client
	expiry *time.Timer

	mu     sync.Mutex
	reason string              // why the credentials ended; "": they have not
	end    func(reason string) // ends the connection (attach); must not wait
}

// watchCredentials watches p's token (nil: a share holder's, which no
// logout ends; the watch is nil too), then checks that it was not revoked
// since the request was authenticated. A revocation list that cannot be
// read is an EUnavailable, and nothing is left registered.
func (s *Server) watchCredentials(ctx context.Context, p *Principal) (*credWatch, error) {
	if p == nil || s.opts.Hub == nil {
		return nil, nil
	}
	if s.beforeWatch != nil {
		s.beforeWatch(p)
	}
	w := &credWatch{s: s}
	w.client = &hub.Client{JTI: p.JTI, Revoke: func() { w.fire("credentials revoked") }}
	s.opts.Hub.AddClient(w.client)
	w.expiry = time.AfterFunc(time.Until(p.ExpiresAt), func() { w.fire("credentials expired") })
	check := s.opts.Tokens.IsTokenRevoked
	if rc, ok := s.opts.Tokens.(auth.Rechecker); ok {
		check = rc.RecheckToken // the authentication's answer, unless a revocation was heard since
	}
	revoked, err := check(ctx, p.JTI, p.UserID)
	if err != nil {
		w.stop()
		return nil, unavailable(err, "Credentials cannot be checked right now; try again shortly.")
	}
	if revoked {
		w.fire("credentials revoked") // a logout that came before the registration
	}
	return w, nil
}

// fire records why the credentials ended (the first reason stands) and
// ends the connection if it is attached.
func (w *credWatch) fire(reason string) {
	w.mu.Lock()
	if w.reason != "" {
		w.mu.Unlock()
		return
	}
	w.reason = reason
	end := w.end
	w.mu.Unlock()
	if end != nil {
		end(reason)
	}
}

// attach makes end the way the connection ends, at once if the
// credentials ended already. A nil watch does nothing.
func (w *credWatch) attach(end func(reason string)) {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.end = end
	reason := w.reason
	w.mu.Unlock()
	if reason != "" {
		end(reason)
	}
}

// stop forgets the watch; a nil watch does nothing.
func (w *credWatch) stop() {
	if w == nil {
		return
	}
	w.expiry.Stop()
	w.s.opts.Hub.RemoveClient(w.client)
}

// closeOnce returns a function that closes ch the first time it is called.
func closeOnce(ch chan struct{}) func() {
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// writeSSE writes one batch and flushes it, within the write timeout.
func (s *Server) writeSSE(rc *http.ResponseController, w http.ResponseWriter, b []byte) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}

// appendSSE writes one event: id (the log's events and snapshots, see
// Frame.LogID), event type and data.
func appendSSE(b []byte, f playground.Frame) []byte {
	b = appendSSEHead(b, f)
	b = append(b, f.Data...)
	return append(b, '\n', '\n')
}

// sseEnds reports whether the stream of session id ends after f: at done
// (or an error that cuts the viewer off), or, for a follower, at the first
// next rather than at done.
func sseEnds(f playground.Frame, id string, follow bool) bool {
	if f.SessionID != id {
		return false
	}
	if follow && f.Type == playground.EventDone {
		return false
	}
	return f.Ends || (follow && f.Type == playground.EventNext)
}

// sseFollow reads ?follow: 1 or true to follow, 0, false or absent not to.
func sseFollow(r *http.Request) (bool, error) {
	switch r.URL.Query().Get("follow") {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	default:
		return false, playground.Invalid("follow", "follow must be 1 or 0.")
	}
}

// sseSince reads the resume point: Last-Event-ID first, else ?since=n.
func sseSince(r *http.Request) (int64, error) {
	v, field := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if v == "" {
		v, field = r.URL.Query().Get("since"), "since"
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, playground.Invalid(field, "%s must be a whole number of 0 or more.", field)
	}
	return n, nil
}
