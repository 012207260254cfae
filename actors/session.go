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
	ctrlReveal
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
// is the only writer of the session's state and of its viewer set (seq
// counter, event log, viewers); everything else reaches it through its
// channels. It
// ends ReplayWindow after done, or at once when the engine closes; the
// engine's WaitGroup waits for it.
type sessionActor struct {
	e     *Engine
	sess  *playground.Session
	owner string // sess.UserID, which never changes: read by any goroutine
	texts []strings.Builder
	// reasoning holds each response's visible thinking so far, and
	// reasoningNext the index its next reasoning event carries.
	reasoning     []strings.Builder
	reasoningNext []int
	view          *hub.ViewerSet // its Last is the session's seq
	models        chan modelMsg
	ctrl          chan ctrlMsg
	cancels       []context.CancelCauseFunc
	ended         int
	exited        chan struct{}

	dirty     bool
	ckpt      chan checkpointJob
	ckptDone  chan struct{}
	drained   bool
	modelsRun chan struct{} // closed when every model actor has returned
}

type checkpointJob struct {
	lastSeq   int64
	responses []playground.ResponseCheckpoint
}

func newSessionActor(e *Engine, s *playground.Session) *sessionActor {
	return &sessionActor{
		e: e, sess: s.Clone(), owner: s.UserID, texts: make([]strings.Builder, len(s.Responses)),
		reasoning: make([]strings.Builder, len(s.Responses)), reasoningNext: make([]int, len(s.Responses)),
		view:   hub.NewViewerSet(s.ID, s.LastSeq, e.viewers),
		models: make(chan modelMsg, 64), ctrl: make(chan ctrlMsg, 64),
		exited: make(chan struct{}), ckpt: make(chan checkpointJob, 1), ckptDone: make(chan struct{}),
		modelsRun: make(chan struct{}),
	}
}

// Subscribe implements hub.Source.
func (a *sessionActor) Subscribe(sub *hub.Subscriber, since int64) hub.SubscribeResult {
	ack := make(chan hub.SubscribeResult, 1)
	res, _ := hub.Ask(a.ctrl, ctrlMsg{kind: ctrlSubscribe, sub: sub, since: since, ack: ack}, ack, a.exited)
	return res // hub.Gone, the zero value, when the actor has exited
}

// OwnerID implements hub.Owned.
func (a *sessionActor) OwnerID() string { return a.owner }

// A session's owner subscribes without a database read (api's
// sessionAccess) because its actor is a hub.Owned.
var _ hub.Owned = (*sessionActor)(nil)

// Unsubscribe implements hub.Source.
func (a *sessionActor) Unsubscribe(sub *hub.Subscriber) {
	a.request(ctrlMsg{kind: ctrlUnsubscribe, sub: sub})
}

func (a *sessionActor) cancel(responseID string) {
	a.request(ctrlMsg{kind: ctrlCancel, responseID: responseID})
}

func (a *sessionActor) unshare(token string) { a.request(ctrlMsg{kind: ctrlUnshare, token: token}) }

// Reveal implements hub.Revealer: the session's models are no longer
// hidden.
func (a *sessionActor) Reveal() { a.request(ctrlMsg{kind: ctrlReveal}) }

// snapshot returns the session as it stands, text so far included.
func (a *sessionActor) snapshot() (*playground.Session, bool) {
	reply := make(chan *playground.Session, 1)
	return hub.Ask(a.ctrl, ctrlMsg{kind: ctrlSnapshot, reply: reply}, reply, a.exited)
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
		case <-a.view.PresenceC():
			a.view.SendPresence()
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
	a.view.Hold()
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
	a.view.Release()
}

