// Package actors runs comparisons. A session actor (one goroutine per
// running comparison) owns the session's seq, event log and viewers; it
// spawns one model actor per model, which streams from the provider under
// the retry and timeout Policy and the per-provider Breakers, and reports
// back over a channel. Engine starts them, routes cancels to them, and
// shuts them down.
package actors

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/hub"
)

// Publisher carries a locally owned session's frames to other instances
// (the Redis broker); nil means one instance.
type Publisher interface {
	// Own claims a session that starts here, before anyone can look for it.
	Own(ctx context.Context, sessionID string)
	// Publish hands over one logged frame; it must never block.
	Publish(sessionID string, f playground.Frame)
}

// Remote reaches sessions that run on other instances.
type Remote interface {
	Cancel(ctx context.Context, sessionID, responseID string) error
	Unshare(ctx context.Context, sessionID, token string) error
}

// Options configure an Engine.
type Options struct {
	Hub      *hub.Hub
	Store    playground.SessionService
	Catalog  playground.Catalog
	Breakers *Breakers
	Policy   Policy
	Logger   *slog.Logger
	// Publisher, when set, receives every event of sessions owned here.
	Publisher Publisher
	// Remote, when set, carries cancels and unshares to other instances.
	Remote Remote
	// Tail, when set, returns a session's logged frames after a seq (the
	// Redis stream), so that recovery keeps text newer than the last
	// checkpoint.
	Tail func(ctx context.Context, sessionID string, after int64) ([]playground.Frame, error)
	// Viewers returns the viewer count across instances given the local
	// one (nil: the local count).
	Viewers func(sessionID string, local int) int
	// ReplayWindow is how long an ended session's log stays replayable
	// (at least 5 minutes by the contract).
	ReplayWindow time.Duration
	// CheckpointEvery is how often running text is saved (≤ 2 s).
	CheckpointEvery time.Duration
	// OnResponseEnd is told how each response ended (metrics).
	OnResponseEnd func(provider, status, errCode string)
	Now           func() time.Time
}

// Engine implements playground.Runner on this instance.
type Engine struct {
	hub             *hub.Hub
	store           playground.SessionService
	catalog         playground.Catalog
	breakers        *Breakers
	policy          Policy
	log             *slog.Logger
	publisher       Publisher
	remote          Remote
	tail            func(ctx context.Context, sessionID string, after int64) ([]playground.Frame, error)
	viewersFn       func(string, int) int
	replayWindow    time.Duration
	checkpointEvery time.Duration
	onEnd           func(provider, status, errCode string)
	now             func() time.Time

	mu        sync.Mutex
	closing   bool
	running   int
	idle      chan struct{} // closed when running drops to 0 while closing
	drain     chan struct{} // closed when running sessions must stop now
	drainOnce sync.Once
	stop      chan struct{} // closed when lingering actors must exit
	stopOnce  sync.Once
	wg        sync.WaitGroup
	outbox    outbox // endings to commit once the database answers again
}

var _ playground.Runner = (*Engine)(nil)

// New returns an engine.
func New(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Policy.MaxAttempts == 0 {
		opts.Policy = DefaultPolicy()
	}
	if opts.ReplayWindow <= 0 {
		opts.ReplayWindow = 5*time.Minute + 30*time.Second
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Viewers == nil {
		opts.Viewers = func(_ string, local int) int { return local }
	}
	e := &Engine{
		hub: opts.Hub, store: opts.Store, catalog: opts.Catalog, breakers: opts.Breakers,
		policy: opts.Policy, log: opts.Logger, publisher: opts.Publisher, remote: opts.Remote, tail: opts.Tail, viewersFn: opts.Viewers,
		replayWindow: opts.ReplayWindow, checkpointEvery: opts.CheckpointEvery, onEnd: opts.OnResponseEnd,
		now: opts.Now, idle: make(chan struct{}), drain: make(chan struct{}), stop: make(chan struct{}),
	}
	e.outbox.e = e
	return e
}

// Start implements playground.Runner.
func (e *Engine) Start(s *playground.Session) error {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return playground.Errorf(playground.EUnavailable, "The server is shutting down; try again in a moment.")
	}
	e.running++
	e.wg.Add(1)
	e.mu.Unlock()

	a := newSessionActor(e, s)
	ctx := context.Background()
	var models sync.WaitGroup
	for i, r := range s.Responses {
		mctx, cancel := context.WithCancelCause(ctx)
		a.cancels = append(a.cancels, cancel)
		m := &modelActor{
			idx: i, sessionID: s.ID, resp: playground.Response{ID: r.ID, SessionID: s.ID, Model: r.Model, Rating: r.Rating},
			policy: e.policy, breakers: e.breakers, commit: e.commitEnding, out: a.models, now: e.now, log: e.log,
			// Each column runs with its own params and system prompt.
			req: playground.ProviderRequest{Prompt: s.Prompt, Params: r.Params, History: r.History},
		}
		if r.System != nil {
			m.req.System = *r.System
		}
		model, provider, err := e.catalog.Lookup(r.Model)
		if err != nil {
			pname, _, _ := playground.SplitModelID(r.Model)
			provider = unavailableProvider{name: pname, err: err}
		}
		_, m.req.Model, _ = playground.SplitModelID(r.Model)
		m.provider, m.pricing = provider, model.Pricing
		if e.onEnd != nil {
			name := provider.Name()
			m.onEnd = func(status, code string) { e.onEnd(name, status, code) }
		}
		models.Add(1)
		go func() {
			defer models.Done()
			defer cancel(nil)
			m.run(mctx)
		}()
	}
	go func() { models.Wait(); close(a.modelsRun) }()
	if e.publisher != nil {
		e.publisher.Own(context.Background(), s.ID)
	}
	e.hub.Register(s.ID, a)
	go a.run(ctx)
	return nil
}

