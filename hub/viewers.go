package hub

import (
	"time"

	"github.com/playground-dev/playground"
)

// ViewerSet is the audience of one session as the goroutine that feeds
// it sees it: the session's actor on the instance that runs it, or a
// broker's follower on an instance that watches it from afar. It holds
// each viewer with the seq up to which it has its events, the log of
// events it can replay from, the presence throttle and the drop policy,
// so that a kind of event, logged or not, is added in one place.
//
// It belongs to that one goroutine: no method takes a lock or may be
// called from another goroutine. A delivery costs one push per viewer and
// allocates nothing.
type ViewerSet struct {
	sid   string
	count func(sessionID string, local int) int
	subs  map[*Subscriber]place // each viewer's queue and the seq up to which it has its events
	// log holds the events after seq logStart, up to last.
	log      []playground.Frame
	logStart int64
	last     int64
	ended    bool // done has been published
	held     bool
	// pending are the events published since Hold, delivered at Release:
	// each viewer is then visited once, its events queued and its writer
	// woken in one go. heldPushed: something else reached the viewers
	// during the hold (and pending with it, see flushHeld), queued without
	// waking them: Release wakes them all.
	pending    []playground.Frame
	heldPushed bool
	parts      []viewerAt // deliverAll's list of a large audience, reused
	presence   presenceThrottle
}

// place is a viewer as the set keeps it: its queue (Subscriber.Queue,
// kept here so that a delivery need not visit the Subscriber) and the seq
// up to which it has its events.
type place struct {
	q    *Queue
	base int64
}

// NewViewerSet returns an empty audience for a session whose events up
// to seq last are known and not logged here. count returns the number of
// viewers to announce, given this set's own (across the instances, when
// a broker counts them).
func NewViewerSet(sessionID string, last int64, count func(sessionID string, local int) int) *ViewerSet {
	return &ViewerSet{sid: sessionID, count: count, subs: map[*Subscriber]place{}, logStart: last, last: last}
}

// Last is the seq of the latest event published.
func (v *ViewerSet) Last() int64 { return v.last }

// Ended reports whether done has been published.
func (v *ViewerSet) Ended() bool { return v.ended }

// Len is how many viewers the set holds.
func (v *ViewerSet) Len() int { return len(v.subs) }

// Log is every event published since the set started (or since Reset),
// in order. The caller must not change it.
func (v *ViewerSet) Log() []playground.Frame { return v.log }

// Replay returns the logged events after since, when the log holds every
// one of them; a viewer that has everything gets an empty replay.
func (v *ViewerSet) Replay(since int64) ([]playground.Frame, bool) {
	if since <= 0 || since < v.logStart || since > v.last {
		return nil, false
	}
	return v.log[since-v.logStart:], true
}

// Add takes a viewer: it pushes the "subscribed" frame when the viewer
// asks for one, then frames (its replay or snapshot), which bring the
// viewer up to seq base. When the session has ended (the set has seen
// done, or frames end with it), nothing follows and Add returns Ended;
// a viewer who came with a share token is still kept after a done the
// set has seen, so that unsharing can cut it off during the replay
// window. Otherwise the viewer gets every event after base, and Add
// returns Live.
func (v *ViewerSet) Add(sub *Subscriber, frames []playground.Frame, base int64) SubscribeResult {
	v.flushHeld()
	if sub.Subscribed {
		out := make([]playground.Frame, 0, len(frames)+1)
		out = append(out, playground.SubscribedFrame(v.sid, max(v.last, base)))
		frames = append(out, frames...)
	}
	sub.Queue.PushAll(frames)
	if v.ended || (len(frames) > 0 && frames[len(frames)-1].Type == playground.EventDone) {
		if v.ended && sub.ShareToken != "" {
			v.subs[sub] = place{sub.Queue, base}
		}
		return Ended
	}
	v.subs[sub] = place{sub.Queue, base}
	v.presence.Dirty = true
	return Live
}

// Remove forgets a viewer who left; removing one twice is harmless.
func (v *ViewerSet) Remove(sub *Subscriber) {
	v.flushHeld()
	if _, ok := v.subs[sub]; ok {
		delete(v.subs, sub)
		v.presence.Dirty = true
	}
}

// Unshare cuts off the viewers who came with token: each gets the
// cut-off frame and nothing more.
func (v *ViewerSet) Unshare(token string) {
	if token == "" {
		return
	}
	v.flushHeld()
	for sub := range v.subs {
		if sub.ShareToken == token {
			v.drop(sub)
			sub.Queue.Push(playground.CutOffFrame(v.sid))
		}
	}
}

