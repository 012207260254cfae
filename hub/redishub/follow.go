package redishub

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/hub"
)

// follower carries a session that runs on another instance to this
// instance's viewers: one per (instance, session), however many viewers.
// Its goroutine (run), started by Follow and waited for by Close, owns the
// viewer set and the last seq delivered; a reader goroutine it starts
// follows the stream with XREAD BLOCK and hands it batches. It ends when
// the session's done has been delivered, when no viewer has been left for
// FollowerIdle, or when the broker closes.
type follower struct {
	b       *Broker
	sid     string
	ctrl    chan followerReq
	batches chan []playground.Frame
	subs    map[*hub.Subscriber]int64 // the seq up to which each viewer has its events
	last    int64
	ended   bool
	// log holds the frames delivered since the follower started (after
	// seq logStart), so resumes and snapshots need Redis only for older
	// events, and a Redis outage cannot open a gap for a new viewer.
	log      []playground.Frame
	logStart int64

	ctx      context.Context
	cancel   context.CancelFunc
	exited   chan struct{}
	presence hub.PresenceThrottle
	poke     chan struct{}
}

type followerReq struct {
	unsubscribe *hub.Subscriber
	subscribe   *hub.Subscriber
	since       int64
	unshare     string
	ack         chan hub.SubscribeResult
}

// Follow implements hub.Broker: a follower for a session that Redis knows of.
func (b *Broker) Follow(ctx context.Context, sid string) (hub.Source, bool) {
	b.mu.Lock()
	if f := b.followers[sid]; f != nil {
		b.mu.Unlock()
		return f, true
	}
	b.mu.Unlock()
	n, err := b.rdb.Exists(ctx, b.ownerKey(sid), b.streamKey(sid)).Result()
	if err == nil && n == 0 {
		return nil, false // not in Redis: the database has the whole story
	}
	// Known to Redis, or Redis cannot say: follow, and fall back on the
	// database for what the stream cannot give.
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.stop:
		return nil, false
	default:
	}
	if f := b.followers[sid]; f != nil {
		return f, true
	}
	fctx, cancel := context.WithCancel(context.Background())
	f := &follower{b: b, sid: sid, ctrl: make(chan followerReq, 64), batches: make(chan []playground.Frame, 16),
		subs: map[*hub.Subscriber]int64{}, ctx: fctx, cancel: cancel, exited: make(chan struct{}), poke: make(chan struct{}, 1)}
	b.followers[sid] = f
	b.wg.Add(1)
	go f.run()
	return f, true
}

// Subscribe implements hub.Source.
func (f *follower) Subscribe(sub *hub.Subscriber, since int64) hub.SubscribeResult {
	ack := make(chan hub.SubscribeResult, 1)
	select {
	case f.ctrl <- followerReq{subscribe: sub, since: since, ack: ack}:
	case <-f.exited:
		return hub.Gone
	}
	select {
	case r := <-ack:
		return r
	case <-f.exited:
		return hub.Gone
	}
}

// Unsubscribe implements hub.Source.
func (f *follower) Unsubscribe(sub *hub.Subscriber) {
	select {
	case f.ctrl <- followerReq{unsubscribe: sub}:
	case <-f.exited:
	}
}

func (f *follower) close() {
	f.cancel()
	<-f.exited
}

func (b *Broker) unshareFollower(sid, token string) {
	b.mu.Lock()
	f := b.followers[sid]
	b.mu.Unlock()
	if f != nil {
		select {
		case f.ctrl <- followerReq{unshare: token}:
		case <-f.exited:
		}
	}
}

func (b *Broker) pokeFollower(sid string) {
	b.mu.Lock()
	f := b.followers[sid]
	b.mu.Unlock()
	if f != nil {
		select {
		case f.poke <- struct{}{}:
		default:
		}
	}
}

func (f *follower) run() {
	defer f.b.wg.Done()
	defer close(f.exited)
	defer func() {
		f.b.mu.Lock()
		if f.b.followers[f.sid] == f {
			delete(f.b.followers, f.sid)
		}
		f.b.mu.Unlock()
		f.b.Viewers(f.sid, 0)
	}()
	defer f.cancel()

	f.last = f.top()
	f.logStart = f.last
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		f.read(f.last)
	}()
	defer func() { f.cancel(); <-readerDone }()

	idle := time.NewTimer(f.b.idle)
	defer idle.Stop()
	for !f.ended {
		select {
		case req := <-f.ctrl:
			f.handle(req)
			if len(f.subs) == 0 {
				idle.Reset(f.b.idle)
			}
		case frames := <-f.batches:
			f.deliver(frames)
		case <-f.poke:
			f.presence.Dirty = true
		case <-f.presenceC():
			f.sendPresence()
		case <-idle.C:
			if len(f.subs) == 0 {
				return
			}
		case <-f.ctx.Done():
			return
		case <-f.b.stop:
			return
		}
	}
}

// top is the seq of the stream's last entry (0 when none or unknown).
func (f *follower) top() int64 {
	ctx, cancel := context.WithTimeout(f.ctx, time.Second)
	defer cancel()
	msgs, err := f.b.rdb.XRevRangeN(ctx, f.b.streamKey(f.sid), "+", "-", 1).Result()
	if err != nil || len(msgs) == 0 {
		return 0
	}
	return framesOf(f.sid, msgs)[0].Seq
}