func (e *Engine) sessionEnded() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.running--
	if e.closing && e.running == 0 {
		close(e.idle)
	}
}

func (e *Engine) actor(sessionID string) (*sessionActor, bool) {
	src, ok := e.hub.Lookup(sessionID)
	if !ok {
		return nil, false
	}
	a, ok := src.(*sessionActor)
	return a, ok
}

// Cancel implements playground.Runner.
func (e *Engine) Cancel(ctx context.Context, sessionID, responseID string) error {
	if a, ok := e.actor(sessionID); ok {
		a.cancel(responseID)
		return nil
	}
	if e.remote != nil {
		return e.remote.Cancel(ctx, sessionID, responseID)
	}
	return nil
}

// CancelLocal cancels a session only if it runs on this instance (for
// cancels that arrive from other instances).
func (e *Engine) CancelLocal(sessionID, responseID string) {
	if a, ok := e.actor(sessionID); ok {
		a.cancel(responseID)
	}
}

// UnshareLocal cuts off share viewers of a session running here.
func (e *Engine) UnshareLocal(sessionID, token string) {
	if a, ok := e.actor(sessionID); ok {
		a.unshare(token)
	}
}

// PresenceChanged makes a session running here send its viewer count again.
func (e *Engine) PresenceChanged(sessionID string) {
	if a, ok := e.actor(sessionID); ok {
		a.request(ctrlMsg{kind: ctrlPresence})
	}
}

// Live implements playground.Runner.
func (e *Engine) Live(sessionID string) (*playground.Session, bool) {
	if a, ok := e.actor(sessionID); ok {
		return a.snapshot()
	}
	return nil, false
}

// Unshare implements playground.Runner.
func (e *Engine) Unshare(ctx context.Context, sessionID, token string) error {
	e.UnshareLocal(sessionID, token)
	if e.remote != nil {
		return e.remote.Unshare(ctx, sessionID, token)
	}
	return nil
}

func (e *Engine) publish(sessionID string, f playground.Frame) {
	if e.publisher != nil {
		e.publisher.Publish(sessionID, f)
	}
}

func (e *Engine) viewers(sessionID string, local int) int { return e.viewersFn(sessionID, local) }

// Shutdown stops accepting comparisons, lets the running ones finish until
// ctx ends, then ends what still runs as interrupted (keeping its text),
// and waits for every actor to exit.
func (e *Engine) Shutdown(ctx context.Context) {
	e.mu.Lock()
	if !e.closing {
		e.closing = true
		if e.running == 0 {
			close(e.idle)
		}
	}
	e.mu.Unlock()
	select {
	case <-e.idle:
	case <-ctx.Done():
		e.drainOnce.Do(func() { close(e.drain) })
		<-e.idle
	}
	e.stopOnce.Do(func() { close(e.stop) })
	e.wg.Wait()
}

// unavailableProvider stands in for a model that can no longer be served
// (it left the catalogue between the session's creation and its start).
type unavailableProvider struct {
	name string
	err  error
}

func (p unavailableProvider) Name() string { return p.name }

func (p unavailableProvider) Stream(context.Context, playground.ProviderRequest) (playground.Stream, error) {
	return nil, &playground.ProviderError{Code: playground.RErrProviderUnavailable,
		Message: "This model cannot be served right now.", Err: p.err}
}
