// Package hub routes viewers to the sessions they watch. It holds the
// registry of sessions running on this instance and of connected clients,
// sends a subscribe to the session's actor when the session runs here, to
// the Broker when it runs on another instance, and otherwise serves the
// stored session from the database. The Queue type is each viewer's
// bounded outbox; a ViewerSet is one session's audience, fed by the
// session's actor or by a broker's follower of a session running
// elsewhere.
package hub

import (
	"context"
	"log/slog"
	"sync"

	"github.com/playground-dev/playground"
)

// Subscriber is one viewer of one session: a WebSocket subscription or an
// SSE stream. Its frames go to Queue, which it may share with the other
// subscriptions of the same connection.
type Subscriber struct {
	Queue *Queue
	// ShareToken is the token the viewer came with ("" for the owner), so
	// that unsharing cuts off exactly those viewers.
	ShareToken string
	// Subscribed asks for a "subscribed" frame before the first event
	// (the WebSocket protocol has it; SSE does not).
	Subscribed bool
}

// Source is something a viewer can subscribe to: a session actor on this
// instance, or a broker's follower of a session that runs elsewhere.
type Source interface {
	// Subscribe pushes to sub.Queue the "subscribed" frame if asked for,
	// the replay after since (or a snapshot), and then every live frame
	// until Unsubscribe, the session's end, or the queue's overflow. It
	// returns Gone when the source has gone away (the caller asks the hub
	// again), and Ended when the session had already ended, so nothing
	// follows what was pushed.
	Subscribe(sub *Subscriber, since int64) SubscribeResult
	Unsubscribe(sub *Subscriber)
}

// Owned is a Source that knows whose session it is without asking its
// goroutine (a session actor: the owner is fixed when the session
// starts), so that the owner's own subscribe needs no database read.
type Owned interface {
	OwnerID() string
}

// Ask sends req to the goroutine that owns a source (a session actor, a
// follower) on ctrl and waits for its reply; ok is false when the
// goroutine has exited (exited is closed) before it took req or replied.
// reply must have room for the answer, so the owner never waits on it.
func Ask[Req, Reply any](ctrl chan<- Req, req Req, reply <-chan Reply, exited <-chan struct{}) (r Reply, ok bool) {
	select {
	case ctrl <- req:
	case <-exited:
		return r, false
	}
	select {
	case r = <-reply:
		return r, true
	case <-exited:
		return r, false
	}
}

// SubscribeResult says how a subscription was taken.
type SubscribeResult int

// The results of Source.Subscribe.
const (
	Gone  SubscribeResult = iota // the source went away; ask the hub again (the zero value)
	Live                         // live frames will follow
	Ended                        // the session had ended: the replay is all there is
)

// SessionFinder is the part of the session store the hub reads.
type SessionFinder interface {
	FindSession(ctx context.Context, id string) (*playground.Session, error)
}

// Broker carries sessions across instances. The in-process broker (the
// zero configuration) knows no other instance.
type Broker interface {
	// Follow returns a source for a session that runs on another instance.
	Follow(ctx context.Context, sessionID string) (Source, bool)
	// Announce tells the followers of parentID on the other instances
	// of the turn next (see Hub.Announce).
	Announce(ctx context.Context, parentID string, next playground.NextTurn) error
	// Reveal tells the viewers of a blind session on the other instances
	// which model wrote which answer (see Hub.Reveal).
	Reveal(ctx context.Context, ev playground.RevealEvent) error
	// Close releases the broker's connections.
	Close() error
}

// LocalBroker is the in-process broker: one instance, nothing to follow.
type LocalBroker struct{}

// Follow reports that no other instance runs the session.
func (LocalBroker) Follow(context.Context, string) (Source, bool) { return nil, false }

// Announce has no other instance to tell.
func (LocalBroker) Announce(context.Context, string, playground.NextTurn) error { return nil }

// Reveal has no other instance to tell.
func (LocalBroker) Reveal(context.Context, playground.RevealEvent) error { return nil }

// Close does nothing.
func (LocalBroker) Close() error { return nil }

// Client is a connected viewer that holds credentials, so that a logout on
// any instance can close it.
type Client struct {
	JTI string
	// Revoke is called, from the goroutine that revokes the token (a
	// logout's handler, or the broker's control reader), when the
	// client's token is revoked: it must not block.
	Revoke func()
}

// Options configure a Hub.
type Options struct {
	Store  SessionFinder
	Broker Broker
	Logger *slog.Logger
}

