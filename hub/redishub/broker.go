// Package redishub carries sessions across instances through Redis: its
// Broker implements hub.Broker with a Redis Stream per session, a
// follower per remote session watched here, viewer counts summed over the
// instances, and a control channel for cancels, unshares, revocations and
// new turns. Everything of the hub that talks to Redis is here; package
// hub itself knows only its Broker interface.
package redishub

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/config"
	"github.com/playground-dev/playground/hub"
	"github.com/playground-dev/playground/internal/backoff"
)

// Options configure a Broker.
type Options struct {
	// Client is a single node, a Redis Cluster or a Sentinel-managed
	// master: the broker's commands work on all three.
	Client redis.UniversalClient
	// Prefix starts every key and channel (config.DefaultRedisPrefix by default), so
	// several deployments, or tests, can share one Redis.
	Prefix string
	// Instance names this process; it must be unique among the instances.
	Instance string
	Store    hub.SessionFinder
	Logger   *slog.Logger
	// ReplayWindow is how long a session's stream stays after done.
	ReplayWindow time.Duration
	// Lease is how long an instance's claim on a running session lasts
	// without renewal; a session whose owner stops renewing is ended as
	// interrupted by another instance within about one lease.
	Lease time.Duration
	// FollowerIdle is how long a follower with no local viewer lingers.
	FollowerIdle time.Duration
}

// Control is what the Broker asks of this instance when another
// instance (or this one) publishes on the control channel.
type Control struct {
	Cancel   func(sessionID, responseID string) // a session running here
	Unshare  func(sessionID, token string)      // a session running here
	Revoke   func(jti string)                   // close local connections holding it
	Presence func(sessionID string)             // the total count changed

	Next func(parentID string, next playground.NextTurn) // a new turn: tell local followers
	// Reveal: a blind session was revealed; tell local viewers and actor.
	Reveal func(ev playground.RevealEvent)
}

// Broker makes several instances behave as one: each owned session's
// events go to a Redis Stream (seq as the entry id), any instance follows
// a remote session with one reader per session, and a pub/sub channel
// carries cancels, unshares, revocations and presence changes. Its
// goroutines (writer, lease renewer, control listener, presence loop) are
// started by NewBroker and stopped by Close, which waits for them.
type Broker struct {
	rdb      redis.UniversalClient
	prefix   string
	instance string
	store    hub.SessionFinder
	log      *slog.Logger
	replay   time.Duration
	lease    time.Duration
	idle     time.Duration
	sharded  bool // control messages go by SPUBLISH/SSUBSCRIBE

	mu        sync.Mutex
	owned     map[string]*pubSession
	followers map[string]*follower
	control   Control
	local     map[string]int // viewers on this instance, per session
	others    map[string]int // viewers on the other instances, as last read

	wake      chan struct{} // writer: frames are waiting
	presenceC chan string   // presence loop: a local count changed
	stop      chan struct{}
	stopOnce  sync.Once
	wg        sync.WaitGroup
	healthy   chan struct{} // closed once the first write after start succeeded

	// unsure is when this broker last had reason to think Redis may have
	// lost its keys: a command that failed, or the control subscription
	// made again (a Redis that restarted empty comes back that way). For a
	// lease after it, a missing owner lease is no proof of a dead owner:
	// a live owner renews within a lease. Zero: never.
	unsureMu      sync.Mutex
	unsure        time.Time
	subscriptions int
	// runIDs is each Redis server's run id as last seen, by address ("" for
	// the one server of a single node or a Sentinel-managed master): a
	// server whose run id changed is a new process, which may have come
	// back empty without this broker seeing a single failure.
	runIDs map[string]string
}

// pubSession is an owned session's log as the writer knows it.
type pubSession struct {
	frames  []playground.Frame
	written int  // how many of frames Redis has
	done    bool // the done frame is among frames
}

