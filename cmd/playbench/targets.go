package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	"time"

	"github.com/redis/go-redis/v9"
)

// pgServer is one running Playground instance.
type pgServer struct {
	url    string
	pid    int
	proc   *process      // the real binary, or `playbench _serve` when profiling
	inproc *inprocServer // the smoke test's in-process server
	pprof  string        // base URL of its pprof listener, if any
}

func (s *pgServer) stop() {
	if s.proc != nil {
		s.proc.stop()
	}
	if s.inproc != nil {
		_ = s.inproc.Close()
	}
}

// pgEnv is the environment every Playground instance of the benchmark gets.
func (b *bench) pgEnv(port int, dbURL string) map[string]string {
	return map[string]string{
		"PORT":                         strconv.Itoa(port),
		"DATABASE_URL":                 dbURL,
		"QUOTA_FREE_PER_DAY":           "1000000000",
		"RATE_LIMIT_REGISTER_PER_HOUR": "1000000",
		"OPENAI_API_KEY":               "sk-bench",
		"OPENAI_BASE_URL":              b.up.url + "/v1",
		"MODELS":                       "openai/bench",
		"PROVIDER_TOTAL_TIMEOUT":       "1h",
		"PROVIDER_IDLE_TIMEOUT":        "5m",
		"PROVIDER_FIRST_BYTE_TIMEOUT":  "5m",
		"JWT_SECRET":                   "playbench-shared-secret-of-at-least-32-bytes",
		"LOG_LEVEL":                    "warn",
		// Every viewer comes from 127.0.0.1, thousands at a time.
		"MAX_CONNECTIONS":             "19000",
		"MAX_CONNECTIONS_PER_ADDRESS": "19000",
		"WS_SUBSCRIBE_TIMEOUT":        "5m",
	}
}

// startPlayground starts one instance on CPU 0 (GOMAXPROCS=1), or in
// this process for the smoke test.
func (b *bench) startPlayground(ctx context.Context, name, dbURL string, extra map[string]string) (*pgServer, error) {
	return b.startPlaygroundOf(ctx, "", name, dbURL, extra)
}

