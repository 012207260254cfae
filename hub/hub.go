// Package hub routes viewers to the sessions they watch. It holds the
// registry of sessions running on this instance and of connected clients,
// sends a subscribe to the session's actor when the session runs here, to
// the Broker when it runs on another instance, and otherwise serves the
// stored session from the database. The Queue type is each viewer's
// bounded outbox.
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

// SubscribeResult says how a subscription was taken.
type SubscribeResult int

// The results of Source.Subscribe.
const (
	Gone  SubscribeResult = iota // the source went away; ask the hub again
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
	// Close releases the broker's connections.
	Close() error
}

// LocalBroker is the in-process broker: one instance, nothing to follow.
type LocalBroker struct{}

// Follow reports that no other instance runs the session.
func (LocalBroker) Follow(context.Context, string) (Source, bool) { return nil, false }

// Announce has no other instance to tell.
func (LocalBroker) Announce(context.Context, string, playground.NextTurn) error { return nil }

// Close does nothing.
func (LocalBroker) Close() error { return nil }

// Client is a connected viewer that holds credentials, so that a logout on
// any instance can close it.
type Client struct {
	JTI string
	// Revoke is called (from the hub's goroutine: it must not block) when
	// the client's token is revoked.
	Revoke func()
}

// Options configure a Hub.
type Options struct {
	Store  SessionFinder
	Broker Broker
	Logger *slog.Logger
}

// Hub is the registry. Its state is owned by one goroutine (run), started
// by New and ended by Close, which waits for it; every other goroutine
// talks to it through buffered request channels.
type Hub struct {
	store  SessionFinder
	broker Broker
	log    *slog.Logger

	reqs      chan any
	stop      chan struct{}
	stopOnce  sync.Once
	done      chan struct{}
	sessions  map[string]Source
	clients   map[*Client]struct{}
	liveCount int

	follows follows // its own lock: see follows
}

type registerReq struct {
	id  string
	src Source
}
type unregisterReq struct {
	id  string
	src Source
}
type lookupReq struct {
	id    string
	reply chan Source
}
type addClientReq struct{ c *Client }
type removeClientReq struct{ c *Client }
type revokeReq struct{ jti string }
type countReq struct{ reply chan [2]int }

// New starts a hub.
func New(opts Options) *Hub {
	if opts.Broker == nil {
		opts.Broker = LocalBroker{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Hub{
		store: opts.Store, broker: opts.Broker, log: opts.Logger,
		reqs: make(chan any, 256), stop: make(chan struct{}), done: make(chan struct{}),
		sessions: map[string]Source{}, clients: map[*Client]struct{}{},
	}
	go h.run()
	return h
}

// run owns the registry. It exits when Close closes stop.
func (h *Hub) run() {
	defer close(h.done)
	for {
		select {
		case <-h.stop:
			return
		case r := <-h.reqs:
			h.handle(r)
		}
	}
}

func (h *Hub) handle(r any) {
	switch r := r.(type) {
	case registerReq:
		h.sessions[r.id] = r.src
	case unregisterReq:
		if h.sessions[r.id] == r.src {
			delete(h.sessions, r.id)
		}
	case lookupReq:
		src, ok := h.sessions[r.id]
		if !ok {
			src = nil
		}
		r.reply <- src
	case addClientReq:
		h.clients[r.c] = struct{}{}
	case removeClientReq:
		delete(h.clients, r.c)
	case revokeReq:
		for c := range h.clients {
			if c.JTI == r.jti {
				delete(h.clients, c)
				c.Revoke()
			}
		}
	case countReq:
		r.reply <- [2]int{len(h.sessions), len(h.clients)}
	default:
		h.log.Error("hub: unknown request", "type", slog.AnyValue(r))
	}
}

// send hands a request to the registry goroutine; after Close it reports false.
func (h *Hub) send(r any) bool {
	select {
	case h.reqs <- r:
		return true
	case <-h.stop:
		return false
	}
}

// Register makes a session running on this instance reachable.
func (h *Hub) Register(id string, src Source) { h.send(registerReq{id, src}) }

// Unregister removes the session, if src is still the one registered.
func (h *Hub) Unregister(id string, src Source) { h.send(unregisterReq{id, src}) }

// Lookup returns the local source of a session.
func (h *Hub) Lookup(id string) (Source, bool) {
	reply := make(chan Source, 1)
	if !h.send(lookupReq{id, reply}) {
		return nil, false
	}
	select {
	case src := <-reply:
		return src, src != nil
	case <-h.stop:
		return nil, false
	}
}

// AddClient registers a credentialed connection for revocation.
func (h *Hub) AddClient(c *Client) { h.send(addClientReq{c}) }

// RemoveClient forgets a connection.
func (h *Hub) RemoveClient(c *Client) { h.send(removeClientReq{c}) }

// RevokeToken closes every local connection that holds the token.
func (h *Hub) RevokeToken(jti string) { h.send(revokeReq{jti}) }

// Counts returns how many sessions and credentialed clients are registered.
func (h *Hub) Counts() (sessions, clients int) {
	reply := make(chan [2]int, 1)
	if !h.send(countReq{reply}) {
		return 0, 0
	}
	select {
	case c := <-reply:
		return c[0], c[1]
	case <-h.stop:
		return 0, 0
	}
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
		frames = append(frames, stateFrames(s)...)
	}
	sub.Queue.PushAll(frames)
}

// stateFrames is what a viewer gets of a session known only by its state
// as of s.LastSeq: a snapshot at that seq while it runs; once it has
// ended, a snapshot covering every event before done, then done.
func stateFrames(s *playground.Session) []playground.Frame {
	if s.Status == playground.SessionRunning {
		return []playground.Frame{playground.SnapshotFrame(s, s.LastSeq)}
	}
	return []playground.Frame{playground.SnapshotFrame(s, s.LastSeq-1), playground.DoneFrame(s.ID, s.LastSeq, s.Status)}
}

// Close stops the registry goroutine and waits for it. Safe to call twice.
func (h *Hub) Close() error {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
	return nil
}