// NewBroker starts the broker's goroutines.
func NewBroker(opts Options) *Broker {
	if opts.Prefix == "" {
		opts.Prefix = config.DefaultRedisPrefix
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ReplayWindow <= 0 {
		opts.ReplayWindow = 6 * time.Minute
	}
	if opts.Lease <= 0 {
		opts.Lease = config.DefaultRedisLease
	}
	if opts.FollowerIdle <= 0 {
		opts.FollowerIdle = 10 * time.Second
	}
	b := &Broker{
		rdb: opts.Client, sharded: shardedPubSub(opts.Client), prefix: opts.Prefix, instance: opts.Instance, store: opts.Store, log: opts.Logger,
		replay: opts.ReplayWindow, lease: opts.Lease, idle: opts.FollowerIdle,
		owned: map[string]*pubSession{}, followers: map[string]*follower{},
		local: map[string]int{}, others: map[string]int{}, runIDs: map[string]string{},
		wake: make(chan struct{}, 1), presenceC: make(chan string, 1024), stop: make(chan struct{}),
	}
	b.wg.Add(4)
	go b.writeLoop()
	go b.leaseLoop()
	go b.controlLoop()
	go b.presenceLoop()
	return b
}

// shardedPubSub reports whether control messages should use sharded
// pub/sub (Redis 7's SPUBLISH/SSUBSCRIBE): in a Redis Cluster, where a
// plain PUBLISH is copied to every node over the cluster bus, when the
// servers know the command. A single node or a Sentinel-managed master
// gains nothing from it and keeps plain pub/sub, which Redis 6 has too.
// When the cluster cannot be asked (it is down at start-up), sharded it
// is: every instance must choose alike, and Redis Cluster 7 is the norm.
func shardedPubSub(rdb redis.UniversalClient) bool {
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := rdb.Do(ctx, "COMMAND", "INFO", "SPUBLISH").Slice()
	if err != nil {
		return true
	}
	return len(info) == 1 && info[0] != nil // an unknown command's entry is nil
}

// SetControl installs the handlers of control messages.
func (b *Broker) SetControl(c Control) {
	b.mu.Lock()
	b.control = c
	b.mu.Unlock()
}

func (b *Broker) handlers() Control {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.control
}

// Keys. Every key of a session carries its id as a hash tag ({sid}), so
// in a Redis Cluster its stream, owner lease, recovery claim and viewer
// counts live on one shard and a command naming two of them (Follow's
// EXISTS) never spans slots. Commands over several sessions are
// pipelines only, which go-redis splits per shard.
func (b *Broker) sessionKey(sid, part string) string {
	return b.prefix + "s:{" + sid + "}:" + part
}
func (b *Broker) streamKey(sid string) string    { return b.sessionKey(sid, "log") }
func (b *Broker) ownerKey(sid string) string     { return b.sessionKey(sid, "owner") }
func (b *Broker) presenceKey(sid string) string  { return b.sessionKey(sid, "viewers") }
func (b *Broker) recoverKey(sid string) string   { return b.sessionKey(sid, "recovering") }
func (b *Broker) recoveredKey(sid string) string { return b.sessionKey(sid, "recovered") }
func (b *Broker) controlChannel() string         { return b.prefix + "control" }

// Ping reports whether Redis answers (for /readyz). In a cluster every
// master must answer, as the cluster describes itself now: while a dead
// master's slots have no live master, part of the sessions can neither
// be written nor followed, and one PING to a random node would not say
// so; once its replica is promoted, the fresh description names it.
func (b *Broker) Ping(ctx context.Context) error {
	if cc, ok := b.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, master *redis.Client) error {
			return master.Ping(ctx).Err()
		})
	}
	return b.rdb.Ping(ctx).Err()
}

// Close writes what is still waiting for the streams (the last events of
// sessions ended by a shutdown), stops the broker's goroutines and its
// followers, and waits.
func (b *Broker) Close() error {
	if err := b.writeOnce(); err != nil {
		b.log.Warn("redis: last write before closing", "err", err)
	}
	b.stopOnce.Do(func() { close(b.stop) })
	b.mu.Lock()
	fs := make([]*follower, 0, len(b.followers))
	for _, f := range b.followers {
		fs = append(fs, f)
	}
	b.mu.Unlock()
	for _, f := range fs {
		f.close()
	}
	b.wg.Wait()
	return nil
}

// sleep waits d or until the broker stops; it reports false on stop.
func (b *Broker) sleep(d time.Duration) bool { return backoff.Sleep(b.stop, d) }

// ---- Owning sessions: the writer and the lease --------------------------

// Own claims a session that starts on this instance, before anyone can
// subscribe to it. If Redis is down the session still runs: its events
// wait in memory and reach Redis when it is back.
func (b *Broker) Own(ctx context.Context, sid string) {
	b.mu.Lock()
	b.owned[sid] = &pubSession{}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := b.rdb.Set(ctx, b.ownerKey(sid), b.instance, b.lease).Err(); err != nil {
		b.log.Warn("redis: claim session", "session", sid, "err", err)
	}
}