// read follows the stream from seq on, reconnecting with back-off and
// always continuing after the last entry it handed over.
func (f *follower) read(from int64) {
	id := strconv.FormatInt(from, 10) + "-0"
	failures := 0
	for f.ctx.Err() == nil {
		res, err := f.b.rdb.XRead(f.ctx, &redis.XReadArgs{Streams: []string{f.b.streamKey(f.sid), id}, Count: 512, Block: 2 * time.Second}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			failures++
			if f.ctx.Err() != nil {
				return
			}
			t := time.NewTimer(retryDelay(failures))
			select {
			case <-t.C:
			case <-f.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		failures = 0
		for _, s := range res {
			if len(s.Messages) == 0 {
				continue
			}
			id = s.Messages[len(s.Messages)-1].ID
			select {
			case f.batches <- framesOf(f.sid, s.Messages):
			case <-f.ctx.Done():
				return
			}
		}
	}
}

func (f *follower) handle(req followerReq) {
	switch {
	case req.subscribe != nil:
		req.ack <- f.subscribe(req.subscribe, req.since)
	case req.unsubscribe != nil:
		if _, ok := f.subs[req.unsubscribe]; ok {
			delete(f.subs, req.unsubscribe)
			f.presence.Dirty = true
		}
	case req.unshare != "":
		for sub := range f.subs {
			if sub.ShareToken == req.unshare {
				delete(f.subs, sub)
				sub.Queue.Push(playground.CutOffFrame(f.sid))
				f.presence.Dirty = true
			}
		}
	}
}

// subscribe replays from the stream when it still holds every event after
// since, and otherwise sends a snapshot built from the database's last
// checkpoint plus the stream's tail.
func (f *follower) subscribe(sub *hub.Subscriber, since int64) hub.SubscribeResult {
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	var frames []playground.Frame
	base := since
	replayed := false
	if since > 0 && since >= f.logStart && since <= f.last {
		frames, replayed, base = f.log[since-f.logStart:], true, f.last
	} else if since > 0 {
		tail, err := f.b.Tail(ctx, f.sid, since)
		if err == nil && ((len(tail) > 0 && tail[0].Seq == since+1) || (len(tail) == 0 && since <= f.last)) {
			frames, replayed = tail, true
			if len(tail) > 0 {
				base = tail[len(tail)-1].Seq
			}
		}
	}
	if !replayed {
		s, err := f.restore(ctx)
		if err != nil {
			sub.Queue.PushAll([]playground.Frame{playground.ErrorFrame(f.sid, err)})
			return hub.Ended
		}
		frames, base = hub.StateFrames(s), s.LastSeq
	}
	if sub.Subscribed {
		frames = append([]playground.Frame{playground.SubscribedFrame(f.sid, max(f.last, base))}, frames...)
	}
	sub.Queue.PushAll(frames)
	if n := len(frames); n > 0 && frames[n-1].Type == playground.EventDone {
		return hub.Ended
	}
	f.subs[sub] = base
	f.presence.Dirty = true
	return hub.Live
}

// deliver fans a batch out, skipping what a viewer already has. A gap
// (events the stream never got, say while Redis was away and the owner
// died) is filled from the stream when it can be, and otherwise every
// viewer gets a snapshot from the database: the one honest way on.
func (f *follower) deliver(frames []playground.Frame) {
	if len(frames) > 0 && frames[0].Seq > f.last+1 && f.last > 0 {
		ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
		missing, err := f.b.Tail(ctx, f.sid, f.last)
		if err == nil && len(missing) > 0 && missing[0].Seq == f.last+1 {
			frames = missing
		} else {
			f.resync(ctx)
		}
		cancel()
	}
	// The writers are held until the whole batch is queued, so that each
	// viewer gets it in one write.
	wake := func() { hub.WakeAll(f.subs) }
	for _, fr := range frames {
		if fr.Seq <= f.last {
			continue
		}
		f.last = fr.Seq
		f.log = append(f.log, fr)
		for sub, base := range f.subs {
			if fr.Seq <= base {
				continue
			}
			if !sub.Queue.PushHeld(fr) {
				delete(f.subs, sub)
				f.presence.Dirty = true
			}
		}
		if fr.Type == playground.EventDone {
			wake()
			f.ended = true
			clear(f.subs)
		}
	}
	wake()
}

// resync gives every viewer a snapshot from the database plus the
// stream's tail, and goes on from there.
func (f *follower) resync(ctx context.Context) {
	s, err := f.restore(ctx)
	if err != nil {
		f.b.log.Warn("redis: resync a followed session", "session", f.sid, "err", err)
		return
	}
	frames := hub.StateFrames(s)
	for sub := range f.subs {
		if sub.Queue.PushAll(frames) {
			f.subs[sub] = s.LastSeq
		} else {
			delete(f.subs, sub)
		}
	}
	f.last = s.LastSeq
	f.log, f.logStart = nil, s.LastSeq // the snapshot is the new starting point
	if s.Status != playground.SessionRunning {
		f.ended = true
		clear(f.subs)
	}
}

// restore builds the session as far as anyone knows it: the database's
// last checkpoint, then the stream's tail, then what this follower
// delivered that neither has (Redis away). Chunks apply by index, so
// overlaps are skipped rather than doubled.
func (f *follower) restore(ctx context.Context) (*playground.Session, error) {
	s, err := f.b.store.FindSession(ctx, f.sid)
	if err != nil {
		return nil, err
	}
	tail, _ := f.b.Tail(ctx, f.sid, s.LastSeq)
	for _, fr := range tail {
		hub.Apply(s, fr)
	}
	for _, fr := range f.log {
		if fr.Seq > s.LastSeq {
			hub.Apply(s, fr)
		}
	}
	return s, nil
}

func (f *follower) presenceC() <-chan time.Time {
	if f.ended {
		return nil
	}
	return f.presence.C()
}

func (f *follower) sendPresence() {
	f.presence.Sent()
	n := f.b.Viewers(f.sid, len(f.subs))
	fr := playground.PresenceFrame(f.sid, n)
	for sub := range f.subs {
		if !sub.Queue.Push(fr) {
			delete(f.subs, sub)
		}
	}
}