func (a *sessionActor) onModel(m modelMsg) {
	r := a.sess.Responses[m.idx]
	// Events are encoded once for every viewer: a hidden session's are
	// encoded from the redacted response (no model, cost or provider).
	v := a.sess.ViewOf(r)
	switch m.kind {
	case msgStatus:
		r.Status = m.status
		a.emit(func(seq int64) playground.Frame {
			return playground.StatusFrame(a.sess.ID, seq, playground.StatusEvent{
				ResponseID: r.ID, Model: playground.ModelRef(v.Model), Status: m.status, Retrying: m.retrying})
		})
	case msgChunk:
		idx := r.NextIndex
		r.NextIndex++
		a.texts[m.idx].WriteString(m.text)
		a.emit(func(seq int64) playground.Frame {
			return playground.ChunkFrame(a.sess.ID, seq, playground.ChunkEvent{
				ResponseID: r.ID, Model: playground.ModelRef(v.Model), Index: idx, Text: m.text})
		})
	case msgReasoning:
		idx := a.reasoningNext[m.idx]
		a.reasoningNext[m.idx]++
		a.reasoning[m.idx].WriteString(m.text)
		a.emit(func(seq int64) playground.Frame {
			return playground.ReasoningFrame(a.sess.ID, seq, playground.ReasoningEvent{
				ResponseID: r.ID, Model: playground.ModelRef(v.Model), Index: idx, Text: m.text})
		})
	case msgEnd:
		f := m.final
		r.Status, r.Error, r.Metrics, r.Attempts, r.Refunded = f.Status, f.Error, f.Metrics, f.Attempts, f.Refunded
		v = a.sess.ViewOf(r)
		a.emit(func(seq int64) playground.Frame {
			return playground.MetricsFrame(a.sess.ID, seq, playground.MetricsEvent{
				ResponseID: r.ID, Model: playground.ModelRef(v.Model), Metrics: v.Metrics})
		})
		a.emit(func(seq int64) playground.Frame {
			return playground.StatusFrame(a.sess.ID, seq, playground.StatusEvent{
				ResponseID: r.ID, Model: playground.ModelRef(v.Model), Status: f.Status, Error: v.Error})
		})
		a.ended++
	}
	a.dirty = true
}

// emit gives the next seq to an event, encodes it once, logs it and hands
// the same bytes to every viewer and to the broker.
func (a *sessionActor) emit(build func(seq int64) playground.Frame) {
	f := build(a.view.Last() + 1)
	a.view.Publish(f)
	a.e.publish(a.sess.ID, f)
}

func (a *sessionActor) onCtrl(c ctrlMsg) {
	switch c.kind {
	case ctrlSubscribe:
		c.ack <- a.subscribe(c.sub, c.since)
	case ctrlUnsubscribe:
		a.view.Remove(c.sub)
	case ctrlCancel:
		for i, r := range a.sess.Responses {
			if (c.responseID == "" || c.responseID == r.ID) && !r.Ended() && a.cancels != nil {
				a.cancels[i](errCancelled)
			}
		}
	case ctrlUnshare:
		a.sess.Shared = false
		a.view.Unshare(c.token)
	case ctrlSnapshot:
		c.reply <- a.current()
	case ctrlPresence:
		a.view.PresenceChanged()
	case ctrlReveal:
		// Later events and snapshots show the models; the reveal event
		// itself reaches the viewers through the hub.
		a.sess.Revealed = true
	}
}

// subscribe answers a new viewer: "subscribed", then the events after
// since from the log (or a snapshot), then live events.
func (a *sessionActor) subscribe(sub *hub.Subscriber, since int64) hub.SubscribeResult {
	seq := a.view.Last()
	frames, ok := a.view.Replay(since)
	switch {
	case ok:
	case a.view.Ended():
		log := a.view.Log()
		frames = []playground.Frame{playground.SnapshotFrame(a.current(), seq-1), log[len(log)-1]}
	default:
		frames = []playground.Frame{playground.SnapshotFrame(a.current(), seq)}
	}
	return a.view.Add(sub, frames, seq)
}

// current is the session as of the latest seq, safe to hand out.
func (a *sessionActor) current() *playground.Session {
	s := a.sess.Clone()
	for i, r := range s.Responses {
		r.Text = a.texts[i].String()
		r.Reasoning = a.reasoning[i].String()
	}
	s.LastSeq = a.view.Last()
	return s
}

// checkpoint hands the running state to the writer, replacing a job it
// has not started yet: only the latest state matters, and a slow database
// never holds up the stream.
func (a *sessionActor) checkpoint() {
	if !a.dirty {
		return
	}
	a.dirty = false
	job := checkpointJob{lastSeq: a.view.Last()}
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
	doneSeq := a.view.Last() + 1
	dbctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	a.e.commitEnding(dbctx, pendingEnd{sessionID: a.sess.ID, status: status, lastSeq: doneSeq})
	a.sess.Status = status
	a.emit(func(seq int64) playground.Frame { return playground.DoneFrame(a.sess.ID, seq, status) })
	a.sess.LastSeq = a.view.Last()
	// Nothing more will come (SSE streams end on done), but the viewers
	// stay known for the replay window so that unsharing still cuts off
	// those who came with the token.
}