// Publish queues a frame of an owned session for the stream. It never
// blocks: the session actor goes on whatever Redis does.
func (b *Broker) Publish(sid string, f playground.Frame) {
	b.mu.Lock()
	ps := b.owned[sid]
	if ps == nil {
		// Events of a session ended by recovery on this instance.
		ps = &pubSession{}
		b.owned[sid] = ps
	}
	ps.frames = append(ps.frames, f)
	if f.Type == playground.EventDone {
		ps.done = true
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// writeLoop appends owned sessions' frames to their streams, many per
// round trip. After a failure it writes every owned session's log again
// from the start: entries Redis already has are refused by id and
// skipped, and a stream Redis lost (a restart) is whole again, so remote
// viewers resume without a gap.
func (b *Broker) writeLoop() {
	defer b.wg.Done()
	failures := 0
	for {
		select {
		case <-b.wake:
		case <-b.stop:
			return
		}
		for {
			err := b.writeOnce()
			if err == nil {
				if failures > 0 {
					b.log.Info("redis: writing streams again")
				}
				failures = 0
				break
			}
			if failures == 0 {
				b.log.Warn("redis: write streams", "err", err)
			}
			failures++
			b.mu.Lock()
			for _, ps := range b.owned {
				ps.written = 0
			}
			b.mu.Unlock()
			if !backoff.Wait(b.stop, failures) {
				return
			}
		}
	}
}

type pendingWrite struct {
	sid    string
	frames []playground.Frame
	upTo   int
	done   bool
}

func (b *Broker) writeOnce() error {
	b.mu.Lock()
	var work []pendingWrite
	for sid, ps := range b.owned {
		if ps.written < len(ps.frames) {
			work = append(work, pendingWrite{sid: sid, frames: ps.frames[ps.written:], upTo: len(ps.frames), done: ps.done})
		}
	}
	b.mu.Unlock()
	if len(work) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pipe := b.rdb.Pipeline()
	var adds []*redis.StringCmd
	for _, w := range work {
		key := b.streamKey(w.sid)
		for _, f := range w.frames {
			adds = append(adds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: strconv.FormatInt(f.Seq, 10) + "-0",
				Values: []any{"t", string(f.Type), "d", f.Data}}))
		}
		if w.done {
			pipe.PExpire(ctx, key, b.replay)
			pipe.Del(ctx, b.ownerKey(w.sid))
		} else {
			pipe.PExpire(ctx, key, 24*time.Hour) // a safety net; done sets the real expiry
		}
	}
	_, err := pipe.Exec(ctx)
	for _, c := range adds {
		// An id at or below the stream's top was written before (this is
		// a rewrite after a failure): not an error.
		if e := c.Err(); e != nil && !strings.Contains(e.Error(), "equal or smaller") {
			return fmt.Errorf("xadd: %w", e)
		}
	}
	if err != nil && !strings.Contains(err.Error(), "equal or smaller") {
		return err
	}
	b.mu.Lock()
	for _, w := range work {
		ps := b.owned[w.sid]
		if ps == nil {
			continue
		}
		ps.written = max(ps.written, w.upTo)
		if w.done && ps.written == len(ps.frames) {
			delete(b.owned, w.sid) // the stream holds it all until it expires
		}
	}
	b.mu.Unlock()
	return nil
}

// leaseLoop renews this instance's claim on the sessions it runs.
// It also takes note of the servers' run ids, from the start on, so that
// a restart is known even when this broker sent nothing while Redis was
// away.
func (b *Broker) leaseLoop() {
	defer b.wg.Done()
	b.noteServers()
	for b.sleep(b.lease / 3) {
		b.noteServers()
		b.mu.Lock()
		var sids []string
		for sid, ps := range b.owned {
			if !ps.done {
				sids = append(sids, sid)
			}
		}
		b.mu.Unlock()
		if len(sids) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.lease/3)
		pipe := b.rdb.Pipeline()
		for _, sid := range sids {
			pipe.Set(ctx, b.ownerKey(sid), b.instance, b.lease)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.log.Warn("redis: renew leases", "err", err)
		}
		cancel()
	}
}

// OwnerAlive reports whether a running session's owner still holds its
// lease. When Redis cannot say, it answers true: better to wait than to
// end a live peer's comparison.
//
// The server holding the lease is asked for its run id in the same round
// trip: a Redis that restarted empty since this broker last looked holds
// no lease of anyone's, and this broker may have had no failure to tell
// it so (it sent nothing while Redis was away, and its control
// subscription has not come back yet).
func (b *Broker) OwnerAlive(ctx context.Context, sid string) bool {
	if !b.settled() {
		return true
	}
	key := b.ownerKey(sid)
	var node redis.Cmdable = b.rdb
	addr := ""
	if cc, ok := b.rdb.(*redis.ClusterClient); ok {
		m, err := cc.MasterForKey(ctx, key)
		if err != nil {
			b.markUnsure()
			return true
		}
		node, addr = m, m.Options().Addr
	}
	var info *redis.StringCmd
	var exists *redis.IntCmd
	_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		info = p.Info(ctx, "server")
		exists = p.Exists(ctx, key)
		return nil
	})
	if err != nil {
		b.markUnsure()
		return true
	}
	if b.restarted(addr, runID(info.Val())) {
		return true
	}
	return exists.Val() > 0
}

