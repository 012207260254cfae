package actors

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db"
	"github.com/playground-dev/playground/db/dbtest"
	"github.com/playground-dev/playground/hub"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("database/sql.(*DB).connectionOpener"),
		// OpenCensus (a dependency of the Gemini SDK) starts a worker in init.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

// step is one thing a scripted upstream does on Recv.
type step struct {
	text      string
	reasoning string
	err       error
	wait      time.Duration
	hold      func() <-chan struct{} // waited on before the step, when set
	usage     *playground.Usage
}

// script answers one attempt: an error before the stream, or its steps.
type script struct {
	err   error
	wait  time.Duration // before answering at all
	steps []step
}

// fakeProvider plays scripts, one per attempt (the last repeats).
type fakeProvider struct {
	name     string
	mu       sync.Mutex
	scripts  map[string][]script
	attempts map[string]int
}

func (p *fakeProvider) Name() string { return p.name }

func (p *fakeProvider) Stream(ctx context.Context, req playground.ProviderRequest) (playground.Stream, error) {
	p.mu.Lock()
	n := p.attempts[req.Model]
	p.attempts[req.Model]++
	ss := p.scripts[req.Model]
	p.mu.Unlock()
	sc := ss[min(n, len(ss)-1)]
	if sc.wait > 0 {
		select {
		case <-time.After(sc.wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if sc.err != nil {
		return nil, sc.err
	}
	return &fakeStream{ctx: ctx, steps: sc.steps}, nil
}

type fakeStream struct {
	ctx   context.Context
	steps []step
}

func (s *fakeStream) Recv() (playground.Delta, error) {
	if len(s.steps) == 0 {
		return playground.Delta{FinishReason: playground.FinishStop}, io.EOF
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	if st.hold != nil {
		select {
		case <-st.hold():
		case <-s.ctx.Done():
			return playground.Delta{}, s.ctx.Err()
		}
	}
	if st.wait > 0 {
		select {
		case <-time.After(st.wait):
		case <-s.ctx.Done():
			return playground.Delta{}, s.ctx.Err()
		}
	}
	if st.err != nil {
		return playground.Delta{}, st.err
	}
	return playground.Delta{Text: st.text, Reasoning: st.reasoning, Usage: st.usage}, nil
}

func (s *fakeStream) Close() error { return nil }

// fakeCatalog serves every "fake/<name>" model from one provider.
type fakeCatalog struct{ p *fakeProvider }

func (c fakeCatalog) Models() []playground.Model { return nil }

func (c fakeCatalog) Lookup(id string) (playground.Model, playground.Provider, error) {
	pricing := &playground.Pricing{InputPerMillionUSD: 1, OutputPerMillionUSD: 2}
	return playground.Model{ID: id, Provider: "fake", Pricing: pricing}, c.p, nil
}

type rig struct {
	t      *testing.T
	db     *db.DB
	hub    *hub.Hub
	engine *Engine
	prov   *fakeProvider
	user   *playground.User
}

func newRig(t *testing.T, policy Policy, breakers *Breakers) *rig {
	return newRigOn(t, dbtest.MustOpenDB(t, db.DialectSQLite, db.Options{}), policy, breakers)
}

// newRigOn is newRig on a database the test opened (of another dialect,
// or with a query hook).
func newRigOn(t *testing.T, d *db.DB, policy Policy, breakers *Breakers) *rig {
	prov := &fakeProvider{name: "fake", scripts: map[string][]script{}, attempts: map[string]int{}}
	h := hub.New(hub.Options{Store: d.Sessions()})
	e := New(Options{Hub: h, Store: d.Sessions(), Catalog: fakeCatalog{prov}, Policy: policy, Breakers: breakers,
		Logger: slog.New(slog.DiscardHandler), ReplayWindow: time.Minute, CheckpointEvery: 50 * time.Millisecond})
	u := &playground.User{Email: "rig@example.com", PasswordHash: "x", Plan: playground.PlanFree, Role: playground.RoleUser}
	if err := d.Users().CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, db: d, hub: h, engine: e, prov: prov, user: u}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.Shutdown(ctx)
		h.Close()
	})
	return r
}

var seqID atomic.Int64

// start creates a session of the given fake models and runs it, with a
// viewer subscribed before anything streams.
func (r *rig) start(models ...string) (*playground.Session, *hub.Queue) {
	r.t.Helper()
	s := &playground.Session{ID: db.NewID("s_"), UserID: r.user.ID, Prompt: "p", Status: playground.SessionRunning, CreatedAt: time.Now()}
	for _, m := range models {
		s.Responses = append(s.Responses, &playground.Response{ID: db.NewID("r_"), Model: "fake/" + m, Status: playground.StatusPending})
	}
	if err := r.db.Sessions().CreateSession(context.Background(), s); err != nil {
		r.t.Fatal(err)
	}
	q := hub.NewQueue(1 << 20)
	if err := r.engine.Start(s); err != nil {
		r.t.Fatal(err)
	}
	if _, _, err := r.hub.Subscribe(context.Background(), &hub.Subscriber{Queue: q}, s.ID, 0); err != nil {
		r.t.Fatal(err)
	}
	return s, q
}

// wait collects frames until done and returns the stored session.
func (r *rig) wait(s *playground.Session, q *hub.Queue) ([]playground.Frame, *playground.Session) {
	r.t.Helper()
	var all []playground.Frame
	deadline := time.After(20 * time.Second)
	for {
		select {
		case <-q.Ready():
			for _, f := range q.Drain(nil) {
				all = append(all, f)
				if f.Type == playground.EventDone {
					stored, err := r.db.Sessions().FindSession(context.Background(), s.ID)
					if err != nil {
						r.t.Fatal(err)
					}
					return all, stored
				}
			}
		case <-deadline:
			r.t.Fatal("no done within 20 s")
		}
	}
}

func fastPolicy() Policy {
	return Policy{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, FirstByte: time.Second, Idle: time.Second, Total: 10 * time.Second}
}

func ptr[T any](v T) *T { return &v }

func TestRetryAfterIsHonoured(t *testing.T) {
	r := newRig(t, fastPolicy(), nil)
	r.prov.scripts["a"] = []script{
		{wait: 100 * time.Millisecond, err: &playground.ProviderError{Code: playground.RErrRateLimited, Retryable: true, RetryAfter: time.Second, Status: 429}},
		{steps: []step{{text: "hello "}, {text: "world", usage: &playground.Usage{PromptTokens: ptr(int64(3)), CompletionTokens: ptr(int64(2))}}}},
	}
	start := time.Now()
	s, q := r.start("a")
	frames, stored := r.wait(s, q)
	if took := time.Since(start); took < time.Second {
		t.Fatalf("retried after %v, before the asked-for second", took)
	}
	resp := stored.Responses[0]
	if resp.Status != playground.StatusComplete || resp.Text != "hello world" || resp.Metrics.Attempts != 2 {
		t.Fatalf("response %+v metrics %+v", resp, resp.Metrics)
	}
	if c := resp.Metrics.CostUSD; c == nil || *c != (3*1+2*2)/1e6 {
		t.Fatalf("cost %v", c)
	}
	if !containsRetrying(frames, 2, 1000) {
		t.Fatal("no status event announced the retry")
	}
}

func containsRetrying(frames []playground.Frame, attempt int, delayMs int64) bool {
	for _, f := range frames {
		if f.Type == playground.EventStatus && string(f.Data) != "" &&
			contains(f.Data, `"retrying":{"attempt":`+itoa(attempt)+`,"delayMs":`+itoa(int(delayMs))) {
			return true
		}
	}
	return false
}

func TestNoRetryAfterFirstChunk(t *testing.T) {
	r := newRig(t, fastPolicy(), nil)
	boom := &playground.ProviderError{Code: playground.RErrProviderError, Retryable: true, Message: "upstream broke"}
	r.prov.scripts["a"] = []script{{steps: []step{{text: "partial "}, {err: boom}}}}
	s, q := r.start("a")
	_, stored := r.wait(s, q)
	resp := stored.Responses[0]
	if resp.Status != playground.StatusError || resp.Text != "partial " || resp.Error.Code != playground.RErrProviderError ||
		resp.Metrics.Attempts != 1 || resp.Metrics.FinishReason != playground.FinishError {
		t.Fatalf("response %+v error %+v metrics %+v", resp, resp.Error, resp.Metrics)
	}
	if stored.Status != playground.SessionError {
		t.Fatalf("session status %s", stored.Status)
	}
}

func TestNonRetryableAndRefund(t *testing.T) {
	r := newRig(t, fastPolicy(), nil)
	r.prov.scripts["a"] = []script{{wait: 300 * time.Millisecond, err: &playground.ProviderError{Code: playground.RErrAuthFailed, Status: 401}}}
	r.prov.scripts["b"] = []script{{steps: []step{{text: "fine"}}}}
	before := r.quota()
	s, q := r.start("a", "b")
	if got := r.quota(); got != before-2 {
		t.Fatalf("quota %d after starting two runs from %d", got, before)
	}
	_, stored := r.wait(s, q)
	if a := stored.Responses[0]; a.Status != playground.StatusError || a.Error.Code != playground.RErrAuthFailed || a.Metrics.Attempts != 1 {
		t.Fatalf("a: %+v %+v", a, a.Error)
	}
	if got := r.quota(); got != before-1 {
		t.Fatalf("quota after a failed run: %d, want %d (one unit back)", got, before-1)
	}
}

func (r *rig) quota() int {
	u, err := r.db.Users().FindUserByID(context.Background(), r.user.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	return u.Quota.Remaining
}

func TestFirstByteTimeoutRetriedThenTimeout(t *testing.T) {
	p := fastPolicy()
	p.FirstByte = 100 * time.Millisecond
	r := newRig(t, p, nil)
	r.prov.scripts["a"] = []script{{steps: []step{{wait: time.Hour, text: "never"}}}}
	s, q := r.start("a")
	_, stored := r.wait(s, q)
	resp := stored.Responses[0]
	if resp.Status != playground.StatusError || resp.Error.Code != playground.RErrTimeout || resp.Metrics.Attempts != 3 || !resp.Error.Retryable {
		t.Fatalf("response %+v error %+v metrics %+v", resp, resp.Error, resp.Metrics)
	}
}

func TestIdleTimeoutKeepsText(t *testing.T) {
	p := fastPolicy()
	p.Idle = 150 * time.Millisecond
	r := newRig(t, p, nil)
	r.prov.scripts["a"] = []script{{steps: []step{{text: "some "}, {wait: time.Hour, text: "never"}}}}
	s, q := r.start("a")
	_, stored := r.wait(s, q)
	resp := stored.Responses[0]
	if resp.Status != playground.StatusError || resp.Error.Code != playground.RErrTimeout || resp.Text != "some " || resp.Metrics.Attempts != 1 {
		t.Fatalf("response %+v error %+v", resp, resp.Error)
	}
}

func TestCancelOneResponse(t *testing.T) {
	r := newRig(t, fastPolicy(), nil)
	r.prov.scripts["slow"] = []script{{steps: []step{{text: "a "}, {wait: time.Hour, text: "b"}}}}
	r.prov.scripts["quick"] = []script{{steps: []step{{text: "x ", wait: 200 * time.Millisecond}, {text: "y"}}}}
	s, q := r.start("slow", "quick")
	time.Sleep(50 * time.Millisecond)
	if err := r.engine.Cancel(context.Background(), s.ID, s.Responses[0].ID); err != nil {
		t.Fatal(err)
	}
	_, stored := r.wait(s, q)
	slow, quick := stored.Responses[0], stored.Responses[1]
	if slow.Status != playground.StatusCancelled || slow.Error != nil || slow.Metrics.FinishReason != playground.FinishCancelled {
		t.Fatalf("slow: %+v", slow)
	}
	if quick.Status != playground.StatusComplete || quick.Text != "x y" {
		t.Fatalf("quick: %+v", quick)
	}
	if stored.Status != playground.SessionCancelled {
		t.Fatalf("session %s", stored.Status)
	}
}

func TestBreakerOpensAndProbes(t *testing.T) {
	now := time.Now()
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	b := NewBreakers(2, time.Minute, func() time.Time { return *clock.Load() })
	r := newRig(t, Policy{MaxAttempts: 1, BaseDelay: time.Millisecond, FirstByte: time.Second, Idle: time.Second, Total: 5 * time.Second}, b)
	fail := &playground.ProviderError{Code: playground.RErrProviderError, Retryable: true}
	r.prov.scripts["bad"] = []script{{err: fail}}
	r.prov.scripts["good"] = []script{{steps: []step{{text: "ok"}}}}
	// A refused key does not count: one bad request cannot take a provider down.
	b.Record("fake", playground.StatusError, playground.RErrAuthFailed)
	for range 2 {
		s, q := r.start("bad")
		r.wait(s, q)
	}
	if !b.Cooling("fake") {
		t.Fatal("breaker not open after two failures in a row")
	}
	s, q := r.start("good")
	_, stored := r.wait(s, q)
	if resp := stored.Responses[0]; resp.Error == nil || resp.Error.Code != playground.RErrProviderUnavailable {
		t.Fatalf("while cooling: %+v", resp)
	}
	later := now.Add(2 * time.Minute)
	clock.Store(&later)
	s, q = r.start("good")
	if _, stored = r.wait(s, q); stored.Responses[0].Status != playground.StatusComplete || b.Cooling("fake") {
		t.Fatalf("probe after cool-down: %+v", stored.Responses[0])
	}
}

func TestShutdownInterruptsAfterDrain(t *testing.T) {
	r := newRig(t, fastPolicy(), nil)
	r.prov.scripts["long"] = []script{{steps: []step{{text: "kept "}, {wait: time.Hour}}}}
	s, q := r.start("long")
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r.engine.Shutdown(ctx)
	_, stored := r.wait(s, q)
	resp := stored.Responses[0]
	if resp.Status != playground.StatusError || resp.Error.Code != playground.RErrInterrupted || resp.Text != "kept " {
		t.Fatalf("after shutdown: %+v %+v", resp, resp.Error)
	}
	if err := r.engine.Start(&playground.Session{ID: "s_x"}); playground.ErrorCode(err) != playground.EUnavailable {
		t.Fatalf("start after shutdown: %v", err)
	}
}
