package redishub

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/hub"
	"github.com/playground-dev/playground/internal/backoff"
)

// follower carries a session that runs on another instance to this
// instance's viewers: one per (instance, session), however many viewers.
// Its goroutine (run), started by Follow and waited for by Close, owns the
// viewer set, whose log holds the frames delivered since the follower
// started, so resumes and snapshots need Redis only for older events, and
// a Redis outage cannot open a gap for a new viewer. A reader goroutine it starts
// follows the stream with XREAD BLOCK and hands it batches; run waits for
// it last, once the follower has left the broker. It ends when
// the session's done has been delivered, when no viewer has been left for
// FollowerIdle, or when the broker closes.
type follower struct {
	b       *Broker
	sid     string
	ctrl    chan followerReq
	batches chan []playground.Frame
	view    *hub.ViewerSet // made by run, which knows where the stream starts
	// logged is the session as its log tells it, up to its LastSeq (see
	// restore); nil until a snapshot needs it, or after a gap.
	logged *playground.Session
	// recovered is the seq after which the session's events came from a
	// recovery (see Broker.Recovered), when isRecovered.
	recovered   int64
	isRecovered bool

	ctx    context.Context
	cancel context.CancelFunc
	exited chan struct{}
	poke   chan struct{}
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
		ctx: fctx, cancel: cancel, exited: make(chan struct{}), poke: make(chan struct{}, 1)}
	b.followers[sid] = f
	b.wg.Add(1)
	go f.run()
	return f, true
}