// startPlaygroundOf is startPlayground running the binary bin ("" for
// the one under test): the baseline of an A/B run.
func (b *bench) startPlaygroundOf(ctx context.Context, bin, name, dbURL string, extra map[string]string) (*pgServer, error) {
	if b.opt.inproc {
		env := b.pgEnv(0, dbURL)
		for k, v := range extra {
			env[k] = v
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		s, err := startInproc(ctx, func(k string) string { return env[k] }, ln, nil)
		if err != nil {
			ln.Close()
			return nil, err
		}
		return &pgServer{url: s.URL, pid: selfPID, inproc: s}, nil
	}
	return b.startPlaygroundProcess(ctx, bin, name, dbURL, extra)
}

// startPlaygroundProcess starts one playground process on a socket bound
// here and passed to it (LISTEN_FDS), so no viewer connection's ephemeral
// port can take the port before the server has it.
func (b *bench) startPlaygroundProcess(ctx context.Context, bin, name, dbURL string, extra map[string]string) (*pgServer, error) {
	lns, err := listenLoopback(1 + boolInt(b.opt.profile != "" && bin == ""))
	if err != nil {
		return nil, err
	}
	defer closeListeners(lns)
	port := lns[0].Addr().(*net.TCPAddr).Port
	env := b.pgEnv(port, dbURL)
	for k, v := range extra {
		env[k] = v
	}
	var cmd *exec.Cmd
	srv := &pgServer{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if b.opt.profile != "" && bin == "" { // a baseline runs as built, unprofiled
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd = pinned(ctx, serverCPU, self, "_serve") // the second socket is its pprof listener
		srv.pprof = "http://" + lns[1].Addr().String()
	} else {
		if bin == "" {
			if bin, err = b.playgroundBin(ctx); err != nil {
				return nil, err
			}
		}
		cmd = pinned(ctx, serverCPU, bin, "serve")
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = b.tmp
	p, err := startProcess(name, cmd, filepath.Join(b.tmp, fmt.Sprintf("%s-%d.log", name, port)), lns...)
	if err != nil {
		return nil, err
	}
	srv.proc, srv.pid = p, p.pid()
	if err := waitHTTP(p, srv.url+"/healthz", 60*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return srv, nil
}

// pgTarget is Playground under test: one instance, or two on one Redis
// with the viewers split between them.
type pgTarget struct {
	b         *bench
	label     string
	transport string // "ws" or "sse"
	redisURL  string // set: two instances on this Redis
	bin       string // set: this playground binary (the baseline of an A/B run)
	servers   []*pgServer
	clients   []*pgClient
	seq       int
}

func (t *pgTarget) name() string { return t.label }

func (t *pgTarget) start(ctx context.Context) error {
	t.b.runs++
	dbURL := filepath.Join(t.b.tmp, fmt.Sprintf("pg-%d.db", t.b.runs))
	n, extra := 1, map[string]string(nil)
	if t.redisURL != "" {
		if err := flushRedis(ctx, t.redisURL); err != nil {
			return err
		}
		n, extra = 2, map[string]string{"REDIS_URL": t.redisURL}
	}
	for i := range n {
		s, err := t.b.startPlaygroundOf(ctx, t.bin, fmt.Sprintf("playground%d", i), dbURL, extra)
		for try := 0; err != nil && strings.Contains(err.Error(), "address already in use") && try < 3; try++ {
			// The free port was taken (by a viewer's ephemeral port) before the server bound it.
			s, err = t.b.startPlaygroundOf(ctx, t.bin, fmt.Sprintf("playground%d", i), dbURL, extra)
		}
		if err != nil {
			t.stop()
			return err
		}
		t.servers = append(t.servers, s)
	}
	owner := newPGClient(t.servers[0].url)
	if err := owner.register(ctx); err != nil {
		t.stop()
		return err
	}
	t.clients = []*pgClient{owner}
	for _, s := range t.servers[1:] {
		c := newPGClient(s.url)
		c.useToken(owner.token)
		t.clients = append(t.clients, c)
	}
	return nil
}

func (t *pgTarget) pids() []int {
	var out []int
	for _, s := range t.servers {
		out = append(out, s.pid)
	}
	return out
}

func (t *pgTarget) connect(ctx context.Context, i int) (viewer, error) {
	c := t.clients[i%len(t.clients)]
	if t.transport == "sse" {
		return newSSEViewer(t.b.dial, c), nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return dialWSViewer(cctx, t.b.dial, c)
}

// prepare plans an endless upstream stream at rate and starts a session
// on it; the stream waits for start.
func (t *pgTarget) prepare(ctx context.Context, rate, size int) (feed, error) {
	t.seq++
	key := fmt.Sprintf("fanout-%d-%d", t.b.runs, t.seq)
	st := t.b.up.plan(key, time.Second/time.Duration(rate), 0, size)
	id, err := t.clients[0].createSession(ctx, key, "openai/bench")
	if err != nil {
		t.b.up.forget(key)
		return nil, err
	}
	return &pgFeed{up: t.b.up, st: st, id: id}, nil
}

func (t *pgTarget) stop() {
	var wg sync.WaitGroup
	for _, s := range t.servers {
		wg.Add(1)
		go func() { defer wg.Done(); s.stop() }()
	}
	wg.Wait()
	for _, c := range t.clients {
		c.hc.CloseIdleConnections()
	}
	t.servers, t.clients = nil, nil
}

type pgFeed struct {
	up *upstream
	st *stream
	id string
}

func (f *pgFeed) session() string            { return f.id }
func (f *pgFeed) start()                     { f.st.open() }
func (f *pgFeed) countIn(t0, t1 int64) int64 { return f.st.countIn(t0, t1) }

func (f *pgFeed) stop() {
	f.st.finish()
	f.st.open() // a stream that never started ends at once
	f.up.forget(f.st.key)
}

func flushRedis(ctx context.Context, url string) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", url, err)
	}
	return nil
}

// cfTarget is Centrifugo v6 under test, on the same core with the same
// GOMAXPROCS, clients on its JSON protocol over WebSocket, publications
// through its HTTP API.
type cfTarget struct {
	b    *bench
	proc *process
	addr string
	hc   *http.Client
}

const cfAPIKey = "playbench-api-key"

func (t *cfTarget) name() string { return "centrifugo" }

// start retries on a taken port: Centrifugo binds the port its
// configuration names and cannot take a socket from us, so a port found
// free may be gone by the time it binds.
func (t *cfTarget) start(ctx context.Context) error {
	var err error
	for try := 0; try < 3; try++ {
		if err = t.startOnce(ctx); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return err
}

func (t *cfTarget) startOnce(ctx context.Context) error {
	bin, err := t.b.centrifugoBin(ctx)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	t.addr = fmt.Sprintf("127.0.0.1:%d", port)
	conf := map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": port},
		"log":         map[string]any{"level": "error"},
		"client":      map[string]any{"insecure": true, "allowed_origins": []string{"*"}},
		"http_api":    map[string]any{"key": cfAPIKey},
		"channel": map[string]any{"without_namespace": map[string]any{
			"allow_subscribe_for_client": true, "allow_subscribe_for_anonymous": true}},
		"health": map[string]any{"enabled": true},
	}
	b, _ := json.MarshalIndent(conf, "", "  ")
	path := filepath.Join(t.b.tmp, fmt.Sprintf("centrifugo-%d.json", port))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	cmd := pinned(ctx, serverCPU, bin, "--config", path)
	cmd.Dir = t.b.tmp
	if t.proc, err = startProcess("centrifugo", cmd, path+".log"); err != nil {
		return err
	}
	if err := waitHTTP(t.proc, "http://"+t.addr+"/health", 30*time.Second); err != nil {
		t.proc.stop()
		return err
	}
	t.hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return nil
}

func (t *cfTarget) pids() []int { return []int{t.proc.pid()} }

func (t *cfTarget) connect(ctx context.Context, _ int) (viewer, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return dialCFViewer(cctx, t.b.dial, t.addr)
}

func (t *cfTarget) prepare(_ context.Context, rate, size int) (feed, error) {
	return &cfFeed{loopFeed: newLoopFeed(rate), t: t, size: size}, nil
}

func (t *cfTarget) stop() {
	t.proc.stop()
	if t.hc != nil {
		t.hc.CloseIdleConnections()
	}
}

// cfFeed publishes open-loop into the channel "bench": each publication
// is posted on its own goroutine, so a slow answer never delays the next.
type cfFeed struct {
	loopFeed
	t    *cfTarget
	size int
	errs int // under loopFeed.mu
	pubs sync.WaitGroup
}

func (f *cfFeed) session() string { return "bench" }

func (f *cfFeed) start() {
	f.run(func(_ int, stamp int64) bool {
		f.pubs.Add(1)
		go f.publish(stamp)
		return true
	})
}

// loopFeed is the open-loop part of a feed: its goroutine, started once
// and stopped once, and the creation stamps of its chunks.
type loopFeed struct {
	every   time.Duration
	stopc   chan struct{}
	done    chan struct{}
	started bool
	once    sync.Once
	mu      sync.Mutex
	created []int64
}

func newLoopFeed(rate int) loopFeed {
	return loopFeed{every: time.Second / time.Duration(rate), stopc: make(chan struct{}), done: make(chan struct{})}
}

// run starts the goroutine, which records each chunk's stamp and hands
// it to each until stop (or each returns false).
func (f *loopFeed) run(each func(i int, stamp int64) bool) {
	f.started = true
	go func() {
		defer close(f.done)
		openLoop(f.every, f.stopc, func(i int, stamp int64) bool {
			f.mu.Lock()
			f.created = append(f.created, stamp)
			f.mu.Unlock()
			return each(i, stamp)
		})
	}()
}

// halt stops the goroutine and waits for it, then calls then; once.
func (f *loopFeed) halt(then func()) {
	f.once.Do(func() {
		close(f.stopc)
		if f.started {
			<-f.done
		}
		then()
	})
}

func (f *loopFeed) countIn(t0, t1 int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return countCreated(f.created, t0, t1)
}

// openLoop calls each every period until stop is closed or each returns
// false, with the chunk's number and creation stamp: a chunk built more
// than 1 ms late carries its due time, so that a stall of the load
// generator counts against the system rather than hiding.
func openLoop(every time.Duration, stop <-chan struct{}, each func(i int, stamp int64) bool) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	start := time.Now()
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i+1) * every)
		if d := time.Until(due); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
		now := time.Now()
		stamp := now.UnixNano()
		if now.Sub(due) > time.Millisecond {
			stamp = due.UnixNano()
		}
		if !each(i, stamp) {
			return
		}
	}
}

func (f *cfFeed) publish(stamp int64) {
	defer f.pubs.Done()
	body := make([]byte, 0, f.size+64)
	body = append(body, `{"channel":"bench","data":{"text":"`...)
	n := len(body)
	body = strconv.AppendInt(body, stamp, 10)
	body = append(body, ' ')
	for len(body)-n < f.size {
		body = append(body, 'x')
	}
	body = append(body, `"}}`...)
	req, _ := http.NewRequest("POST", "http://"+f.t.addr+"/api/publish", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", cfAPIKey)
	resp, err := f.t.hc.Do(req)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || bytes.Contains(b, []byte(`"error"`)) {
			err = fmt.Errorf("publish: %s %s", resp.Status, b)
		}
	}
	if err != nil {
		f.mu.Lock()
		f.errs++
		if f.errs == 1 {
			f.t.b.logf("   centrifugo: %v", err)
		}
		f.mu.Unlock()
	}
}

func (f *cfFeed) stop() { f.halt(f.pubs.Wait) }
