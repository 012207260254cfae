package actors

import (
	"context"
	"strings"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/hub"
)

// ctrlKind says what a control message asks of a session actor.
type ctrlKind int

const (
	ctrlSubscribe ctrlKind = iota
	ctrlUnsubscribe
	ctrlCancel
	ctrlUnshare
	ctrlSnapshot
	ctrlPresence
)

// ctrlMsg is a request from outside (hub, engine, api) to a session actor.
type ctrlMsg struct {
	kind       ctrlKind
	sub        *hub.Subscriber
	since      int64
	responseID string
	token      string
	ack        chan hub.SubscribeResult
	reply      chan *playground.Session
}

// sessionActor owns one comparison while it runs and for the replay
// window after it ends. Its goroutine (run) is started by Engine.Start and
// is the only writer of the session's state, seq counter, event log and
// subscriber set; everything else reaches it through its channels. It
// ends ReplayWindow after done, or at once when the engine closes; the
// engine's WaitGroup waits for it.
type sessionActor struct {
	e     *Engine
	sess  *playground.Session
	texts []strings.Builder
	// reasoning holds each response's visible thinking so far, and
	// reasoningNext the index its next reasoning event carries.
	reasoning     []strings.Builder
	reasoningNext []int
	seq           int64
	log           []playground.Frame
	subs          map[*hub.Subscriber]struct{}
	models        chan modelMsg
	ctrl          chan ctrlMsg
	cancels       []context.CancelCauseFunc
	ended         int
	exited        chan struct{}

	dirty     bool
	ckpt      chan checkpointJob
	ckptDone  chan struct{}
	presence  hub.PresenceThrottle
	drained   bool
	held      bool          // broadcast holds the writers until onModels wakes them
	modelsRun chan struct{} // closed when every model actor has returned
}

type checkpointJob struct {
	lastSeq   int64
	responses []playground.ResponseCheckpoint
}

func newSessionActor(e *Engine, s *playground.Session) *sessionActor {
	return &sessionActor{
		e: e, sess: s.Clone(), texts: make([]strings.Builder, len(s.Responses)),
		reasoning: make([]strings.Builder, len(s.Responses)), reasoningNext: make([]int, len(s.Responses)),
		seq: s.LastSeq, subs: map[*hub.Subscriber]struct{}{},
		models: make(chan modelMsg, 64), ctrl: make(chan ctrlMsg, 64),
		exited: make(chan struct{}), ckpt: make(chan checkpointJob, 1), ckptDone: make(chan struct{}),
		modelsRun: make(chan struct{}),
	}
}

// Subscribe implements hub.Source.
func (a *sessionActor) Subscribe(sub *hub.Subscriber, since int64) hub.SubscribeResult {
	ack := make(chan hub.SubscribeResult, 1)
	if !a.request(ctrlMsg{kind: ctrlSubscribe, sub: sub, since: since, ack: ack}) {
		return hub.Gone
	}
	select {
	case res := <-ack:
		return res
	case <-a.exited:
		return hub.Gone
	}
}

// Unsubscribe implements hub.Source.
func (a *sessionActor) Unsubscribe(sub *hub.Subscriber) {
	a.request(ctrlMsg{kind: ctrlUnsubscribe, sub: sub})
}

func (a *sessionActor) cancel(responseID string) {
	a.request(ctrlMsg{kind: ctrlCancel, responseID: responseID})
}

func (a *sessionActor) unshare(token string) { a.request(ctrlMsg{kind: ctrlUnshare, token: token}) }

// snapshot returns the session as it stands, text so far included.
func (a *sessionActor) snapshot() (*playground.Session, bool) {
	reply := make(chan *playground.Session, 1)
	if !a.request(ctrlMsg{kind: ctrlSnapshot, reply: reply}) {
		return nil, false
	}
	select {
	case s := <-reply:
		return s, true
	case <-a.exited:
		return nil, false
	}
}

func (a *sessionActor) request(m ctrlMsg) bool {
	select {
	case a.ctrl <- m:
		return true
	case <-a.exited:
		return false
	}
}

// run is the actor's goroutine body.
func (a *sessionActor) run(ctx context.Context) {
	defer a.e.wg.Done()
	defer close(a.exited)
	defer a.e.hub.Unregister(a.sess.ID, a)

	go a.checkpointWriter()
	ticker := time.NewTicker(a.e.checkpointEvery)
	for a.ended < len(a.sess.Responses) {
		select {
		case m := <-a.models:
			a.onModels(m)
		case c := <-a.ctrl:
			a.onCtrl(c)
		case <-ticker.C:
			a.checkpoint()
		case <-a.presenceC():
			a.sendPresence()
		case <-a.drainC():
			a.drained = true
			for _, c := range a.cancels {
				c(errShutdown)
			}
		}
	}
	ticker.Stop()
	<-a.modelsRun
	close(a.ckpt)
	<-a.ckptDone
	a.finishSession(ctx)
	a.e.sessionEnded()

	linger := time.NewTimer(a.e.replayWindow)
	defer linger.Stop()
	for {
		select {
		case c := <-a.ctrl:
			a.onCtrl(c)
		case <-linger.C:
			return
		case <-a.e.stop:
			return
		}
	}
}

