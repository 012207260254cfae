package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The gateway paths: the upstream read directly, through a stdlib reverse
// proxy, and through a Playground session read over SSE and WebSocket;
// with -baseline-bin, the same two through the baseline binary.
const (
	pathDirect = "direct"
	pathProxy  = "proxy"
	pathSSE    = "playground-sse"
	pathWS     = "playground-ws"
	pathSSEOld = "playground-sse-base"
	pathWSOld  = "playground-ws-base"
)

// gatewayPaths are the paths of a run, in the order they alternate.
func (b *bench) gatewayPaths() []string {
	if b.opt.baseBin == "" {
		return []string{pathDirect, pathProxy, pathSSE, pathWS}
	}
	return []string{pathDirect, pathProxy, pathSSE, pathSSEOld, pathWS, pathWSOld}
}

// ours reports whether path runs through a Playground session.
func ours(path string) bool { return path != pathDirect && path != pathProxy }

// overSSE reports whether a Playground path watches its session over SSE.
func overSSE(path string) bool { return path == pathSSE || path == pathSSEOld }

// gwResult is one path at one (gap, concurrency), all repetitions merged.
type gwResult struct {
	Path     string
	Gap      time.Duration
	C        int
	Streams  int64
	Errors   int64
	FirstErr string
	TTFT     *hist // first content chunk: creation → receipt
	Chunk    *hist // every later chunk: creation → receipt
	Create   *hist // POST /sessions (Playground paths)
	LoadGen  []float64
	Server   []float64       // server (or proxy) share of its core
	CPU      []time.Duration // server (or proxy) CPU time, per repetition
}

// cpuPerChunk is the server's (or proxy's) CPU time per chunk delivered.
func (r *gwResult) cpuPerChunk() time.Duration {
	n := r.TTFT.Count() + r.Chunk.Count()
	if n == 0 || len(r.CPU) == 0 {
		return 0
	}
	var sum time.Duration
	for _, c := range r.CPU {
		sum += c
	}
	return sum / time.Duration(n)
}

// invalid reports concurrent streams whose load generator ran too hot.
// One stream at a time is a closed loop: playbench is busy for most of
// it by construction (the direct path never leaves it), and nothing
// queues behind anything, so its load is no reason to doubt it.
func (r *gwResult) invalid() bool { return r.C > 1 && median(r.LoadGen) > 0.70 }

const gatewayChunks = 50

