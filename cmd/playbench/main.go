// Command playbench measures Playground's live fan-out and its overhead as
// a gateway, side by side, in the same run, with Centrifugo, a stdlib
// reverse proxy and the upstream read directly.
//
//	go run ./cmd/playbench <scenario> [flags]
//
// Scenarios: fanout, fanout-sse, fanout-redis, centrifugo, gateway, all.
// The system under test runs as its own process on CPU 0 (GOMAXPROCS=1,
// taskset); playbench, the load generator (fake upstream, publisher,
// viewers), re-executes itself on CPU 1. See docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" // the _serve profiling listener
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/playground-dev/playground/internal/listenfd"
)

// The cores: the system under test on one, the load generator on the other.
var (
	serverCPU = 0
	loadCPU   = 1
	selfPID   = os.Getpid()
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pinSelf()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "playbench:", err)
		os.Exit(1)
	}
}

// pinSelf re-executes playbench on the load generator's core with
// GOMAXPROCS=1, once, when there are two cores and taskset.
func pinSelf() {
	if hostCPUs() < 2 {
		serverCPU, loadCPU = -1, -1
		return
	}
	if os.Getenv("PLAYBENCH_PINNED") != "" || !haveTaskset() || len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "_") ||
		os.Args[1] == "help" || strings.HasPrefix(os.Args[1], "-") {
		return
	}
	ts, _ := exec.LookPath("taskset")
	self, err := os.Executable()
	if err != nil {
		return
	}
	env := append(os.Environ(), "PLAYBENCH_PINNED=1", "GOMAXPROCS=1")
	args := append([]string{"taskset", "-c", strconv.Itoa(loadCPU), self}, os.Args[1:]...)
	err = execSelf(ts, args, env)
	fmt.Fprintln(os.Stderr, "playbench: could not pin itself, running unpinned:", err)
}

// hostCPUs counts the machine's processors (not this process's affinity).
func hostCPUs() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU()
	}
	return strings.Count(string(b), "\nprocessor") + boolInt(strings.HasPrefix(string(b), "processor"))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const usage = `usage: go run ./cmd/playbench <scenario> [flags]

scenarios:
  fanout        one session, V WebSocket viewers, N chunks/s, beside the floor (the same frames
                written to as many sockets by a bare program from one goroutine)
  fanout-sse    the same with SSE viewers, beside WebSocket viewers in the same run (SSE / WS ratios)
  fanout-redis  two instances on one Redis against one instance without it
  centrifugo    Playground (WebSocket) against Centrifugo v6 and the floor, same grid
  gateway       added latency against the upstream read directly and a reverse proxy
  all           the standard report (make bench)
  soak          two instances over a PostgreSQL and a Redis of its own, under load for -duration
                (default 10m), each restarted once; prints errors, lost or doubled events, RSS,
                goroutines and delivery spread (make soak)
  lb            three instances behind Debian's nginx (round robin, no sticky sessions) over a
                PostgreSQL and a Redis of its own, under load for -duration (default 5m: 200
                comparisons at a time of four demo models, 20 viewers each, all through the
                balancer); one instance killed halfway; prints delivery, lost and doubled events,
                each instance's CPU and memory, and how long the killed instance's viewers took to
                be told and to subscribe again (make loadtest)
  flood         -addr HOST:PORT: idle WebSockets from one loopback address against a running
                server, /healthz and a registration timed from another
`

// options are the flags.
type options struct {
	scenario string
	viewers  []int
	rates    []int
	sizes    []int
	warmup   time.Duration
	window   time.Duration
	grace    time.Duration
	settle   time.Duration
	reps     int
	out      string
	quick    bool

	streams   []int
	gaps      []time.Duration
	gwStreams int // streams per path and repetition at concurrency 1
	gwSize    int

	redisURL  string
	cfVersion string
	profile   string // directory for server profiles (runs the server as `playbench _serve`)
	inproc    bool   // the smoke test: the server in this process
	keep      bool
	bin       string // a prebuilt playground binary (A/B of a hot-path change)
	baseBin   string // a baseline playground binary, run alternately with the one under test
	args      []string
}