func (a *sessionActor) drainC() <-chan struct{} {
	if a.drained {
		return nil
	}
	return a.e.drain
}

// onModels handles m and every model message already waiting behind it
// (up to the channel's capacity), holding the viewers' writers until all
// are queued: when the models outpace the viewers' sockets, each viewer
// gets what piled up in one write instead of one write an event.
func (a *sessionActor) onModels(m modelMsg) {
	a.held = true
	a.onModel(m)
drain:
	for range cap(a.models) {
		select {
		case m := <-a.models:
			a.onModel(m)
		default:
			break drain
		}
	}
	a.held = false
	hub.WakeAll(a.subs)
}

func (a *sessionActor) onModel(m modelMsg) {
	r := a.sess.Responses[m.idx]
	switch m.kind {
	case msgStatus:
		r.Status = m.status
		a.emit(func(seq int64) playground.Frame {
			return playground.StatusFrame(a.sess.ID, seq, playground.StatusEvent{
				ResponseID: r.ID, Model: r.Model, Status: m.status, Retrying: m.retrying})
		})
	case msgChunk:
		idx := r.NextIndex
		r.NextIndex++
		a.texts[m.idx].WriteString(m.text)
		a.emit(func(seq int64) playground.Frame {
			return playground.ChunkFrame(a.sess.ID, seq, playground.ChunkEvent{
				ResponseID: r.ID, Model: r.Model, Index: idx, Text: m.text})
		})
	case msgReasoning:
		idx := a.reasoningNext[m.idx]
		a.reasoningNext[m.idx]++
		a.reasoning[m.idx].WriteString(m.text)
		a.emit(func(seq int64) playground.Frame {
			return playground.ReasoningFrame(a.sess.ID, seq, playground.ReasoningEvent{
				ResponseID: r.ID, Model: r.Model, Index: idx, Text: m.text})
		})
	case msgEnd:
		f := m.final
		r.Status, r.Error, r.Metrics, r.Attempts, r.Refunded = f.Status, f.Error, f.Metrics, f.Attempts, f.Refunded
		a.emit(func(seq int64) playground.Frame {
			return playground.MetricsFrame(a.sess.ID, seq, playground.MetricsEvent{
				ResponseID: r.ID, Model: r.Model, Metrics: f.Metrics})
		})
		a.emit(func(seq int64) playground.Frame {
			return playground.StatusFrame(a.sess.ID, seq, playground.StatusEvent{
				ResponseID: r.ID, Model: r.Model, Status: f.Status, Error: f.Error})
		})
		a.ended++
	}
	a.dirty = true
}

// emit gives the next seq to an event, encodes it once, logs it and hands
// the same bytes to every subscriber.
func (a *sessionActor) emit(build func(seq int64) playground.Frame) {
	a.seq++
	f := build(a.seq)
	a.log = append(a.log, f)
	a.broadcast(f)
	a.e.publish(a.sess.ID, f)
}

func (a *sessionActor) broadcast(f playground.Frame) {
	for sub := range a.subs {
		var ok bool
		if a.held {
			ok = sub.Queue.PushHeld(f)
		} else {
			ok = sub.Queue.Push(f)
		}
		if !ok {
			// Too slow (or gone): drop it, never wait for it.
			delete(a.subs, sub)
			a.presence.Dirty = true
		}
	}
}

func (a *sessionActor) onCtrl(c ctrlMsg) {
	switch c.kind {
	case ctrlSubscribe:
		c.ack <- a.subscribe(c.sub, c.since)
	case ctrlUnsubscribe:
		if _, ok := a.subs[c.sub]; ok {
			delete(a.subs, c.sub)
			a.presence.Dirty = true
		}
	case ctrlCancel:
		for i, r := range a.sess.Responses {
			if (c.responseID == "" || c.responseID == r.ID) && !r.Ended() && a.cancels != nil {
				a.cancels[i](errCancelled)
			}
		}
	case ctrlUnshare:
		a.sess.Shared = false
		for sub := range a.subs {
			if sub.ShareToken != "" && sub.ShareToken == c.token {
				delete(a.subs, sub)
				sub.Queue.Push(playground.CutOffFrame(a.sess.ID))
				a.presence.Dirty = true
			}
		}
	case ctrlSnapshot:
		c.reply <- a.current()
	case ctrlPresence:
		a.presence.Dirty = a.sess.Status == playground.SessionRunning
	}
}