// gateway runs every path at every concurrency and gap, alternating the
// paths within each repetition.
func (b *bench) gateway(ctx context.Context) ([]*gwResult, error) {
	b.runs++
	srv, err := b.startPlayground(ctx, "playground-gw", filepath.Join(b.tmp, fmt.Sprintf("gw-%d.db", b.runs)), nil)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	proxy, proxyAddr, err := b.startProxy(ctx)
	if err != nil {
		return nil, err
	}
	defer proxy.stop()
	owner := newPGClient(srv.url)
	defer owner.hc.CloseIdleConnections()
	if err := owner.register(ctx); err != nil {
		return nil, err
	}
	servers := map[string]*pgServer{pathSSE: srv, pathWS: srv}
	owners := map[string]*pgClient{pathSSE: owner, pathWS: owner}
	if b.opt.baseBin != "" {
		bin, err := filepath.Abs(b.opt.baseBin)
		if err != nil {
			return nil, err
		}
		b.runs++
		old, err := b.startPlaygroundOf(ctx, bin, "playground-gw-base", filepath.Join(b.tmp, fmt.Sprintf("gw-%d.db", b.runs)), nil)
		if err != nil {
			return nil, err
		}
		defer old.stop()
		oldOwner := newPGClient(old.url)
		defer oldOwner.hc.CloseIdleConnections()
		if err := oldOwner.register(ctx); err != nil {
			return nil, err
		}
		servers[pathSSEOld], servers[pathWSOld] = old, old
		owners[pathSSEOld], owners[pathWSOld] = oldOwner, oldOwner
	}
	upAddr := strings.TrimPrefix(b.up.url, "http://")

	var out []*gwResult
	for _, gap := range b.opt.gaps {
		for _, c := range b.opt.streams {
			res := map[string]*gwResult{}
			for _, p := range b.gatewayPaths() {
				res[p] = &gwResult{Path: p, Gap: gap, C: c, TTFT: &hist{}, Chunk: &hist{}, Create: &hist{}}
			}
			iters := max(1, b.opt.gwStreams/c)
			for rep := 1; rep <= b.opt.reps; rep++ {
				for _, p := range b.gatewayPaths() {
					if ctx.Err() != nil {
						return out, ctx.Err()
					}
					r := res[p]
					pid := 0
					if p == pathProxy {
						pid = proxy.pid()
					} else if ours(p) {
						pid = servers[p].pid
					}
					var sm cpuMeter
					if pid != 0 {
						sm = startCPU(pid)
					}
					endProfile := func() {}
					if ours(p) && rep == 1 {
						endProfile = b.profileServer(servers[p], fmt.Sprintf("gateway-%s-gap%s-C%d", p, gap, c), 3)
					}
					self := startCPU(selfPID)
					_ = parallel(ctx, c, c, func(int) error {
						for range iters {
							err := b.gwStream(ctx, p, gap, owners[p], upAddr, proxyAddr, r)
							r.noteStream(err)
						}
						return nil
					})
					_, lg := self.stop()
					endProfile()
					r.LoadGen = append(r.LoadGen, lg)
					if pid != 0 {
						used, sc := sm.stop()
						r.Server = append(r.Server, sc)
						r.CPU = append(r.CPU, used)
					}
				}
			}
			for _, p := range b.gatewayPaths() {
				r := res[p]
				b.logf("   gateway gap=%s C=%d %-15s ttft p50 %s p99 %s chunk p50 %s p99 %s errors %d", gap, c, p,
					fmtDur(r.TTFT.Quantile(.5)), fmtDur(r.TTFT.Quantile(.99)), fmtDur(r.Chunk.Quantile(.5)), fmtDur(r.Chunk.Quantile(.99)), r.Errors)
				out = append(out, r)
			}
		}
	}
	return out, nil
}

var gwMu sync.Mutex

func (r *gwResult) noteStream(err error) {
	gwMu.Lock()
	defer gwMu.Unlock()
	r.Streams++
	if err == nil {
		return
	}
	r.Errors++
	if r.FirstErr == "" {
		r.FirstErr = err.Error()
	}
}

var gwSeq atomic.Int64

// readEvents reads an SSE stream until each reports its end. The events
// of one read carry the time that read returned.
func readEvents(s *sseClient, each func(data []byte, at time.Time) (end bool)) error {
	for end := false; !end; {
		var at time.Time
		err := s.Next(func(data []byte) {
			if at.IsZero() {
				at = time.Now()
			}
			end = each(data, at) || end
		})
		if err != nil && !end {
			return err
		}
	}
	return nil
}

