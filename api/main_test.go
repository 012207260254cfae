package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db"
	"github.com/playground-dev/playground/db/dbtest"
)

// TestMain checks that no test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var bg = context.Background()

// testPlans are small, so that quota runs out quickly.
var testPlans = playground.Plans{FreePerDay: 5, ProPerDay: 100}

// fastArgon keeps tests quick; TestPasswordHashFormat checks the real
// parameters.
var fastArgon = argonParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// fakeCatalog is a fixed catalogue.
type fakeCatalog struct {
	mu     sync.Mutex
	models []playground.Model
}

func newFakeCatalog() *fakeCatalog {
	noKey := playground.UnavailableNoKey
	return &fakeCatalog{models: []playground.Model{
		{ID: "demo/fast", Provider: "demo", Name: "Demo fast", Available: true},
		{ID: "openai/gpt-4o-mini", Provider: "openai", Name: "GPT-4o mini", Available: true,
			Pricing: &playground.Pricing{InputPerMillionUSD: 0.15, OutputPerMillionUSD: 0.60}},
		{ID: "openrouter/meta-llama/llama-3.1-8b-instruct", Provider: "openrouter", Name: "Llama 3.1 8B", Available: true},
		{ID: "anthropic/claude-3-5-haiku", Provider: "anthropic", Name: "Claude Haiku", Available: false,
			UnavailableReason: &noKey},
	}}
}

func (c *fakeCatalog) Models() []playground.Model {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]playground.Model(nil), c.models...)
}

func (c *fakeCatalog) Lookup(id string) (playground.Model, playground.Provider, error) {
	for _, m := range c.Models() {
		if m.ID == id {
			return m, nil, nil
		}
	}
	return playground.Model{}, nil, playground.Errorf(playground.EUnknownModel, "Unknown model %q.", id)
}

// fakeRunner keeps started sessions as live copies; tests end them with
// env.finish.
type fakeRunner struct {
	mu        sync.Mutex
	live      map[string]*playground.Session
	cancels   []string // "session/response"
	unshares  []string // "session/token"
	failStart bool
}

func (f *fakeRunner) Start(s *playground.Session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failStart {
		return errors.New("runner: no capacity")
	}
	if f.live == nil {
		f.live = map[string]*playground.Session{}
	}
	f.live[s.ID] = s.Clone()
	return nil
}

func (f *fakeRunner) Cancel(_ context.Context, sessionID, responseID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancels = append(f.cancels, sessionID+"/"+responseID)
	if s, ok := f.live[sessionID]; ok {
		for _, r := range s.Responses {
			if (responseID == "" || r.ID == responseID) && !r.Ended() {
				r.Status = playground.StatusCancelled
			}
		}
	}
	return nil
}

func (f *fakeRunner) Live(id string) (*playground.Session, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.live[id]
	if !ok {
		return nil, false
	}
	return s.Clone(), true
}

func (f *fakeRunner) Unshare(_ context.Context, id, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unshares = append(f.unshares, id+"/"+token)
	return nil
}

// setText puts streamed text into a live session (as a running actor would).
func (f *fakeRunner) setText(sessionID, responseID, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.live[sessionID].Response(responseID)
	r.Status, r.Text = playground.StatusStreaming, text
}

// flakyTokens is the real token store, with a switch that makes the
// revocation check fail as if the database were down.
type flakyTokens struct {
	playground.TokenService
	down atomic.Bool
}

func (f *flakyTokens) IsTokenRevoked(ctx context.Context, jti, userID string) (bool, error) {
	if f.down.Load() {
		return false, errors.New("db: connection refused")
	}
	return f.TokenService.IsTokenRevoked(ctx, jti, userID)
}

// env is one server over a fresh database.
type restEnv struct {
	t       *testing.T
	db      *db.DB
	srv     *Server
	catalog *fakeCatalog
	runner  *fakeRunner
	tokens  *flakyTokens
	revoked []string // jtis passed to Options.Revoked
	mu      sync.Mutex
}

// eachEnv runs fn once per database dialect under test (SQLite, and
// PostgreSQL when PLAYGROUND_TEST_DATABASE_URL is set).
func eachEnv(t *testing.T, fn func(t *testing.T, e *restEnv), opts ...func(*Options)) {
	t.Helper()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			fn(t, newEnv(t, dialect, opts...))
		})
	}
}

// eachUser is eachEnv with one account, email, signed up in each
// environment: how most tests begin.
func eachUser(t *testing.T, email string, fn func(t *testing.T, e *restEnv, u testUser), opts ...func(*Options)) {
	t.Helper()
	eachEnv(t, func(t *testing.T, e *restEnv) { fn(t, e, e.register(email)) }, opts...)
}