// Subscribe implements hub.Source.
func (f *follower) Subscribe(sub *hub.Subscriber, since int64) hub.SubscribeResult {
	ack := make(chan hub.SubscribeResult, 1)
	res, _ := hub.Ask(f.ctrl, followerReq{subscribe: sub, since: since, ack: ack}, ack, f.exited)
	return res // hub.Gone, the zero value, when the follower has exited
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
	// The reader is waited for last, once this follower has left the
	// broker and said it exited: a viewer told to subscribe again gets a
	// new follower without waiting for the old one's read to return.
	readerDone := make(chan struct{})
	defer func() { <-readerDone }() // after f.cancel, below
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

	f.view = hub.NewViewerSet(f.sid, f.top(), f.b.Viewers)
	go func() {
		defer close(readerDone)
		f.read(f.view.Last())
	}()

	idle := time.NewTimer(f.b.idle)
	defer idle.Stop()
	for !f.view.Ended() {
		select {
		case req := <-f.ctrl:
			if f.ctx.Err() != nil {
				// Ending (a gap nobody fills): a viewer taken now would
				// hear nothing more; unanswered, it asks the hub again,
				// which starts a new follower once this one has gone.
				return
			}
			f.handle(req)
			if f.view.Len() == 0 {
				idle.Reset(f.b.idle)
			}
		case frames := <-f.batches:
			f.deliver(frames)
		case <-f.poke:
			f.view.PresenceChanged()
		case <-f.view.PresenceC():
			f.view.SendPresence()
		case <-idle.C:
			if f.view.Len() == 0 {
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

// readBlock is how long one XREAD of a follower waits for new entries.
// go-redis does not interrupt a blocking command when its context is
// cancelled (it only turns a context's deadline into the socket's), so
// this bounds how long a follower's reader outlives the follower, and so
// how long Broker.Close waits for it. The cost: a follower of a quiet
// session sends 2.5 empty XREADs a second.
const readBlock = 400 * time.Millisecond

// read follows the stream from seq on, reconnecting with back-off and
// always continuing after the last entry it handed over.
func (f *follower) read(from int64) {
	id := strconv.FormatInt(from, 10) + "-0"
	failures := 0
	for f.ctx.Err() == nil {
		res, err := f.b.rdb.XRead(f.ctx, &redis.XReadArgs{Streams: []string{f.b.streamKey(f.sid), id}, Count: 512, Block: readBlock}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			failures++
			if f.ctx.Err() != nil {
				return
			}
			if !backoff.Wait(f.ctx.Done(), failures) {
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
		f.view.Remove(req.unsubscribe)
	case req.unshare != "":
		f.view.Unshare(req.unshare)
	}
}

// subscribe replays from the stream when it still holds every event after
// since, and otherwise sends a snapshot of the session as its log tells
// it (see restore).
func (f *follower) subscribe(sub *hub.Subscriber, since int64) hub.SubscribeResult {
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	last := f.view.Last()
	frames, replayed := f.view.Replay(since)
	base := since
	if since > 0 && f.recoveredBefore(ctx, since) {
		replayed = false // what it has after the mark may have died with the owner
	} else if replayed {
		base = last
	} else if since > 0 && since <= last {
		// Older than this follower's log: the stream may still hold what
		// came after since, from since+1 on with no gap.
		tail, err := f.b.Tail(ctx, f.sid, since)
		if err == nil && len(tail) > 0 && tail[0].Seq == since+1 && contiguous(tail) && tail[len(tail)-1].Seq >= last {
			frames, replayed, base = tail, true, tail[len(tail)-1].Seq
		}
	}
	if !replayed {
		s, err := f.restore(ctx)
		if err == nil && s.LastSeq < last {
			err = errBehind
		}
		if err != nil {
			f.b.log.Warn("redis: snapshot of a followed session", "session", f.sid, "err", err)
			sub.Queue.PushAll([]playground.Frame{playground.ErrorFrame(f.sid, unavailable(err))})
			return hub.Ended
		}
		frames, base = hub.StateFrames(s), s.LastSeq
	}
	return f.view.Add(sub, frames, base)
}

// recoveredBefore reports whether the session was recovered from a seq
// below since: the viewer's events after that seq came from the dead
// owner, and may be none of the log's.
func (f *follower) recoveredBefore(ctx context.Context, since int64) bool {
	if !f.isRecovered {
		if n, err := f.b.rdb.Get(ctx, f.b.recoveredKey(f.sid)).Int64(); err == nil {
			f.recovered, f.isRecovered = n, true
		}
	}
	return f.isRecovered && since > f.recovered
}

// contiguous reports whether frames follow one another with no seq
// skipped.
func contiguous(frames []playground.Frame) bool {
	for i := 1; i < len(frames); i++ {
		if frames[i].Seq != frames[i-1].Seq+1 {
			return false
		}
	}
	return true
}

var (
	// errGap: neither the stream nor this follower holds every event
	// after the database's last checkpoint (Redis lost part of the log).
	errGap = errors.New("the event log has a gap after the last checkpoint")
	// errBehind: the snapshot would cover less than this follower has
	// already delivered.
	errBehind = errors.New("the stored state is behind the delivered events")
)

// unavailable is what a viewer is told when no snapshot can be built
// that matches the events it would get after it: a playground error
// passes as it is; anything else asks it to subscribe again shortly.
func unavailable(err error) error {
	var pe *playground.Error
	if errors.As(err, &pe) {
		return err
	}
	return playground.Errorf(playground.EUnavailable, "The session's live state cannot be read right now; subscribe again in a moment.")
}

// deliver fans a batch out, skipping what a viewer already has. The
// follower's log goes on from its last seq with no seq skipped, whatever
// the stream holds: a gap at the start of a batch, inside it, or before
// the first event of a follower that started on an empty stream (which
// then got only a later part of the log) would hand viewers the events
// after it as if nothing were missing, and one given a snapshot beyond
// the follower's last seq (read from the stream before the reader got
// there) would not see it at all. A gap (events the stream never got, say
// while Redis was away and the owner died) is filled from the stream when
// it can be, and otherwise every viewer gets a snapshot from the
// database: the one honest way on. When even that fails, the viewers are
// told to subscribe again and the follower ends.
func (f *follower) deliver(frames []playground.Frame) {
	if !f.follows(frames) {
		ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
		missing, err := f.b.Tail(ctx, f.sid, f.view.Last())
		if err == nil && len(missing) > 0 && f.follows(missing) {
			frames = missing
		} else if err = f.resync(ctx); err == nil && !f.follows(frames) {
			// The snapshot does not reach the batch's gap either (Redis
			// lost the stream after the batch was read).
			err = errGap
		}
		cancel()
		if err != nil {
			f.b.log.Warn("redis: resync a followed session", "session", f.sid, "err", err)
			// This follower's log now has a gap that nothing fills: its
			// viewers are told to subscribe again, and it ends, so that
			// they start from a follower that has no gap.
			f.view.DropAll(playground.ErrorFrame(f.sid, unavailable(err)))
			f.cancel()
			return
		}
	}
	// The writers are held until the whole batch is queued, so that each
	// viewer gets it in one write.
	f.view.Hold()
	for _, fr := range frames {
		f.view.Publish(fr)
	}
	f.view.Release()
}

// follows reports whether frames, past the ones this follower's log
// already has, go on from its last seq with no seq skipped.
func (f *follower) follows(frames []playground.Frame) bool {
	next := f.view.Last() + 1
	for _, fr := range frames {
		switch {
		case fr.Seq < next:
		case fr.Seq == next:
			next++
		default:
			return false
		}
	}
	return true
}

// resync gives every viewer a snapshot from the database plus the
// stream's tail, and goes on from there; it changes nothing when no
// snapshot can be built.
func (f *follower) resync(ctx context.Context) error {
	// The stream itself has the gap: the state kept so far cannot be
	// brought across it, and only the database's can.
	f.logged = nil
	s, err := f.restore(ctx)
	if err != nil {
		return err
	}
	f.view.Reset(hub.StateFrames(s), s.LastSeq) // the snapshot is the new starting point
	return nil
}

// restore builds the session as its event log tells it, so that the
// snapshot made of it, at its LastSeq, holds every event up to that seq
// and none after it. The stream, never trimmed while a session runs,
// normally holds the whole log: the answers are rebuilt from it once
// (logged), brought forward from this follower's own log at each later
// snapshot, and laid over the freshly stored session for the rest
// (hub.Overlay). The database's rows cannot stand in for the log: a
// response's final row is committed before the events that end it, and a
// checkpoint may land between the reads of one session. Only when the
// stream has lost its start (Redis lost its data) does the database's
// last checkpoint stand in for it, followed by the stream's tail and what
// this follower delivered, with no gap.
func (f *follower) restore(ctx context.Context) (*playground.Session, error) {
	s, err := f.b.store.FindSession(ctx, f.sid)
	if err != nil {
		return nil, err
	}
	var tailErr error
	if f.logged == nil || !hub.Extend(f.logged, f.view.Log()) || f.logged.LastSeq < f.view.Last() {
		f.logged = nil
		all, err := f.b.Tail(ctx, f.sid, 0)
		if err != nil {
			all, tailErr = nil, err
		} else if l, ok := hub.FromLog(s, all); ok && hub.Extend(l, f.view.Log()) && l.LastSeq >= f.view.Last() {
			f.logged = l
		}
		if f.logged == nil && len(all) > 0 && !hub.Extend(s, all) {
			return nil, errGap
		}
	}
	if f.logged != nil {
		return hub.Overlay(s, f.logged), nil
	}
	if tailErr != nil && s.Status == playground.SessionRunning {
		// A response's final row holds text whose chunks this follower
		// may not have delivered yet: a snapshot of it at this follower's
		// seq, followed by those chunks, would show them twice. Without
		// the log, only an ended session's rows are safe to show.
		return nil, fmt.Errorf("read the event log: %w", tailErr)
	}
	if !hub.Extend(s, f.view.Log()) {
		return nil, errGap
	}
	return s, nil
}