func parseOptions(args []string) (options, error) {
	var o options
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return o, errors.New(usage)
	}
	o.scenario, o.args = args[0], args
	switch o.scenario {
	case "fanout", "fanout-sse", "fanout-redis", "centrifugo", "gateway", "all":
	case "help":
		return o, errors.New(usage)
	default:
		return o, fmt.Errorf("unknown scenario %q\n%s", o.scenario, usage)
	}
	fs := flag.NewFlagSet("playbench "+o.scenario, flag.ContinueOnError)
	V := fs.String("V", "100,1000,10000", "viewer counts")
	N := fs.String("N", "50,200,500", "chunks per second")
	sizes := fs.String("size", "100,1024", "chunk text sizes in bytes")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before each measured window")
	fs.DurationVar(&o.window, "window", 5*time.Second, "measured window")
	fs.DurationVar(&o.grace, "grace", 2*time.Second, "how long to wait for stragglers after the window")
	fs.DurationVar(&o.settle, "settle", time.Second, "pause before each RSS reading")
	fs.IntVar(&o.reps, "reps", 3, "repetitions of each system (runs alternate A, B, A, B …)")
	fs.StringVar(&o.out, "out", "", "write the Markdown report here (also printed)")
	fs.BoolVar(&o.quick, "quick", false, "a tiny smoke run")
	streams := fs.String("streams", "1,16,64,256", "gateway: concurrent streams")
	gaps := fs.String("gaps", "1ms,0s", "gateway: gap between upstream chunks")
	fs.IntVar(&o.gwStreams, "gw-streams", 64, "gateway: streams per path and repetition (at least one per concurrent stream)")
	fs.IntVar(&o.gwSize, "gw-size", 20, "gateway: chunk text size in bytes")
	fs.StringVar(&o.redisURL, "redis", "redis://127.0.0.1:6379/9", "fanout-redis: a Redis database playbench may FLUSHDB")
	fs.StringVar(&o.cfVersion, "centrifugo-version", "v6.9.1", "centrifugo: the version to go install")
	fs.StringVar(&o.profile, "profile", "", "write server CPU and allocation profiles of each measured window here (runs the server in-process as `playbench _serve`)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, databases)")
	fs.StringVar(&o.bin, "playground-bin", "", "use this playground binary instead of building ./cmd/playground")
	fs.StringVar(&o.baseBin, "baseline-bin", "", "also run this playground binary (as playground-ws-base and playground-sse-base), alternating with the one under test, and report new / old")
	if err := fs.Parse(args[1:]); err != nil {
		return o, err
	}
	var err error
	if o.viewers, err = ints(*V); err == nil {
		if o.rates, err = ints(*N); err == nil {
			if o.sizes, err = ints(*sizes); err == nil {
				o.streams, err = ints(*streams)
			}
		}
	}
	if err != nil {
		return o, err
	}
	for _, g := range strings.Split(*gaps, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(g))
		if err != nil {
			return o, fmt.Errorf("-gaps: %w", err)
		}
		o.gaps = append(o.gaps, d)
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("V", func() { o.viewers = []int{10} })
		def("N", func() { o.rates = []int{100} })
		def("size", func() { o.sizes = []int{100} })
		def("warmup", func() { o.warmup = 300 * time.Millisecond })
		def("window", func() { o.window = 2 * time.Second })
		def("grace", func() { o.grace = time.Second })
		def("settle", func() { o.settle = 200 * time.Millisecond })
		def("reps", func() { o.reps = 1 })
		def("streams", func() { o.streams = []int{1, 4} })
		def("gw-streams", func() { o.gwStreams = 8 })
	}
	return o, nil
}

// newFlagSet is a flag set that reports errors instead of exiting.
func newFlagSet(name string) *flag.FlagSet { return flag.NewFlagSet(name, flag.ContinueOnError) }

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a list of positive whole numbers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// bench is one playbench run: its temporary directory, the fake upstream
// and the lazily built binaries.
type bench struct {
	opt  options
	tmp  string
	up   *upstream
	dial *dialer
	log  io.Writer
	runs int

	binOnce sync.Once
	bin     string
	binErr  error
	cfOnce  sync.Once
	cfBin   string
	cfErr   error
}

func newBench(opt options, log io.Writer) (*bench, error) {
	tmp, err := os.MkdirTemp("", "playbench-")
	if err != nil {
		return nil, err
	}
	up, err := newUpstream()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &bench{opt: opt, tmp: tmp, up: up, dial: &dialer{}, log: log}, nil
}

