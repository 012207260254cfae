package hub

import (
	"context"
	"sync"
	"time"

	"github.com/playground-dev/playground"
)

// Follower is a viewer that asked to hear of the turns made from a
// session (docs/api.md, "Conversations"): a WebSocket subscription with
// "follow": true or an SSE stream with ?follow=1. It is registered per
// session id, whether or not the session still runs anywhere, from the
// moment its subscription is taken until the viewer lets go
// (RemoveFollower) or an unshare cuts it off (CutFollowers).
type Follower struct {
	// Queue gets the next frames; it is the viewer's own queue.
	Queue *Queue
	// ShareToken is the token the viewer came with ("" for the owner).
	ShareToken string
	// watchOnly: the viewer did not ask to follow, so it hears of no next
	// turn, only of the session's reveal (see NewWatcher).
	watchOnly bool
	// OnCut, if set (before AddFollower), is called once when an unshare
	// cuts the follow, besides closing Cut; it must not wait.
	OnCut func()

	cut     chan struct{}
	cutOnce sync.Once
}

// NewFollower returns a follower that pushes to q.
func NewFollower(q *Queue, shareToken string) *Follower {
	return &Follower{Queue: q, ShareToken: shareToken, cut: make(chan struct{})}
}

// NewWatcher returns a registration for a viewer that does not follow:
// it is told of the session's reveal, which may come after done, for as
// long as it watches, and of no next turn. Every WebSocket subscription
// and SSE stream is registered as a follower or a watcher.
func NewWatcher(q *Queue, shareToken string) *Follower {
	f := NewFollower(q, shareToken)
	f.watchOnly = true
	return f
}

// Cut is closed when an unshare has ended the follow: the viewer hears of
// no more turns (an SSE stream that waits only for next then ends).
func (f *Follower) Cut() <-chan struct{} { return f.cut }

// follows is the hub's registry of followers, per followed session. It
// is guarded by its own lock rather than owned by the hub's goroutine: an
// announcement (from a request handler or the broker's control listener)
// only copies a set under the lock and pushes to the queues after letting
// go of it, since a push may write to a viewer's socket on the spot.
type follows struct {
	mu  sync.Mutex
	set map[string]map[*Follower]struct{}
}

// AddFollower registers f as a follower of sessionID.
func (h *Hub) AddFollower(sessionID string, f *Follower) {
	h.follows.mu.Lock()
	defer h.follows.mu.Unlock()
	if h.follows.set == nil {
		h.follows.set = map[string]map[*Follower]struct{}{}
	}
	fs := h.follows.set[sessionID]
	if fs == nil {
		fs = map[*Follower]struct{}{}
		h.follows.set[sessionID] = fs
	}
	fs[f] = struct{}{}
}

// RemoveFollower ends f's follow of sessionID; safe to call twice.
func (h *Hub) RemoveFollower(sessionID string, f *Follower) {
	h.follows.mu.Lock()
	defer h.follows.mu.Unlock()
	h.removeFollowerLocked(sessionID, f)
}

func (h *Hub) removeFollowerLocked(sessionID string, f *Follower) {
	fs := h.follows.set[sessionID]
	delete(fs, f)
	if len(fs) == 0 {
		delete(h.follows.set, sessionID)
	}
}

// CutFollowers ends the follows of sessionID by the viewers who came with
// token, which an unshare has just killed. Safe to call again (each
// instance may hear of one unshare twice).
func (h *Hub) CutFollowers(sessionID, token string) {
	if token == "" {
		return
	}
	h.follows.mu.Lock()
	defer h.follows.mu.Unlock()
	for f := range h.follows.set[sessionID] {
		if f.ShareToken == token {
			h.removeFollowerLocked(sessionID, f)
			f.cutOnce.Do(func() {
				close(f.cut)
				if f.OnCut != nil {
					f.OnCut()
				}
			})
		}
	}
}

// Followers counts the follows registered on this instance (watchers
// aside).
func (h *Hub) Followers() int {
	h.follows.mu.Lock()
	defer h.follows.mu.Unlock()
	n := 0
	for _, fs := range h.follows.set {
		for f := range fs {
			if !f.watchOnly {
				n++
			}
		}
	}
	return n
}

// announceTimeout bounds the broker's part of an announcement: a new turn
// is not held up long by a broker that does not answer (as long as the
// broker's claim on the turn as it starts may take).
const announceTimeout = time.Second

// Announce tells every follower of parentID, on every instance, that the
// turn next was made from it: this instance's followers at once, the
// others' through the broker. An error is the broker's: this instance's
// followers have been told all the same.
func (h *Hub) Announce(ctx context.Context, parentID string, next playground.NextTurn) error {
	h.DeliverNext(parentID, next)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), announceTimeout)
	defer cancel()
	return h.broker.Announce(ctx, parentID, next)
}

// DeliverNext tells this instance's followers of parentID of the turn
// next; the broker calls it for an announcement from another instance.
func (h *Hub) DeliverNext(parentID string, next playground.NextTurn) {
	fs := h.registered(parentID, false)
	if len(fs) == 0 {
		return
	}
	frame := playground.NextFrame(parentID, next)
	for _, f := range fs {
		f.Queue.Push(frame) // a full queue drops its viewer, as for any event
	}
}

// registered copies the followers of sessionID (with watchers when
// watchers is set) under the lock, to be pushed to after letting go.
func (h *Hub) registered(sessionID string, watchers bool) []*Follower {
	h.follows.mu.Lock()
	defer h.follows.mu.Unlock()
	fs := make([]*Follower, 0, len(h.follows.set[sessionID]))
	for f := range h.follows.set[sessionID] {
		if watchers || !f.watchOnly {
			fs = append(fs, f)
		}
	}
	return fs
}

// Revealer is a Source that must hear of its session's reveal: a session
// actor, whose later events and snapshots then show the models.
type Revealer interface{ Reveal() }

// Reveal tells every viewer of ev's session, on every instance, which
// model wrote which answer: this instance's at once, the others' through
// the broker. An error is the broker's: this instance's viewers have been
// told all the same.
func (h *Hub) Reveal(ctx context.Context, ev playground.RevealEvent) error {
	h.DeliverReveal(ev)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), announceTimeout)
	defer cancel()
	return h.broker.Reveal(ctx, ev)
}

// DeliverReveal sends the reveal to this instance's viewers of the
// session and tells its actor, if it runs here; the broker calls it for a
// reveal made on another instance.
func (h *Hub) DeliverReveal(ev playground.RevealEvent) {
	h.mu.Lock()
	src := h.sessions[ev.SessionID]
	h.mu.Unlock()
	if r, ok := src.(Revealer); ok {
		r.Reveal()
	}
	frame := playground.RevealFrame(ev)
	for _, f := range h.registered(ev.SessionID, true) {
		f.Queue.Push(frame)
	}
}
