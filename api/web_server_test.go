package api_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/playground-dev/playground/app"
	"github.com/playground-dev/playground/config"
)

// testServer is the real Playground server with the demo provider, as the
// browser tests see it: URL is a cutting proxy in front of it on 127.0.0.1,
// so a test can drop the page's WebSocket at the TCP level, as a server or a
// network failure would.
type testServer struct {
	URL   string // http://127.0.0.1:<proxy port>
	proxy *cutProxy
	app   *app.App
	ln    net.Listener // the server's socket
	logs  *lockedBuffer
	// alive ends, with the reason as its cause, when the server stops
	// serving before the test stops it; the test's browser tabs hang off
	// it, so a dead server fails the browser steps at once, not at their
	// timeouts.
	alive context.Context
}

// CutWebSockets closes every WebSocket connection open through the server
// right now and reports how many it closed.
func (s *testServer) CutWebSockets() int { return s.proxy.cut("/ws") }

// WebSocketsOpened is how many WebSocket connections the page has opened.
func (s *testServer) WebSocketsOpened() int { return s.proxy.opened("/ws") }

// serversByTest finds the server a browser test started, for newBrowser.
var serversByTest sync.Map // *testing.T -> *testServer

// startTestServer starts the real server in this process, built by
// app.New as `playground serve` builds it, with `make run`'s settings: a
// fresh SQLite database, the demo provider only and no shared state. It
// serves on a socket the test bound on 127.0.0.1:0, and the browser
// reaches it through a TCP proxy that can cut the page's WebSockets from
// the server side. The server stops when the test ends; if it stops
// serving before, the test's browser steps fail at once with its log.
//
// extraEnv adds settings, e.g. "QUOTA_FREE_PER_DAY=2".
func startTestServer(t *testing.T, extraEnv ...string) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, logs, err := buildServer(t.Context(), t.TempDir(), ln, extraEnv...)
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	alive, died := context.WithCancelCause(context.Background())
	watched := make(chan struct{})
	go func() { // owned by the test: ends when the server stops serving, at the latest in the cleanup
		defer close(watched)
		<-a.Done()
		if err := a.Err(); err != nil {
			died(fmt.Errorf("the server stopped serving during the test: %v\n%s", err, logs.String()))
		}
	}()
	t.Cleanup(func() {
		// Comparisons still running get a second, not serve's drain: the
		// test is over.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("stop the server: %v", err)
		}
		<-watched
		died(nil)
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	p := startCutProxy(t, a.Addr())
	srv := &testServer{URL: "http://" + p.addr, proxy: p, app: a, ln: ln, logs: logs, alive: alive}
	serversByTest.Store(t, srv)
	t.Cleanup(func() { serversByTest.Delete(t) })
	return srv
}

// buildServer builds the server with `make run`'s settings and its SQLite
// file in dir, plus extraEnv ("KEY=value"), on ln (nil: PORT, as serve
// does). Its log, from warnings up, goes to the returned buffer.
func buildServer(ctx context.Context, dir string, ln net.Listener, extraEnv ...string) (*app.App, *lockedBuffer, error) {
	env := map[string]string{"ENV": "development", "DATABASE_URL": filepath.Join(dir, "playground.db")}
	for _, kv := range extraEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		return nil, nil, err
	}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(ctx, cfg, app.Options{Logger: logger, Listener: ln})
	if err != nil {
		return nil, nil, fmt.Errorf("the server did not start: %w\n%s", err, logs.String())
	}
	return a, logs, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// cutProxy is a TCP proxy that remembers the first request line of each
// connection, so a test can close every connection that began with a given
// path (the page's WebSocket) without touching the others. Bytes pass
// through unchanged, so Host and Origin stay the proxy's and the server's
// same-origin checks hold.
type cutProxy struct {
	addr    string
	backend string
	ln      net.Listener
	wg      sync.WaitGroup // the accept loop and two copiers per connection

	mu    sync.Mutex
	conns map[net.Conn]string // client side -> first request path
	seen  map[string]int      // path -> connections opened
}

// startCutProxy listens on 127.0.0.1:0. Its goroutines are owned by the
// proxy; the test's cleanup closes the listener and every connection and
// waits for them.
func startCutProxy(t *testing.T, backend string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{addr: ln.Addr().String(), backend: backend, ln: ln,
		conns: map[net.Conn]string{}, seen: map[string]int{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *cutProxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	br := bufio.NewReader(client)
	_ = client.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	_ = client.SetReadDeadline(time.Time{})
	path := ""
	if f := strings.Fields(line); len(f) >= 2 {
		path, _, _ = strings.Cut(f[1], "?")
	}
	server, err := net.DialTimeout("tcp", p.backend, 5*time.Second)
	if err != nil {
		return
	}
	defer server.Close()
	p.mu.Lock()
	if p.conns == nil { // closed meanwhile
		p.mu.Unlock()
		return
	}
	p.conns[client] = path
	p.seen[path]++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, client)
		p.mu.Unlock()
	}()

	if _, err := io.WriteString(server, line); err != nil {
		return
	}
	done := make(chan struct{})
	p.wg.Add(1)
	go func() { // server -> client
		defer p.wg.Done()
		defer close(done)
		_, _ = io.Copy(client, server)
		client.Close()
	}()
	_, _ = io.Copy(server, br) // client -> server
	server.Close()
	<-done
}

func (p *cutProxy) cut(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c, cp := range p.conns {
		if cp == path {
			c.Close()
			n++
		}
	}
	return n
}

func (p *cutProxy) opened(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[path]
}

func (p *cutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// TestServerHarnessFailsFast: a server that cannot start, or stops
// serving during a test, fails the test within seconds with the reason,
// and the cleanup does not hang. (A port taken between the harness
// choosing it and the server binding it once left the suite waiting until
// its 15-minute timeout.)
func TestServerHarnessFailsFast(t *testing.T) {
	t.Parallel()
	t.Run("port taken", func(t *testing.T) {
		held, err := net.Listen("tcp", ":0") // every address, as serve binds
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		port := held.Addr().(*net.TCPAddr).Port
		start := time.Now()
		a, _, err := buildServer(t.Context(), t.TempDir(), nil, fmt.Sprintf("PORT=%d", port))
		if err == nil {
			_ = a.Shutdown(t.Context())
			t.Fatalf("the server started on port %d, which another socket holds", port)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("gave up after %s, want seconds", took.Round(time.Millisecond))
		}
		if !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("the error does not say why: %v", err)
		}
	})
	t.Run("stops serving mid-test", func(t *testing.T) {
		srv := startTestServer(t)
		tab := newBrowser(t)
		srv.ln.Close() // the server's socket fails under it
		start := time.Now()
		// A step with a long timeout, as the tests' waits have: it must end
		// as soon as the server is gone, saying so.
		ctx, cancel := context.WithTimeout(tab, time.Minute)
		defer cancel()
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`false`, chromedp.WithPollingTimeout(time.Minute)))
		if err == nil {
			t.Fatal("a browser step went on after the server stopped serving")
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("the step failed after %s, want seconds", took.Round(time.Millisecond))
		}
		if msg := browserErr(tab, err).Error(); !strings.Contains(msg, "the server stopped serving during the test") ||
			!strings.Contains(msg, "use of closed network connection") {
			t.Errorf("the failure does not say the server stopped: %s", msg)
		}
	})
}