// gwStream runs one stream of 50 chunks over path and records it in r.
func (b *bench) gwStream(ctx context.Context, path string, gap time.Duration, owner *pgClient, upAddr, proxyAddr string, r *gwResult) error {
	key := fmt.Sprintf("gw-%d", gwSeq.Add(1))
	st := b.up.plan(key, gap, gatewayChunks, b.opt.gwSize)
	defer b.up.forget(key)
	defer st.open()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	got := 0
	record := func(stamp int64, at time.Time) {
		lat := time.Duration(at.UnixNano() - stamp)
		if got == 0 {
			r.TTFT.Record(lat)
		} else {
			r.Chunk.Record(lat)
		}
		got++
	}
	switch path {
	case pathDirect, pathProxy:
		st.open()
		addr := upAddr
		if path == pathProxy {
			addr = proxyAddr
		}
		body := []byte(`{"model":"bench","stream":true,"messages":[{"role":"user","content":"` + key + `"}]}`)
		s, err := openSSE(ctx, b.dial, addr, "POST", "/v1/chat/completions", nil, body)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := readEvents(s, func(data []byte, at time.Time) bool {
			if bytes.HasPrefix(data, []byte("[DONE]")) {
				return true
			}
			if stamp, ok := stampAfter(data, keyContent); ok {
				record(stamp, at)
			}
			return false
		}); err != nil {
			return err
		}
	default: // a Playground session
		t0 := time.Now()
		id, err := owner.createSession(ctx, key, "openai/bench")
		if err != nil {
			return err
		}
		r.Create.Record(time.Since(t0))
		// event handles one of our events and reports the stream's end.
		event := func(line []byte, at time.Time) (end bool) {
			switch {
			case bytes.HasPrefix(line, ourSnap):
				st.open()
			case bytes.HasPrefix(line, ourChunk):
				if stamp, ok := stampAfter(line, keyText); ok {
					record(stamp, at)
				}
			case bytes.HasPrefix(line, ourDone):
				return true
			}
			return false
		}
		if overSSE(path) {
			s, err := openSSE(ctx, b.dial, owner.addr(), "GET", "/sessions/"+id+"/stream?since=0", owner.authHeader(), nil)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := readEvents(s, event); err != nil {
				return err
			}
			break
		}
		ws, err := dialWS(ctx, b.dial, owner.addr(), "/ws", owner.authHeader())
		if err != nil {
			return err
		}
		defer ws.Close()
		stop := context.AfterFunc(ctx, func() { ws.Close() })
		defer stop()
		if err := ws.WriteText([]byte(`{"type":"subscribe","sessionId":"` + id + `","since":0}`)); err != nil {
			return err
		}
		for end := false; !end; {
			msg, err := ws.Read()
			at := time.Now()
			if err != nil {
				return err
			}
			for _, line := range bytes.Split(msg, []byte("\n")) {
				if bytes.HasPrefix(line, ourError) {
					return errors.New(string(line))
				}
				end = event(line, at) || end
			}
		}
	}
	if got != gatewayChunks {
		return fmt.Errorf("%s: got %d of %d chunks", path, got, gatewayChunks)
	}
	return nil
}

// startProxy runs `playbench _proxy` in front of the upstream, pinned
// like the systems under test.
func (b *bench) startProxy(ctx context.Context) (*process, string, error) {
	if b.opt.inproc {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", err
		}
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- serveProxyOn(pctx, ln, b.up.url) }()
		return &process{name: "proxy", stopFn: func() { cancel(); <-done }}, ln.Addr().String(), nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	lns, err := listenLoopback(1)
	if err != nil {
		return nil, "", err
	}
	defer closeListeners(lns)
	addr := lns[0].Addr().String()
	cmd := pinned(ctx, serverCPU, self, "_proxy", "-target", b.up.url)
	p, err := startProcess("proxy", cmd, filepath.Join(b.tmp, "proxy.log"), lns...)
	if err != nil {
		return nil, "", err
	}
	if err := waitHTTP(p, "http://"+addr+"/_ready", 30*time.Second); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, addr, nil
}

// serveProxy is `playbench _proxy`: httputil.ReverseProxy as it comes,
// flushing every write, in front of target, on the socket it inherited
// (LISTEN_FDS) or else on listen.
func serveProxy(ctx context.Context, listen, target string) error {
	ln, err := inheritedOr(listen)
	if err != nil {
		return err
	}
	return serveProxyOn(ctx, ln, target)
}

func serveProxyOn(ctx context.Context, ln net.Listener, target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	mux := http.NewServeMux()
	mux.HandleFunc("/_ready", func(w http.ResponseWriter, _ *http.Request) {})
	mux.Handle("/", rp)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