func (b *bench) close() {
	_ = b.up.Close()
	if b.opt.keep {
		b.logf("kept %s", b.tmp)
		return
	}
	os.RemoveAll(b.tmp)
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

func (b *bench) playgroundBin(ctx context.Context) (string, error) {
	b.binOnce.Do(func() {
		if b.opt.bin != "" {
			b.bin, b.binErr = filepath.Abs(b.opt.bin)
			return
		}
		b.logf("building ./cmd/playground")
		b.bin, b.binErr = buildPlayground(ctx, b.tmp)
	})
	return b.bin, b.binErr
}

// centrifugoBin installs Centrifugo into the temporary directory: never
// vendored, never committed.
func (b *bench) centrifugoBin(ctx context.Context) (string, error) {
	b.cfOnce.Do(func() {
		dir := filepath.Join(b.tmp, "bin")
		b.logf("go install github.com/centrifugal/centrifugo/v6@%s (into %s)", b.opt.cfVersion, dir)
		cmd := exec.CommandContext(ctx, "go", "install", "github.com/centrifugal/centrifugo/v6@"+b.opt.cfVersion)
		cmd.Dir = b.tmp
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.cfErr = fmt.Errorf("centrifugo unavailable: go install failed: %w\n%s", err, tailString(string(out), 1500))
			return
		}
		b.cfBin = filepath.Join(dir, "centrifugo")
	})
	return b.cfBin, b.cfErr
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "_serve":
			return internalServe(ctx, args[1:])
		case "_proxy":
			fs := flag.NewFlagSet("_proxy", flag.ContinueOnError)
			listen := fs.String("listen", "127.0.0.1:0", "")
			target := fs.String("target", "", "")
			if err := fs.Parse(args[1:]); err != nil {
				return err
			}
			return serveProxy(ctx, *listen, *target)
		case "_floor":
			return serveFloor(ctx)
		case "soak":
			return runSoak(ctx, args[1:], stdout, stderr)
		case "lb":
			return runLB(ctx, args[1:], stdout, stderr)
		case "flood":
			return runFlood(ctx, args[1:], stdout)
		}
	}
	opt, err := parseOptions(args)
	if err != nil {
		return err
	}
	limit := raiseFileLimit()
	if need := uint64(maxInt(opt.viewers)) + 1000; limit < need && opt.scenario != "gateway" {
		fmt.Fprintf(stderr, "playbench: warning: open-file limit %d is below the %d needed for %d viewers\n", limit, need, maxInt(opt.viewers))
	}
	b, err := newBench(opt, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	rep := newReport(b)
	if err := b.runScenario(ctx, rep); err != nil {
		return err
	}
	md := rep.markdown()
	fmt.Fprint(stdout, md)
	if opt.out != "" {
		path := opt.out
		if !filepath.IsAbs(path) {
			path = filepath.Join(moduleRoot(), path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
			return err
		}
		b.logf("wrote %s", path)
	}
	return ctx.Err()
}

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// internalServe is `playbench _serve`: Playground wired in-process (as
// serve wires one instance), on the first socket it inherited (LISTEN_FDS)
// or else PORT, with a pprof listener on the second, if passed.
func internalServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("_serve", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	lns, err := listenfd.Inherited(os.Getenv)
	if err != nil {
		return err
	}
	if len(lns) == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
		if err != nil {
			return err
		}
		lns = append(lns, ln)
	}
	s, err := startInproc(ctx, os.Getenv, lns[0], nil)
	if err != nil {
		closeListeners(lns)
		return err
	}
	if len(lns) > 1 {
		go http.Serve(lns[1], http.DefaultServeMux) //nolint:errcheck // ends with the process
	}
	<-ctx.Done()
	return s.Close()
}

// inheritedOr is the one socket this process inherited (LISTEN_FDS), or
// else a new one on addr.
func inheritedOr(addr string) (net.Listener, error) {
	lns, err := listenfd.Inherited(os.Getenv)
	if err != nil {
		return nil, err
	}
	if len(lns) > 0 {
		closeListeners(lns[1:])
		return lns[0], nil
	}
	return net.Listen("tcp", addr)
}
