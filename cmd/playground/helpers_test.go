package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/api"
	"github.com/playground-dev/playground/app"
	"github.com/playground-dev/playground/config"
	"github.com/playground-dev/playground/db"
	"github.com/playground-dev/playground/db/dbtest"
)

func TestMain(m *testing.M) {
	// The README walkthrough (TestREADMEWalkthrough) and the browser
	// tests run this very binary as `playground`, with cheap password
	// hashing (cheapPasswords), as the in-process servers have it.
	if os.Getenv("PLAYGROUND_TEST_AS_MAIN") == "1" {
		adjustServe = func(o *app.Options) { o.API = cheapPasswords(o.API) }
		main()
		os.Exit(0)
	}
	// The outage tests' throwaway PostgreSQL servers are copies of one
	// initdb, made by the first of them and removed after the last.
	runAfterTests(func() {
		if err := dbtest.RemovePGTemplate(); err != nil {
			fmt.Fprintln(os.Stderr, "remove the PostgreSQL template:", err)
		}
	})
	goleak.VerifyTestMain(afterTests{m}, leakOptions...)
}

var leakOptions = []goleak.Option{
	// The SQLite driver and the HTTP client's idle connections keep
	// goroutines of their own that outlive a test by design.
	goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreAnyFunction("database/sql.(*DB).connectionOpener"),
	// OpenCensus (a dependency of the Gemini SDK) starts a worker in init.
	goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
}

// afterTests runs the functions given to runAfterTests once every test
// has run, before the leak check.
type afterTests struct{ m *testing.M }

var atExit struct {
	sync.Mutex
	fns []func()
}

func (a afterTests) Run() int {
	code := a.m.Run()
	atExit.Lock()
	fns := atExit.fns
	atExit.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
	// A client closed by the last tests may take a second to wind down:
	// go-redis, after a failed dial (a Redis a test killed), sleeps a
	// second before it sees its pool closed. Wait a few seconds for such
	// goroutines before the leak check; a real leak is still there after.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if goleak.Find(leakOptions...) == nil {
			break
		}
	}
	return code
}

// runAfterTests registers fn to run after the last test of the binary (in
// the reverse order of registration): for what tests share, such as one
// Chromium for every browser test.
func runAfterTests(fn func()) {
	atExit.Lock()
	defer atExit.Unlock()
	atExit.fns = append(atExit.fns, fn)
}

// testServer is the real server, built by app.New as serve builds it,
// on 127.0.0.1:0.
type testServer struct {
	URL    string
	app    *app.App
	stop   context.CancelFunc
	exited chan struct{} // closed when Run has returned, with its error in err
	err    error
}

// serveOwner starts a server (on SQLite) whose models are up's, and
// registers the owner of the sessions a test starts.
func serveOwner(t *testing.T, up *fakeOpenAI) (*testServer, *client) {
	t.Helper()
	ts := startServer(t, "sqlite", up.env(threeModels...), nil)
	return ts, ts.client(t).register()
}