// Hold holds the viewers' writers until Release: a producer with several
// events at once queues them all, and each viewer gets them in one write.
func (v *ViewerSet) Hold() { v.held = true }

// Release delivers what was published since Hold: each viewer gets its
// events queued and its writer woken in one visit, the same as one push
// each without a hold, and a large audience is served from one goroutine
// per core (see deliverAll).
func (v *ViewerSet) Release() {
	if v.heldPushed {
		v.heldPushed = false
		v.pushPending() // still held: queued without waking
		v.held = false
		wakeAll(v.subs)
		return
	}
	v.held = false
	if len(v.pending) == 0 {
		return
	}
	for _, sub := range deliverAll(v.subs, v.pending, &v.parts) {
		v.drop(sub)
	}
	clear(v.pending) // the log keeps them; the set keeps no second reference
	v.pending = v.pending[:0]
}

// flushHeld queues what is pending for every viewer, without waking the
// writers, before anything else reaches the viewers during a hold (a
// presence, a new viewer's replay), so that each viewer's events stay in
// seq order; Release then wakes them all.
func (v *ViewerSet) flushHeld() {
	if v.held && len(v.pending) > 0 {
		v.pushPending()
	}
}

func (v *ViewerSet) pushPending() {
	for _, f := range v.pending {
		for sub, at := range v.subs {
			if f.Seq > at.base {
				v.push(sub, f)
			}
		}
	}
	clear(v.pending)
	v.pending = v.pending[:0]
}

// Publish logs an event, the next after Last (one at or below Last is
// one the set has, and is skipped), and pushes it to every viewer who
// does not have it yet. After done nothing more is published; the
// viewers stay known for unsharing.
func (v *ViewerSet) Publish(f playground.Frame) {
	if f.Seq <= v.last || v.ended {
		return
	}
	v.last = f.Seq
	v.log = append(v.log, f)
	if f.Type == playground.EventDone {
		v.ended = true
	}
	if v.held {
		v.pending = append(v.pending, f)
		return
	}
	for sub, at := range v.subs {
		if f.Seq > at.base {
			v.push(sub, f)
		}
	}
}

// Send pushes an event that is not logged (presence, and the like) to
// every viewer.
func (v *ViewerSet) Send(f playground.Frame) {
	v.flushHeld()
	for sub := range v.subs {
		v.push(sub, f)
	}
}

// push hands f to one viewer and drops the viewer if its queue refuses:
// too slow (or gone), and never waited for.
func (v *ViewerSet) push(sub *Subscriber, f playground.Frame) {
	var ok bool
	if v.held {
		ok = sub.Queue.PushHeld(f)
		v.heldPushed = true // Release wakes the writers
	} else {
		ok = sub.Queue.Push(f)
	}
	if !ok {
		v.drop(sub)
	}
}

// DropAll gives every viewer f (an error that ends its subscription)
// and forgets them all.
func (v *ViewerSet) DropAll(f playground.Frame) {
	v.flushHeld()
	for sub := range v.subs {
		sub.Queue.Push(f)
		v.drop(sub)
	}
}

func (v *ViewerSet) drop(sub *Subscriber) {
	delete(v.subs, sub)
	v.presence.Dirty = true
}

// Reset gives every viewer frames (a snapshot of the session at seq
// base, and done if it has ended) instead of the events between Last and
// base, which nobody can replay: the set goes on from base with an empty
// log.
func (v *ViewerSet) Reset(frames []playground.Frame, base int64) {
	v.flushHeld()
	for sub := range v.subs {
		if sub.Queue.PushAll(frames) {
			v.subs[sub] = place{sub.Queue, base}
		} else {
			v.drop(sub)
		}
	}
	v.last, v.log, v.logStart = base, nil, base
	if n := len(frames); n > 0 && frames[n-1].Type == playground.EventDone {
		v.ended = true
	}
}

// PresenceChanged notes that the viewer count may have changed elsewhere
// (another instance's viewers): a presence event follows, throttled.
func (v *ViewerSet) PresenceChanged() {
	if !v.ended {
		v.presence.Dirty = true
	}
}

// PresenceC fires when a presence event is due (call SendPresence then);
// it is nil when none is, or once the session has ended.
func (v *ViewerSet) PresenceC() <-chan time.Time {
	if v.ended {
		return nil
	}
	return v.presence.C()
}

// SendPresence sends every viewer the viewer count.
func (v *ViewerSet) SendPresence() {
	v.presence.Sent()
	v.Send(playground.PresenceFrame(v.sid, v.count(v.sid, len(v.subs))))
}
