package api_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer is the real Playground server with the demo provider, as the
// browser tests see it: URL is a cutting proxy in front of it on 127.0.0.1,
// so a test can drop the page's WebSocket at the TCP level, as a server or a
// network failure would.
type testServer struct {
	URL   string // http://127.0.0.1:<proxy port>
	proxy *cutProxy
}

// CutWebSockets closes every WebSocket connection open through the server
// right now and reports how many it closed.
func (s *testServer) CutWebSockets() int { return s.proxy.cut("/ws") }

// WebSocketsOpened is how many WebSocket connections the page has opened.
func (s *testServer) WebSocketsOpened() int { return s.proxy.opened("/ws") }

// startTestServer starts the real server on 127.0.0.1: the built
// ./cmd/playground binary run as `playground serve`, exactly as a person
// runs it, with a fresh SQLite database and the demo provider only, and
// stops it when the test ends. Its port is picked free just before (a
// small race, acceptable in tests); the browser reaches it through a TCP
// proxy that can cut the page's WebSockets from the server side.
//
// extraEnv adds settings, e.g. "QUOTA_FREE_PER_DAY=2".
func startTestServer(t *testing.T, extraEnv ...string) *testServer {
	t.Helper()
	dir := t.TempDir()
	bin := serverBinary(t)

	port := freePort(t)
	// No DATABASE_URL: the default SQLite file lands in dir, the working directory.
	env := []string{"PORT=" + strconv.Itoa(port), "ENV=development", "LOG_LEVEL=warn"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasSuffix(k, "_API_KEY"), strings.HasSuffix(k, "_BASE_URL"),
			k == "DATABASE_URL", k == "REDIS_URL", k == "MODELS", k == "PORT", k == "ENV",
			k == "PLAYGROUND_CONFIG", k == "JWT_SECRET", k == "LOG_LEVEL", k == "FRONTEND_URL":
			continue // no real provider, no shared state: only the demo provider answers
		}
		env = append(env, kv)
	}
	env = append(env, extraEnv...)
	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	cmd.Env = env
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})

	backend := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + backend + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("server exited before it was ready: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready after 30s\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	p := startCutProxy(t, backend)
	return &testServer{URL: "http://" + p.addr, proxy: p}
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// serverBinary builds ./cmd/playground once per test process (or takes
// $PLAYGROUND_TEST_BINARY). The binary goes to the user's cache directory,
// written to a temporary name and renamed, so parallel test processes do
// not trip over each other, and later runs relink only what changed.
func serverBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("PLAYGROUND_TEST_BINARY"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		// One directory per checkout, so runs of two checkouts at once
		// never exec each other's build.
		root, _ := filepath.Abs("..")
		sum := sha256.Sum256([]byte(root))
		dir = filepath.Join(dir, "playground-browser-tests", hex.EncodeToString(sum[:6]))
		if buildErr = os.MkdirAll(dir, 0o755); buildErr != nil {
			return
		}
		tmp, err := os.CreateTemp(dir, "playground-*.tmp")
		if err != nil {
			buildErr = err
			return
		}
		tmp.Close()
		build := exec.Command("go", "build", "-o", tmp.Name(), "./cmd/playground")
		build.Dir = ".." // the module root
		if out, err := build.CombinedOutput(); err != nil {
			os.Remove(tmp.Name())
			buildErr = fmt.Errorf("build ./cmd/playground: %v\n%s", err, out)
			return
		}
		buildBin = filepath.Join(dir, "playground")
		buildErr = os.Rename(tmp.Name(), buildBin)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
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