// startServer builds the server from env (plus a fresh database of the
// dialect) as serve does, runs it, and stops it when the test ends,
// failing the test if it does not build or does not stop cleanly.
// configure, when set, adjusts the settings and options first.
func startServer(t *testing.T, dialect string, env map[string]string, configure func(*config.Config, *app.Options)) *testServer {
	t.Helper()
	vars := map[string]string{"MODELS": "demo/fast,demo/steady,demo/slow"}
	for k, v := range env {
		vars[k] = v
	}
	if vars["DATABASE_URL"] == "" {
		vars["DATABASE_URL"] = dbtest.URL(t, dialect)
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if _, small := smallBuffers.Load(t.Name()); small {
		ln = smallBufferListener{ln}
	}
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("PLAYGROUND_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	opts := app.Options{Logger: logger, Listener: ln}
	if configure != nil {
		configure(cfg, &opts)
	}
	opts.API = cheapPasswords(opts.API)
	a, err := app.New(t.Context(), cfg, opts)
	if err != nil {
		ln.Close()
		t.Fatalf("build the server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{URL: "http://" + a.Addr(), app: a, stop: cancel, exited: make(chan struct{})}
	go func() { // owned by the test: ends when Stop cancels ctx
		defer close(ts.exited)
		ts.err = a.Run(ctx)
	}()
	t.Cleanup(func() { ts.Stop(t) })
	return ts
}

// cheapPasswords lowers argon2id's cost to 64 KiB and one pass before
// then (a test's own API options, when set): the race detector makes a
// sign-up at the real cost take seconds of CPU, and every test signs up.
// The login tests in package api check the real cost.
func cheapPasswords(then func(*api.Options)) func(*api.Options) {
	return func(o *api.Options) {
		o.PasswordMemoryKiB, o.PasswordPasses = 64, 1
		if then != nil {
			then(o)
		}
	}
}

// Stop shuts the server down as a signal would and checks it exits
// cleanly; calling it again only waits.
func (ts *testServer) Stop(t *testing.T) {
	t.Helper()
	ts.stop()
	select {
	case <-ts.exited:
		if ts.err != nil {
			t.Errorf("serve returned %v", ts.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s")
	}
}

// smallBuffers names the tests whose server sockets get small kernel
// send buffers, so that a viewer who stops reading backs up after a few
// kilobytes rather than the megabytes loopback autotuning allows.
// Tests run in parallel, so it is a sync.Map of names.
var smallBuffers sync.Map

type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

// smallReadBufferClient dials with a small kernel receive buffer.
func smallReadBufferClient() *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(16 << 10)
		}
		return c, err
	}}}
}

// client is an HTTP client holding one account's bearer token.
type client struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

func (ts *testServer) client(t *testing.T) *client {
	return &client{t: t, base: ts.URL, hc: &http.Client{Timeout: 30 * time.Second}}
}

// do sends a JSON request and decodes the JSON answer into out (if given).
func (c *client) do(method, path string, body any, out any) int {
	c.t.Helper()
	resp, data := c.raw(method, path, body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// raw sends a request with the client's token and returns the answer
// with its body read.
func (c *client) raw(method, path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

var userSeq struct {
	sync.Mutex
	n int
}

// register creates a fresh account and keeps its token.
func (c *client) register() *client {
	c.t.Helper()
	userSeq.Lock()
	userSeq.n++
	email := fmt.Sprintf("viewer%d-%d@example.com", userSeq.n, time.Now().UnixNano())
	userSeq.Unlock()
	var out struct {
		AccessToken string `json:"accessToken"`
	}
	if code := c.do("POST", "/auth/register", map[string]string{"email": email, "password": "correct horse battery"}, &out); code != 201 {
		c.t.Fatalf("register: %d", code)
	}
	c.token = out.AccessToken
	return c
}

// createSession starts a comparison and returns it.
func (c *client) createSession(prompt string, models ...string) *playground.Session {
	c.t.Helper()
	var out struct {
		Session *playground.Session `json:"session"`
		Error   map[string]any      `json:"error"`
	}
	if code := c.do("POST", "/sessions", map[string]any{"prompt": prompt, "models": models}, &out); code != 201 {
		c.t.Fatalf("create session: %d %v", code, out.Error)
	}
	return out.Session
}

func (c *client) session(id string) *playground.Session {
	c.t.Helper()
	var out struct {
		Session *playground.Session `json:"session"`
	}
	if code := c.do("GET", "/sessions/"+id, nil, &out); code != 200 {
		c.t.Fatalf("get session: %d", code)
	}
	return out.Session
}

// wsViewer is a WebSocket client that collects every event it receives.
type wsViewer struct {
	t            *testing.T
	c            *websocket.Conn
	events       chan playground.WireEvent
	closed       chan error
	pending      []playground.WireEvent // read ahead by viewerCount
	lastPresence int
	paused       atomic.Bool
	resume       chan struct{}

	rawMu sync.Mutex
	raw   []byte // every frame received, as sent
}

// received returns every byte the viewer has received so far.
func (v *wsViewer) received() []byte {
	v.rawMu.Lock()
	defer v.rawMu.Unlock()
	return append([]byte(nil), v.raw...)
}

func (ts *testServer) dialWS(t *testing.T, token string, header http.Header) *wsViewer {
	t.Helper()
	v, resp, err := ts.tryDialWS(t, token, header)
	if err != nil {
		t.Fatalf("dial ws: %v (%v)", err, resp)
	}
	return v
}

func (ts *testServer) tryDialWS(t *testing.T, token string, header http.Header) (*wsViewer, *http.Response, error) {
	return ts.dialWSWith(t, token, header, nil)
}

func (ts *testServer) dialWSWith(t *testing.T, token string, header http.Header, hc *http.Client) (*wsViewer, *http.Response, error) {
	if header == nil {
		header = http.Header{}
	}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", &websocket.DialOptions{HTTPHeader: header, HTTPClient: hc})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(16 << 20)
	v := &wsViewer{t: t, c: c, events: make(chan playground.WireEvent, 100000), closed: make(chan error, 1), resume: make(chan struct{})}
	go v.readLoop()
	t.Cleanup(func() { c.CloseNow() })
	return v, resp, nil
}

// readLoop splits each frame into its newline-separated events. It ends
// when the connection closes, reporting why on closed.
func (v *wsViewer) readLoop() {
	for {
		if v.paused.Load() {
			<-v.resume
		}
		_, data, err := v.c.Read(context.Background())
		if err != nil {
			v.closed <- err
			close(v.events)
			return
		}
		v.rawMu.Lock()
		v.raw = append(append(v.raw, data...), '\n')
		v.rawMu.Unlock()
		for _, line := range bytes.Split(data, []byte{'\n'}) {
			var ev playground.WireEvent
			if err := json.Unmarshal(line, &ev); err != nil {
				v.closed <- fmt.Errorf("bad event %q: %w", line, err)
				close(v.events)
				return
			}
			v.events <- ev
		}
	}
}

func (v *wsViewer) send(frame map[string]any) {
	v.t.Helper()
	b, _ := json.Marshal(frame)
	if err := v.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		v.t.Fatalf("ws write: %v", err)
	}
}

// next waits for the next event of the given type (skipping others when
// skip is set); it fails the test after the timeout.
func (v *wsViewer) next(timeout time.Duration) playground.WireEvent {
	v.t.Helper()
	if len(v.pending) > 0 {
		ev := v.pending[0]
		v.pending = v.pending[1:]
		return ev
	}
	select {
	case ev, ok := <-v.events:
		if !ok {
			v.t.Fatalf("ws closed: %v", <-v.closed)
		}
		return ev
	case <-time.After(timeout):
		v.t.Fatalf("no ws event within %v", timeout)
	}
	return playground.WireEvent{}
}

// stopReading makes the viewer stop draining its socket, as a stalled
// browser tab would.
func (v *wsViewer) stopReading() { v.paused.Store(true) }

// closeReason resumes reading and returns why the connection ended.
func (v *wsViewer) closeReason(timeout time.Duration) error {
	v.t.Helper()
	close(v.resume)
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-v.events:
			if !ok {
				return <-v.closed
			}
		case <-deadline:
			return nil
		}
	}
}

// untilDone collects the session's events (presence excluded) through done.
func (v *wsViewer) untilDone(sessionID string, timeout time.Duration) []playground.WireEvent {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	var out []playground.WireEvent
	for {
		ev := v.next(time.Until(deadline))
		if ev.SessionID != sessionID || ev.Type == playground.EventPresence {
			continue
		}
		out = append(out, ev)
		if ev.Type == playground.EventDone {
			return out
		}
	}
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	ID    string
	Event string
	Data  playground.WireEvent
}

// readSSE opens a session's stream and collects its events until the
// server ends it, or until stopAfter log events when stopAfter > 0.
func (c *client) readSSE(path string, header http.Header, stopAfter int) ([]sseEvent, int) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+path, nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		c.t.Fatalf("sse: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, resp.StatusCode
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		c.t.Fatalf("sse content type %q", ct)
	}
	var out []sseEvent
	var cur sseEvent
	logged := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Event != "" {
				out = append(out, cur)
				if cur.ID != "" {
					logged++
				}
				if stopAfter > 0 && logged >= stopAfter {
					return out, 200
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			cur.ID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			cur.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.Data); err != nil {
				c.t.Fatalf("sse data %q: %v", line, err)
			}
		}
	}
	return out, 200
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// openTestDB opens a database the server under test also uses.
func openTestDB(t *testing.T, url string) *db.DB {
	t.Helper()
	d, err := db.Open(t.Context(), url, db.Options{Plans: dbtest.DefaultPlans})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