// subscribe answers a new viewer: "subscribed", then the events after
// since from the log (or a snapshot), then live events.
func (a *sessionActor) subscribe(sub *hub.Subscriber, since int64) hub.SubscribeResult {
	frames := make([]playground.Frame, 0, 4)
	if sub.Subscribed {
		frames = append(frames, playground.SubscribedFrame(a.sess.ID, a.seq))
	}
	ended := a.sess.Status != playground.SessionRunning
	first := a.seq - int64(len(a.log)) // seq before the first logged event
	switch {
	case since > 0 && since >= first && since <= a.seq:
		frames = append(frames, a.log[since-first:]...)
	case ended:
		frames = append(frames, playground.SnapshotFrame(a.current(), a.seq-1), a.log[len(a.log)-1])
	default:
		frames = append(frames, playground.SnapshotFrame(a.current(), a.seq))
	}
	sub.Queue.PushAll(frames)
	if ended {
		if sub.ShareToken != "" {
			// Kept only so that unsharing can still cut this viewer off.
			a.subs[sub] = struct{}{}
		}
		return hub.Ended
	}
	a.subs[sub] = struct{}{}
	a.presence.Dirty = true
	return hub.Live
}

// current is the session as of the latest seq, safe to hand out.
func (a *sessionActor) current() *playground.Session {
	s := a.sess.Clone()
	for i, r := range s.Responses {
		r.Text = a.texts[i].String()
		r.Reasoning = a.reasoning[i].String()
	}
	s.LastSeq = a.seq
	return s
}

func (a *sessionActor) presenceC() <-chan time.Time {
	if a.sess.Status != playground.SessionRunning {
		return nil
	}
	return a.presence.C()
}

func (a *sessionActor) sendPresence() {
	a.presence.Sent()
	n := a.e.viewers(a.sess.ID, len(a.subs))
	a.broadcast(playground.PresenceFrame(a.sess.ID, n))
}

// checkpoint hands the running state to the writer, replacing a job it
// has not started yet: only the latest state matters, and a slow database
// never holds up the stream.
func (a *sessionActor) checkpoint() {
	if !a.dirty {
		return
	}
	a.dirty = false
	job := checkpointJob{lastSeq: a.seq}
	for i, r := range a.sess.Responses {
		if r.Ended() {
			continue
		}
		job.responses = append(job.responses, playground.ResponseCheckpoint{
			ID: r.ID, Status: r.Status, Text: a.texts[i].String(), Reasoning: a.reasoning[i].String(), NextIndex: r.NextIndex, Attempts: r.Attempts})
	}
	select {
	case <-a.ckpt:
	default:
	}
	a.ckpt <- job
}

// checkpointWriter writes checkpoints off the streaming path. It is
// started by run and ends when run closes a.ckpt after the last model
// actor has ended; run waits for it through ckptDone.
//
// A job holds each response's whole text (strings the actor's builders
// share, not copies); the writer sends the store only what it has not
// written yet, from the offsets of its last write that succeeded. A write
// that failed is sent again, longer, from the same offsets by the next
// job, and replaces whatever of it the store may have kept.
func (a *sessionActor) checkpointWriter() {
	defer close(a.ckptDone)
	type offsets struct{ text, reasoning int }
	written := map[string]offsets{}
	for job := range a.ckpt {
		rs := make([]playground.ResponseCheckpoint, len(job.responses))
		for i, c := range job.responses {
			w := written[c.ID]
			c.TextFrom, c.Text = w.text, c.Text[w.text:]
			c.ReasoningFrom, c.Reasoning = w.reasoning, c.Reasoning[w.reasoning:]
			rs[i] = c
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := a.e.store.Checkpoint(ctx, a.sess.ID, job.lastSeq, rs)
		cancel()
		if err != nil {
			a.e.log.Warn("actors: checkpoint", "session", a.sess.ID, "err", err)
			continue
		}
		for _, c := range job.responses {
			written[c.ID] = offsets{len(c.Text), len(c.Reasoning)}
		}
	}
}

// finishSession commits the final status, then sends done: after done,
// GET /sessions/{id} is final on every instance. While the database is
// down, done is sent all the same and the engine's outbox commits the
// end, after the final rows it holds for this session, once it is back.
func (a *sessionActor) finishSession(ctx context.Context) {
	status := a.sess.FinalStatus()
	doneSeq := a.seq + 1
	dbctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	a.e.commitEnding(dbctx, pendingEnd{sessionID: a.sess.ID, status: status, lastSeq: doneSeq})
	a.sess.Status = status
	a.emit(func(seq int64) playground.Frame { return playground.DoneFrame(a.sess.ID, seq, status) })
	a.sess.LastSeq = a.seq
	// Nothing more will come (SSE streams end on done), but the viewers
	// stay known for the replay window so that unsharing still cuts off
	// those who came with the token.
}