// noteServers takes note of the run id of every server Redis has (each
// master of a cluster), marking the broker unsure when one has changed.
func (b *Broker) noteServers() {
	ctx, cancel := context.WithTimeout(context.Background(), max(b.lease/3, time.Second))
	defer cancel()
	if cc, ok := b.rdb.(*redis.ClusterClient); ok {
		_ = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			if info, err := m.Info(ctx, "server").Result(); err == nil {
				b.restarted(m.Options().Addr, runID(info))
			}
			return nil
		})
		return
	}
	if info, err := b.rdb.Info(ctx, "server").Result(); err == nil {
		b.restarted("", runID(info))
	}
}

// restarted records the run id of the server at addr and reports whether
// it differs from the one seen there before: a new process, which may have
// lost every key. It marks the broker unsure then. A server seen for the
// first time is only taken note of.
func (b *Broker) restarted(addr, id string) bool {
	if id == "" {
		return false
	}
	b.unsureMu.Lock()
	prev, seen := b.runIDs[addr]
	b.runIDs[addr] = id
	b.unsureMu.Unlock()
	if seen && prev != id {
		b.markUnsure()
		return true
	}
	return false
}

// runID is the run_id field of an INFO server reply ("" when none).
func runID(info string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "run_id:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// markUnsure records a reason to think Redis may have lost its keys.
func (b *Broker) markUnsure() {
	b.unsureMu.Lock()
	b.unsure = time.Now()
	b.unsureMu.Unlock()
}

// subscribed counts a confirmation of the control subscription: the first
// is the start; any later one is a reconnection, after which Redis may
// have come back empty.
func (b *Broker) subscribed() {
	b.unsureMu.Lock()
	b.subscriptions++
	again := b.subscriptions > 1
	b.unsureMu.Unlock()
	if again {
		b.markUnsure()
	}
}

// settled reports whether Redis has been trusted for at least a lease, so
// that every live owner has renewed its lease since.
func (b *Broker) settled() bool {
	b.unsureMu.Lock()
	defer b.unsureMu.Unlock()
	return b.unsure.IsZero() || time.Since(b.unsure) >= b.lease
}

// ClaimRecovery makes sure one instance at a time ends an orphaned
// session. The claim lasts one lease: a recovery that failed (the
// database was slow or down) is tried again by the next pass of any
// instance, and one that succeeded leaves nothing running to claim. A
// second attempt after a slow first one is harmless: endings are stored
// once, and the stream refuses events it already holds.
func (b *Broker) ClaimRecovery(ctx context.Context, sid string) bool {
	ok, err := b.rdb.SetNX(ctx, b.recoverKey(sid), b.instance, b.lease).Result()
	return err == nil && ok
}

// Recovered records, before an instance ending an orphaned session
// publishes its first event, the seq the log had reached: the events
// after it are the recovery's. A viewer of the dead owner may have seen
// events after that seq that neither the stream nor the database got,
// under the seqs the recovery's events now take; a follower gives a
// viewer resuming after it a snapshot rather than a replay that would
// leave those events in its text. The mark lasts as long as the stream.
func (b *Broker) Recovered(ctx context.Context, sid string, seq int64) error {
	return b.rdb.Set(ctx, b.recoveredKey(sid), seq, b.replay+b.lease).Err()
}

// Tail returns the logged frames after seq, as far as the stream has them.
func (b *Broker) Tail(ctx context.Context, sid string, after int64) ([]playground.Frame, error) {
	msgs, err := b.rdb.XRange(ctx, b.streamKey(sid), strconv.FormatInt(after+1, 10)+"-0", "+").Result()
	if err != nil {
		return nil, err
	}
	return framesOf(sid, msgs), nil
}

func framesOf(sid string, msgs []redis.XMessage) []playground.Frame {
	out := make([]playground.Frame, 0, len(msgs))
	for _, m := range msgs {
		seq, _, _ := strings.Cut(m.ID, "-")
		n, _ := strconv.ParseInt(seq, 10, 64)
		t, _ := m.Values["t"].(string)
		d, _ := m.Values["d"].(string)
		out = append(out, playground.LogFrame(sid, n, playground.EventType(t), []byte(d)))
	}
	return out
}

// ---- Control ------------------------------------------------------------

// controlMsg travels on the control channel.
type controlMsg struct {
	Kind       string `json:"kind"` // cancel, unshare, revoke, presence, next, reveal
	SessionID  string `json:"sessionId,omitempty"`
	ResponseID string `json:"responseId,omitempty"`
	Token      string `json:"token,omitempty"`
	JTI        string `json:"jti,omitempty"`
	From       string `json:"from,omitempty"`

	Next *playground.NextTurn `json:"next,omitempty"` // kind next: the new turn

	Reveal *playground.RevealEvent `json:"reveal,omitempty"` // kind reveal: models and tally
}

func (b *Broker) publishControl(ctx context.Context, m controlMsg) error {
	m.From = b.instance
	data, _ := json.Marshal(m)
	if b.sharded {
		return b.rdb.SPublish(ctx, b.controlChannel(), data).Err()
	}
	return b.rdb.Publish(ctx, b.controlChannel(), data).Err()
}

// Cancel asks whichever instance runs the session to cancel it (or one
// response).
func (b *Broker) Cancel(ctx context.Context, sid, rid string) error {
	return b.publishControl(ctx, controlMsg{Kind: "cancel", SessionID: sid, ResponseID: rid})
}

// Unshare cuts off the viewers who came with token on every instance.
func (b *Broker) Unshare(ctx context.Context, sid, token string) error {
	b.unshareFollower(sid, token)
	return b.publishControl(ctx, controlMsg{Kind: "unshare", SessionID: sid, Token: token})
}

// Revoke closes the connections holding jti on every instance. This
// instance's own are closed at once, whether or not Redis answers.
func (b *Broker) Revoke(ctx context.Context, jti string) error {
	if h := b.handlers().Revoke; h != nil {
		h(jti)
	}
	return b.publishControl(ctx, controlMsg{Kind: "revoke", JTI: jti})
}

// Announce tells the followers of parentID on the other instances of a
// new turn (this instance's were told by the hub).
func (b *Broker) Announce(ctx context.Context, parentID string, next playground.NextTurn) error {
	return b.publishControl(ctx, controlMsg{Kind: "next", SessionID: parentID, Next: &next})
}

// Reveal tells the viewers of a blind session on the other instances
// which model wrote which answer (this instance's were told by the hub).
func (b *Broker) Reveal(ctx context.Context, ev playground.RevealEvent) error {
	return b.publishControl(ctx, controlMsg{Kind: "reveal", SessionID: ev.SessionID, Reveal: &ev})
}

// controlLoop listens on the control channel; go-redis reconnects the
// subscription by itself after a failure.
func (b *Broker) controlLoop() {
	defer b.wg.Done()
	var ps *redis.PubSub
	if b.sharded {
		ps = b.rdb.SSubscribe(context.Background(), b.controlChannel())
	} else {
		ps = b.rdb.Subscribe(context.Background(), b.controlChannel())
	}
	defer ps.Close()
	// With the subscriptions too: each one after the first is a
	// reconnection, which may mean a Redis that came back empty.
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(1024))
	for {
		select {
		case <-b.stop:
			return
		case v, ok := <-ch:
			if !ok {
				return
			}
			switch m := v.(type) {
			case *redis.Subscription:
				b.subscribed()
			case *redis.Message:
				var msg controlMsg
				if json.Unmarshal([]byte(m.Payload), &msg) != nil {
					continue
				}
				b.onControl(msg)
			}
		}
	}
}

func (b *Broker) onControl(m controlMsg) {
	h := b.handlers()
	switch m.Kind {
	case "cancel":
		if h.Cancel != nil {
			h.Cancel(m.SessionID, m.ResponseID)
		}
	case "unshare":
		if h.Unshare != nil {
			h.Unshare(m.SessionID, m.Token)
		}
		b.unshareFollower(m.SessionID, m.Token)
	case "revoke":
		if h.Revoke != nil && m.From != b.instance {
			h.Revoke(m.JTI)
		}
	case "reveal":
		if h.Reveal != nil && m.Reveal != nil && m.From != b.instance {
			h.Reveal(*m.Reveal)
		}
	case "next":
		if h.Next != nil && m.Next != nil && m.From != b.instance {
			h.Next(m.SessionID, *m.Next)
		}
	case "presence":
		if m.From != b.instance {
			select {
			case b.presenceC <- m.SessionID:
			default:
			}
		}
	}
}