func newEnv(t *testing.T, dialect string, opts ...func(*Options)) *restEnv {
	t.Helper()
	d := dbtest.MustOpenDB(t, dialect, db.Options{Plans: testPlans})
	e := &restEnv{t: t, db: d, catalog: newFakeCatalog(), runner: &fakeRunner{}, tokens: &flakyTokens{TokenService: d.Tokens()}}
	o := Options{
		Users:           d.Users(),
		Sessions:        d.Sessions(),
		Votes:           d.Votes(),
		Tokens:          e.tokens,
		Catalog:         e.catalog,
		Runner:          e.runner,
		Logger:          slog.New(slog.DiscardHandler),
		JWTSecret:       []byte("test-secret-test-secret-test-secret!"),
		JWTTTL:          time.Hour,
		Plans:           testPlans,
		RegisterPerHour: 100,
		Revoked: func(_ context.Context, jti string, _ time.Time) {
			e.mu.Lock()
			e.revoked = append(e.revoked, jti)
			e.mu.Unlock()
		},
	}
	for _, f := range opts {
		f(&o)
	}
	e.srv = New(o)
	e.srv.auth.hasher = newHasher(fastArgon)
	return e
}

// req is one request to build.
type restReq struct {
	method, path string
	body         any // string is sent as is; anything else as JSON
	token        string
	cookie       string
	header       map[string]string
	remote       string
}

// do serves one request in process and returns the recorded answer.
func (e *restEnv) do(r restReq) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		body = bytes.NewReader(data)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: cookieName, Value: r.cookie})
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, hr)
	return w
}

// want serves r and fails the test unless it answers status; out, unless
// nil, receives the JSON body.
func (e *restEnv) want(r restReq, status int, out any) *httptest.ResponseRecorder {
	e.t.Helper()
	w := e.do(r)
	if w.Code != status {
		e.t.Fatalf("%s %s: %d %s", r.method, r.path, w.Code, w.Body)
	}
	if out != nil {
		decodeBody(e.t, w, out)
	}
	return w
}

// user is a registered account in a test.
type testUser struct {
	ID, Email, Token string
}

// register makes an account and returns its token.
func (e *restEnv) register(email string) testUser {
	e.t.Helper()
	var out struct {
		User        playground.User `json:"user"`
		AccessToken string          `json:"accessToken"`
	}
	e.want(restReq{method: "POST", path: "/auth/register", body: map[string]string{"email": email, "password": "password123"}}, http.StatusCreated, &out)
	return testUser{ID: out.User.ID, Email: out.User.Email, Token: out.AccessToken}
}

// remaining is u's quota left, as GET /auth/me says.
func (e *restEnv) remaining(u testUser) int {
	e.t.Helper()
	var me struct {
		User playground.User `json:"user"`
	}
	decodeBody(e.t, e.do(restReq{method: "GET", path: "/auth/me", token: u.Token}), &me)
	return me.User.Quota.Remaining
}

// wantRemaining checks u's quota left, when what the test just did.
func (e *restEnv) wantRemaining(u testUser, want int, when string) {
	e.t.Helper()
	if got := e.remaining(u); got != want {
		e.t.Errorf("remaining %s = %d, want %d", when, got, want)
	}
}

// createSession starts a comparison for u and returns it.
func (e *restEnv) createSession(u testUser, models ...string) *playground.Session {
	e.t.Helper()
	var out struct {
		Session *playground.Session `json:"session"`
	}
	e.want(restReq{method: "POST", path: "/sessions", token: u.Token, body: map[string]any{"prompt": "Explain CRDTs", "models": models}}, http.StatusCreated, &out)
	return out.Session
}

// finish ends a running session: every response complete with the given
// texts (in order), committed to the database, and no longer live.
func (e *restEnv) finish(sessionID string, texts ...string) {
	e.t.Helper()
	e.runner.mu.Lock()
	s := e.runner.live[sessionID]
	delete(e.runner.live, sessionID)
	e.runner.mu.Unlock()
	for i, r := range s.Responses {
		r.Status = playground.StatusComplete
		if i < len(texts) {
			r.Text = texts[i]
		}
		ttft, pt, ct, cost := int64(100+i), int64(14), int64(96), 0.0000597
		r.Metrics = &playground.Metrics{TTFTMs: &ttft, DurationMs: 2000, PromptTokens: &pt, CompletionTokens: &ct,
			CostUSD: &cost, Attempts: 1, FinishReason: playground.FinishStop}
		if err := e.db.FinishResponse(bg, sessionID, r, false); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.db.FinishSession(bg, sessionID, playground.SessionComplete, 10); err != nil {
		e.t.Fatal(err)
	}
}

// apiError is the decoded error shape.
type apiError struct {
	Error struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

func decodeBody(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %q: %v", w.Body.String(), err)
	}
}

// wantError fails unless w is the coded error with status and code, and
// returns its details.
func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) map[string]any {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var e apiError
	decodeBody(t, w, &e)
	if e.Error.Code != code {
		t.Fatalf("code = %q, want %q; body %s", e.Error.Code, code, w.Body)
	}
	if e.Error.Details == nil {
		t.Errorf("details missing (must be an object): %s", w.Body)
	}
	if e.Error.Message == "" {
		t.Errorf("message missing: %s", w.Body)
	}
	return e.Error.Details
}

// wantField fails unless w is a 400 invalid_request naming field.
func wantField(t *testing.T, w *httptest.ResponseRecorder, field string) {
	t.Helper()
	d := wantError(t, w, http.StatusBadRequest, playground.EInvalid)
	if d["field"] != field {
		t.Fatalf("details.field = %v, want %q; body %s", d["field"], field, w.Body)
	}
}
