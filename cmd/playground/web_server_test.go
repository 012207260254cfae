package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/playground-dev/playground/internal/listenfd"
)

// browserServer is the real Playground server with the demo provider, as the
// browser tests see it: URL is a cutting proxy in front of it on 127.0.0.1,
// so a test can drop the page's WebSocket at the TCP level, as a server or a
// network failure would.
type browserServer struct {
	URL   string // http://127.0.0.1:<proxy port>
	proxy *cutProxy
	proc  *serverProcess
	// alive ends, with the reason as its cause, when the server process
	// exits before the test stops it; the test's browser tabs hang off it,
	// so a dead server fails the browser steps at once, not at their timeouts.
	alive context.Context
}

// CutWebSockets closes every WebSocket connection open through the server
// right now and reports how many it closed.
func (s *browserServer) CutWebSockets() int { return s.proxy.cut("/ws") }

// WebSocketsOpened is how many WebSocket connections the page has opened.
func (s *browserServer) WebSocketsOpened() int { return s.proxy.opened("/ws") }

// serversByTest finds the server a browser test started, for newBrowser.
var serversByTest sync.Map // *testing.T -> *browserServer

// startTestServer starts the real server on 127.0.0.1: this package's
// program run as `playground serve` in a process of its own, as a person
// runs it (serverBinary), with a fresh SQLite database and the demo provider only, and
// stops it when the test ends. The test binds the port and hands the
// socket to the server (LISTEN_FDS), so no other process can take the port
// in between; the browser reaches it through a TCP proxy that can cut the
// page's WebSockets from the server side. If the server exits early, the
// test fails within seconds with its log.
//
// extraEnv adds settings, e.g. "QUOTA_FREE_PER_DAY=2".
func startTestServer(t *testing.T, extraEnv ...string) *browserServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	alive, died := context.WithCancelCause(context.Background())
	proc, err := startServerProcess(serverBinary(t), t.TempDir(), serverEnv(extraEnv...), ln, serverReadyTimeout,
		func(p *serverProcess) {
			died(fmt.Errorf("the server exited during the test: %v\n%s", p.err, p.logs.String()))
		})
	if err != nil {
		died(err)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := proc.stop(); err != nil {
			t.Errorf("stop the server: %v", err)
		}
		died(nil)
		if t.Failed() {
			t.Logf("server log:\n%s", proc.logs.String())
		}
	})
	p := startCutProxy(t, ln.Addr().String())
	srv := &browserServer{URL: "http://" + p.addr, proxy: p, proc: proc, alive: alive}
	serversByTest.Store(t, srv)
	t.Cleanup(func() { serversByTest.Delete(t) })
	return srv
}

// serverReadyTimeout bounds the wait for /healthz. The server answers in
// well under a second; the margin is for a machine busy compiling.
const serverReadyTimeout = 30 * time.Second

// The demo models' pace (DEMO_SPEED) in the browser tests. Most wait for
// the answers to end and time nothing, so their server streams at
// fastDemo; a test that must see a demo model's stream at some step
// (thinking shown before the answer) passes humanPace, the pace `make run`
// has. A test that needs a comparison still running when a viewer comes or
// a connection is cut holds a model open instead (scriptedUpstream.holdOpen),
// which no busy machine can outrun.
const (
	fastDemo  = "DEMO_SPEED=4"
	humanPace = "DEMO_SPEED=1"
)