// Hub is the registry: which sessions run here, which credentialed
// connections to close at a revocation, and who follows which
// conversation. Each table is guarded by a lock that is held only to read
// or change it, never across a call out (a Revoke, a push to a queue), so
// that no caller waits on another's I/O.
type Hub struct {
	store  SessionFinder
	broker Broker
	log    *slog.Logger

	mu       sync.Mutex
	closed   bool
	sessions map[string]Source
	clients  map[*Client]struct{}

	follows follows // its own lock: see follows
}

// New makes a hub. It starts no goroutine.
func New(opts Options) *Hub {
	if opts.Broker == nil {
		opts.Broker = LocalBroker{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Hub{
		store: opts.Store, broker: opts.Broker, log: opts.Logger,
		sessions: map[string]Source{}, clients: map[*Client]struct{}{},
	}
}

// Register makes a session running on this instance reachable.
func (h *Hub) Register(id string, src Source) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.sessions[id] = src
	}
}

// Unregister removes the session, if src is still the one registered.
func (h *Hub) Unregister(id string, src Source) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[id] == src {
		delete(h.sessions, id)
	}
}

// Lookup returns the local source of a session; after Close, none.
func (h *Hub) Lookup(id string) (Source, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	src, ok := h.sessions[id]
	return src, ok
}

// AddClient registers a credentialed connection for revocation.
func (h *Hub) AddClient(c *Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.clients[c] = struct{}{}
	}
}

// RemoveClient forgets a connection.
func (h *Hub) RemoveClient(c *Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
}

// RevokeToken closes every local connection that holds the token. The
// clients' Revoke functions run after the lock is released.
func (h *Hub) RevokeToken(jti string) {
	var revoked []*Client
	h.mu.Lock()
	for c := range h.clients {
		if c.JTI == jti {
			delete(h.clients, c)
			revoked = append(revoked, c)
		}
	}
	h.mu.Unlock()
	for _, c := range revoked {
		c.Revoke()
	}
}

// Counts returns how many sessions and credentialed clients are registered.
func (h *Hub) Counts() (sessions, clients int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions), len(h.clients)
}

// Subscribe routes a viewer to its session: the local actor, a follower of
// another instance, or the stored session. The caller has already checked
// that the viewer may see the session. It returns the source to
// unsubscribe from later, and whether live frames will follow (false when
// the session had ended and everything was pushed already).
func (h *Hub) Subscribe(ctx context.Context, sub *Subscriber, sessionID string, since int64) (Source, bool, error) {
	for range 3 {
		src, ok := h.Lookup(sessionID)
		if !ok {
			src, ok = h.broker.Follow(ctx, sessionID)
		}
		if !ok {
			break
		}
		switch src.Subscribe(sub, since) {
		case Live:
			return src, true, nil
		case Ended:
			return src, false, nil
		}
		// The source went away as we asked: ask again.
	}
	s, err := h.store.FindSession(ctx, sessionID)
	if err != nil {
		return nil, false, err
	}
	ServeStored(sub, s, since)
	return nil, s.Status == playground.SessionRunning, nil
}

// ServeStored gives a viewer a session that no actor holds any more: the
// "subscribed" frame, then (unless the viewer has seen it all) a snapshot
// covering every event before done, and done. A stored session that is
// still marked running (its owner is gone and nobody has noticed yet) gets
// a snapshot at its last checkpoint.
func ServeStored(sub *Subscriber, s *playground.Session, since int64) {
	frames := make([]playground.Frame, 0, 3)
	if sub.Subscribed {
		frames = append(frames, playground.SubscribedFrame(s.ID, s.LastSeq))
	}
	if s.Status == playground.SessionRunning || since < s.LastSeq {
		frames = append(frames, StateFrames(s)...)
	}
	sub.Queue.PushAll(frames)
}

// StateFrames is what a viewer gets of a session known only by its state
// as of s.LastSeq: a snapshot at that seq while it runs; once it has
// ended, a snapshot covering every event before done, then done.
func StateFrames(s *playground.Session) []playground.Frame {
	if s.Status == playground.SessionRunning {
		return []playground.Frame{playground.SnapshotFrame(s, s.LastSeq)}
	}
	return []playground.Frame{playground.SnapshotFrame(s, s.LastSeq-1), playground.DoneFrame(s.ID, s.LastSeq, s.Status)}
}

// Close empties nothing but makes the registry refuse new sessions and
// clients and find none: the server is shutting down. Safe to call twice.
func (h *Hub) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	return nil
}