// serverEnv is `make run`'s environment for a test: no DATABASE_URL (the
// SQLite file lands in the working directory), only the demo provider, at
// fastDemo, no shared state, plus extra (whose settings win).
func serverEnv(extra ...string) []string {
	env := []string{"ENV=development", "LOG_LEVEL=warn", "PLAYGROUND_TEST_AS_MAIN=1", fastDemo}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasSuffix(k, "_API_KEY"), strings.HasSuffix(k, "_BASE_URL"), strings.HasPrefix(k, "LISTEN_"),
			k == "DATABASE_URL", k == "REDIS_URL", k == "MODELS", k == "PORT", k == "ENV", k == "DEMO_SPEED",
			k == "PLAYGROUND_CONFIG", k == "JWT_SECRET", k == "LOG_LEVEL", k == "FRONTEND_URL":
			continue // no real provider, no shared state: only the demo provider answers
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// serverProcess is one `playground serve` child process.
type serverProcess struct {
	cmd    *exec.Cmd
	logs   lockedBuffer
	exited chan struct{} // closed once the process has ended; err is set before
	err    error
	once   sync.Once
}

// startServerProcess runs `bin serve` in dir and waits until it answers
// /healthz. With ln, the server gets that socket (the caller may close its
// copy afterwards; the server keeps it open); without, it binds what env
// says. It returns an error as soon as the process exits, and after
// timeout at the latest, having stopped the process. onExit, when set, is
// called once the process has ended, whether stopped or not.
func startServerProcess(bin, dir string, env []string, ln net.Listener, timeout time.Duration, onExit func(*serverProcess)) (*serverProcess, error) {
	p := &serverProcess{exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Dir = dir
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.logs, &p.logs
	release := func() {}
	addr := ""
	if ln != nil {
		var err error
		if release, err = listenfd.Pass(p.cmd, ln); err != nil {
			return nil, err
		}
		addr = ln.Addr().String()
	} else {
		for _, kv := range env {
			if port, ok := strings.CutPrefix(kv, "PORT="); ok {
				addr = "127.0.0.1:" + port
			}
		}
	}
	err := p.cmd.Start()
	release()
	if err != nil {
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	// Owned by p: ends when the process does, which stop brings about.
	go func() {
		p.err = p.cmd.Wait()
		if onExit != nil {
			onExit(p)
		}
		close(p.exited)
	}()
	if err := p.waitReady("http://"+addr+"/healthz", timeout); err != nil {
		_ = p.stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls url until it answers 200, failing as soon as the
// process exits: a probe under way is abandoned then, since the socket it
// asks may be one that accepts and never answers (a port another process
// holds), where it would otherwise wait out its own timeout, again and
// again while a loaded machine starts the process.
func (p *serverProcess) waitReady(url string, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // ends when the process does or waitReady returns
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	deadline := time.After(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if res, err := hc.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		// An exit first: the probe just abandoned may have ended with the tick due too.
		select {
		case <-p.exited:
			return p.exitedEarly()
		default:
		}
		select {
		case <-p.exited:
			return p.exitedEarly()
		case <-deadline:
			return fmt.Errorf("the server did not answer %s within %s; its log:\n%s", url, timeout, p.logs.String())
		case <-tick.C:
		}
	}
}

func (p *serverProcess) exitedEarly() error {
	return fmt.Errorf("the server exited before it was ready (%v); its log:\n%s", p.err, p.logs.String())
}

// stop interrupts the server as Ctrl-C would and waits for it, killing it
// after 15 s. It reports a server that did not stop cleanly (one that had
// already died is reported by its exit, not here); calling it again only
// waits.
func (p *serverProcess) stop() error {
	var err error
	p.once.Do(func() {
		select {
		case <-p.exited:
			return // it ended by itself
		default:
		}
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
			if p.err != nil {
				err = fmt.Errorf("serve after an interrupt: %w", p.err)
			}
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			err = fmt.Errorf("serve did not stop within 15 s of an interrupt")
		}
	})
	<-p.exited
	return err
}

// serverBinary is the program the browser tests run: this test binary,
// which is `playground` with PLAYGROUND_TEST_AS_MAIN=1 (serverEnv sets it;
// see TestMain), so no server is built for them; or $PLAYGROUND_TEST_BINARY,
// e.g. bin/playground as `make build` builds it.
func serverBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("PLAYGROUND_TEST_BINARY"); bin != "" {
		return bin
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return self
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

// TestServerHarnessFailsFast: a server that cannot start, or dies during a
// test, fails the test within seconds with the reason, and the cleanup
// does not hang. (A port taken between the harness choosing it and the
// server binding it once left the suite waiting until its 15-minute
// timeout.)
func TestServerHarnessFailsFast(t *testing.T) {
	t.Parallel()
	bin := serverBinary(t)
	t.Run("port taken", func(t *testing.T) {
		held, err := net.Listen("tcp", ":0") // every address, as serve binds
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		port := held.Addr().(*net.TCPAddr).Port
		start := time.Now()
		p, err := startServerProcess(bin, t.TempDir(), serverEnv(fmt.Sprintf("PORT=%d", port)), nil, serverReadyTimeout, nil)
		if err == nil {
			_ = p.stop()
			t.Fatalf("the server started on port %d, which another process holds", port)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("gave up after %s, want seconds", took.Round(time.Millisecond))
		}
		if !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("the error does not say why: %v", err)
		}
	})
	t.Run("exit during a probe", func(t *testing.T) {
		// A socket that accepts (the kernel does) and never answers, as a
		// port held by another process: the probe's own timeout is 2 s.
		silent, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		p := &serverProcess{exited: make(chan struct{}), err: errors.New("exit status 1")}
		time.AfterFunc(100*time.Millisecond, func() { close(p.exited) })
		start := time.Now()
		err = p.waitReady("http://"+silent.Addr().String()+"/healthz", serverReadyTimeout)
		if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
			t.Fatalf("waitReady = %v, want the exit reported", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("the exit 100 ms in was reported after %s: the probe ran out its timeout first", took.Round(time.Millisecond))
		}
	})
	t.Run("killed mid-test", func(t *testing.T) {
		srv := startTestServer(t)
		tab := newBrowser(t)
		if err := srv.proc.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// A step with a long timeout, as the tests' waits have: it must end
		// as soon as the server is gone, saying so.
		ctx, cancel := context.WithTimeout(tab, time.Minute)
		defer cancel()
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`false`, chromedp.WithPollingTimeout(time.Minute)))
		if err == nil {
			t.Fatal("a browser step went on after the server died")
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("the step failed after %s, want seconds", took.Round(time.Millisecond))
		}
		if msg := browserErr(tab, err).Error(); !strings.Contains(msg, "the server exited during the test") || !strings.Contains(msg, "killed") {
			t.Errorf("the failure does not say the server died: %s", msg)
		}
	})
}
