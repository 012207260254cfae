package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// soakOptions are the soak's flags.
type soakOptions struct {
	duration time.Duration
	sessions int // running at a time
	viewers  int // per session
	keep     bool
	stacks   bool // end the instances with SIGQUIT: their logs keep every goroutine's stack
}

// soakModels are the four demo models every soak comparison asks for;
// demo/error always fails, so every session also ends in error.
var soakModels = []string{"demo/fast", "demo/steady", "demo/slow", "demo/error"}

// runSoak is `playbench soak`: two instances over a PostgreSQL and a Redis
// of its own, a steady load of comparisons and viewers, the database
// restarted once (a third of the way) and Redis once (two thirds), then
// the figures. It starts a throwaway PostgreSQL cluster (pg_createcluster
// on a free port, dropped at the end) and a redis-server, never touching
// the machine's own services, and stops everything it started, whatever
// happens, including on SIGINT.
func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o soakOptions
	fs := newFlagSet("playbench soak")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the load runs")
	fs.IntVar(&o.sessions, "sessions", 10, "comparisons running at a time")
	fs.IntVar(&o.viewers, "viewers", 10, "WebSocket viewers per comparison, split between the instances")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs)")
	fs.BoolVar(&o.stacks, "stacks", false, "end the instances with SIGQUIT, so that their logs hold every goroutine's stack (implies -keep)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sv, err := startServices(ctx, o.keep || o.stacks, stderr)
	if err != nil {
		return err
	}
	defer sv.close()
	b, pg, rd := sv.b, sv.pg, sv.rd
	servers, err := sv.startInstances(ctx, "soak", 2, nil)
	if err != nil {
		return err
	}
	// One client per instance, shared by every comparison, so that the
	// load keeps a bounded pool of connections rather than one per request.
	clients := make([]*pgClient, len(servers))
	for i, s := range servers {
		clients[i] = newPGClient(s.url)
	}
	if err := clients[0].register(ctx); err != nil {
		return err
	}
	for _, c := range clients[1:] {
		c.useToken(clients[0].token)
	}

	st := &soakStats{}
	for _, s := range servers {
		st.start = append(st.start, scrapeProcess(ctx, s.url))
	}
	b.logf("soak: %s, %d comparisons at a time of %d demo models, %d viewers each, 2 instances",
		o.duration, o.sessions, len(soakModels), o.viewers)
	lctx, stopLoad := context.WithTimeout(ctx, o.duration)
	defer stopLoad()
	var wg sync.WaitGroup
	for w := range o.sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; lctx.Err() == nil; i++ {
				st.runSession(lctx, servers, clients, w+o.sessions*i, o.viewers)
			}
		}()
	}
	// The faults, each once: the database a third of the way in, Redis at
	// two thirds; each stays down for five seconds.
	faults := []struct {
		at   time.Duration
		name string
		do   func() error
	}{
		{o.duration / 3, "PostgreSQL", func() error { return pg.restart(ctx, b, 5*time.Second) }},
		{2 * o.duration / 3, "Redis", func() error { return rd.restart(b, 5*time.Second) }},
	}
	began := time.Now()
	for _, f := range faults {
		select {
		case <-lctx.Done():
		case <-time.After(time.Until(began.Add(f.at))):
			b.logf("soak: restarting %s", f.name)
			if err := f.do(); err != nil {
				stopLoad()
				wg.Wait()
				return fmt.Errorf("soak: restart %s: %w", f.name, err)
			}
			b.logf("soak: %s is back", f.name)
		}
	}
	wg.Wait()
	// Let the last comparisons' goroutines end and close the load's idle
	// keep-alive connections, so the end figures count what the servers
	// keep, not what the load still holds open.
	for _, c := range clients {
		c.hc.CloseIdleConnections()
	}
	time.Sleep(3 * time.Second)
	for _, s := range servers {
		st.end = append(st.end, scrapeProcess(ctx, s.url))
	}
	fmt.Fprint(stdout, st.report(o))
	if o.stacks {
		for _, s := range servers {
			_ = s.proc.cmd.Process.Signal(syscall.SIGQUIT)
			<-s.proc.done
			s.proc.done <- nil
			b.logf("soak: goroutine stacks in %s", s.proc.log)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// services are what the soak and the load test run their instances
// against: a throwaway PostgreSQL cluster and a redis-server of their
// own, in a bench of their own; close stops the instances, drops the
// database and stops Redis.
type services struct {
	b         *bench
	pg        *throwawayPostgres
	rd        *ownRedis
	instances []*pgServer
}

func startServices(ctx context.Context, keep bool, log io.Writer) (*services, error) {
	b, err := newBench(options{keep: keep}, log)
	if err != nil {
		return nil, err
	}
	raiseFileLimit()
	sv := &services{b: b}
	if sv.pg, err = startThrowawayPostgres(ctx, b); err != nil {
		b.close()
		return nil, err
	}
	if sv.rd, err = startOwnRedis(b); err != nil {
		sv.pg.drop(b)
		b.close()
		return nil, err
	}
	return sv, nil
}

// startInstances starts n instances on the services (plus extra
// settings), named prefix0, prefix1 …
func (sv *services) startInstances(ctx context.Context, prefix string, n int, extra map[string]string) ([]*pgServer, error) {
	// demo/error fails every time, and ten of them can end before any
	// other column completes: the demo provider's breaker would open and
	// refuse the comparisons (400 model_unavailable), which is the
	// breaker working, not what the soak measures.
	env := map[string]string{"MODELS": strings.Join(soakModels, ","), "REDIS_URL": sv.rd.url(),
		"LOG_LEVEL": "warn", "QUOTA_FREE_PER_DAY": "1000000000", "PROVIDER_BREAKER_FAILURES": "1000000"}
	for k, v := range extra {
		env[k] = v
	}
	var started []*pgServer
	for i := range n {
		s, err := sv.b.startPlayground(ctx, fmt.Sprintf("%s%d", prefix, i), sv.pg.url(), env)
		if err != nil {
			return nil, err
		}
		started = append(started, s)
		sv.instances = append(sv.instances, s)
	}
	return started, nil
}

func (sv *services) close() {
	for _, s := range sv.instances {
		s.stop()
	}
	sv.rd.stop()
	sv.pg.drop(sv.b)
	sv.b.close()
}

// soakStats are the soak's counts; every field is safe for concurrent use.
type soakStats struct {
	sessions, complete      atomic.Int64
	createErrors, viewErrs  atomic.Int64
	reconnects, lost, twice atomic.Int64
	mismatches, interrupted atomic.Int64
	events                  atomic.Int64
	// recovered, when set, says whether another instance ended a
	// session whose owner it thought gone, and from which seq ("" when
	// not, or when it cannot tell).
	recovered func(ctx context.Context, id string) string
	// diffs describes the viewer texts that differ from the stored ones
	// (see textDiff): the first few, and a count per reason.
	diffs diffLog

	// killed is when the load test killed an instance (UnixNano; 0
	// before): viewers cut off after it count in told, and their next
	// subscription in resumed, both measured from the kill.
	killed atomic.Int64

	mu      sync.Mutex
	spread  []time.Duration // each delivery after the earliest of the same event
	told    []time.Duration
	resumed []time.Duration

	// The load test's: Redis calls and database writes over the run.
	redisCalls map[string]int64
	pgWrites   map[string]int64
	elapsed    time.Duration
	redisCores float64
	genCores   float64
	start      []processFigures
	end        []processFigures
	lastError  string
}

func (st *soakStats) fail(counter *atomic.Int64, err error) {
	counter.Add(1)
	st.mu.Lock()
	st.lastError = err.Error()
	st.mu.Unlock()
}

// runSession creates one comparison on an instance and has viewers
// watch it to done on both instances, resuming after any drop; then it
// checks every viewer's texts against the stored session.
func (st *soakStats) runSession(ctx context.Context, servers []*pgServer, clients []*pgClient, n, viewers int) {
	c := clients[n%len(clients)]
	token := c.token
	id, owner, err := c.createSessionVia(ctx, fmt.Sprintf("Soak prompt %d about CRDTs", n), soakModels...)
	if err != nil {
		if ctx.Err() == nil {
			st.fail(&st.createErrors, err)
			time.Sleep(time.Second) // a dependency may be down: do not spin
		}
		return
	}
	st.sessions.Add(1)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first = map[int64]time.Time{}
		seen  = make([]map[int64]time.Time, viewers)
		views = make([]*viewerLog, viewers)
	)
	for v := range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Viewers stay on past the load's end until done: a comparison
			// started is watched to its end.
			vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			vl := st.watch(vctx, servers[v%len(servers)].url, token, id)
			mu.Lock()
			seen[v], views[v] = vl.got, vl
			for seq, at := range vl.got {
				if f, ok := first[seq]; !ok || at.Before(f) {
					first[seq] = at
				}
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	var stored struct {
		Session struct {
			Responses []struct {
				ID, Text, Status string
				Error            *struct{ Code string }
			} `json:"responses"`
		} `json:"session"`
	}
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for try := 0; ; try++ {
		if err = c.do(gctx, "GET", "/sessions/"+id, nil, &stored); err == nil || try == 20 {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		st.fail(&st.viewErrs, err)
		return
	}
	st.complete.Add(1)
	recovered := ""
	if st.recovered != nil {
		recovered = st.recovered(gctx, id)
	}
	for _, r := range stored.Session.Responses {
		interrupted := r.Error != nil && r.Error.Code == "interrupted"
		if interrupted {
			st.interrupted.Add(1)
		}
		for v, vl := range views {
			if vl != nil && vl.texts[r.ID] != r.Text {
				st.mismatches.Add(1)
				status := r.Status
				if r.Error != nil {
					status += " " + r.Error.Code
				}
				st.diffs.add(textDiff{session: id, response: r.ID, viewer: v, view: vl, stored: r.Text, status: status,
					owner: owner, recovered: recovered, interrupted: interrupted})
			}
		}
	}
	var spread []time.Duration
	for _, got := range seen {
		for seq, at := range got {
			spread = append(spread, at.Sub(first[seq]))
		}
	}
	st.mu.Lock()
	st.spread = append(st.spread, spread...)
	st.mu.Unlock()
}

// viewerLog is what one viewer of a comparison saw: when each seq
// arrived, the texts its snapshots and chunks add up to, and how it got
// them.
type viewerLog struct {
	got       map[int64]time.Time
	texts     map[string]string
	done      bool     // it saw done
	served    []string // the instance behind each connection, in order
	snapshots int      // snapshots it was sent
	cut       bool     // cut off by the instance kill, then subscribed again
}

// watch follows one session over the WebSocket until done, resuming from
// the last seq after a drop. It counts events missing (a seq skipped) and
// doubled (a seq seen again), and returns when each seq arrived and the
// texts the chunks add up to.
func (st *soakStats) watch(ctx context.Context, base, token, id string) *viewerLog {
	vl := &viewerLog{got: map[int64]time.Time{}, texts: map[string]string{}}
	var last int64
	cut := false // dropped after an instance was killed, not yet subscribed again
	url := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			st.reconnects.Add(1)
			time.Sleep(min(time.Duration(attempt)*200*time.Millisecond, 2*time.Second))
		}
		c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
		if err != nil {
			st.fail(&st.viewErrs, err)
			continue
		}
		// The balancer names the instance behind the connection.
		vl.served = append(vl.served, resp.Header.Get("X-Upstream"))
		c.SetReadLimit(16 << 20)
		sub, _ := json.Marshal(map[string]any{"type": "subscribe", "sessionId": id, "since": last})
		if err := c.Write(ctx, websocket.MessageText, sub); err != nil {
			c.CloseNow()
			continue
		}
		done, err := st.read(ctx, c, vl, &last, &cut)
		c.CloseNow()
		if done {
			vl.done = true
			return vl
		}
		if err != nil && ctx.Err() == nil {
			st.fail(&st.viewErrs, err)
			cut = st.sinceKill(&st.told, time.Now())
			vl.cut = vl.cut || cut
		}
	}
	return vl
}

// read handles one connection's frames; it reports whether done came.
func (st *soakStats) read(ctx context.Context, c *websocket.Conn, vl *viewerLog, last *int64, cut *bool) (bool, error) {
	got, texts := vl.got, vl.texts
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return false, err
		}
		now := time.Now()
		for _, line := range strings.Split(string(data), "\n") {
			var ev struct {
				Type, ResponseID, Text, Code string
				Seq                          int64
				Session                      *struct {
					Responses []struct{ ID, Text string }
				}
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				return false, err
			}
			switch ev.Type {
			case "error":
				return false, fmt.Errorf("error event: %s", ev.Code)
			case "snapshot":
				for _, r := range ev.Session.Responses {
					texts[r.ID] = r.Text
				}
				vl.snapshots++
				*last = ev.Seq
				continue
			case "subscribed":
				if *cut {
					st.sinceKill(&st.resumed, now)
					*cut = false
				}
				continue
			case "presence", "pong", "next", "reveal":
				continue
			}
			st.events.Add(1)
			switch {
			case ev.Seq <= *last:
				st.twice.Add(1)
				continue
			case ev.Seq > *last+1:
				st.lost.Add(ev.Seq - *last - 1)
			}
			*last = ev.Seq
			got[ev.Seq] = now
			if ev.Type == "chunk" {
				texts[ev.ResponseID] += ev.Text
			}
			if ev.Type == "done" {
				return true, nil
			}
		}
	}
}

// sinceKill records at − the kill in figures, when an instance was
// killed at most a minute before at; it reports whether it did.
func (st *soakStats) sinceKill(figures *[]time.Duration, at time.Time) bool {
	k := st.killed.Load()
	if k == 0 || at.UnixNano() < k || at.Sub(time.Unix(0, k)) > time.Minute {
		return false
	}
	st.mu.Lock()
	*figures = append(*figures, at.Sub(time.Unix(0, k)))
	st.mu.Unlock()
	return true
}

// processFigures are an instance's figures from its /metrics.
type processFigures struct {
	rss        float64
	goroutines float64
}

func scrapeProcess(ctx context.Context, base string) processFigures {
	var f processFigures
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return f
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(val, 64)
		switch name {
		case "process_resident_memory_bytes":
			f.rss = v
		case "go_goroutines":
			f.goroutines = v
		}
	}
	return f
}

func (st *soakStats) report(o soakOptions) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	slices.Sort(st.spread)
	pct := func(p float64) time.Duration {
		if len(st.spread) == 0 {
			return 0
		}
		return st.spread[min(len(st.spread)-1, int(p*float64(len(st.spread))))]
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "## Soak: %s, two instances, PostgreSQL restarted at %s, Redis at %s\n\n",
		o.duration, o.duration/3, 2*o.duration/3)
	fmt.Fprintf(&sb, "| figure | value |\n|---|---:|\n")
	row := func(k string, v any) { fmt.Fprintf(&sb, "| %s | %v |\n", k, v) }
	row("comparisons started / checked at the end", fmt.Sprintf("%d / %d", st.sessions.Load(), st.complete.Load()))
	row(fmt.Sprintf("viewer events received (%d viewers each)", o.viewers), st.events.Load())
	row("events lost (a seq skipped)", st.lost.Load())
	row("events doubled (a seq seen twice)", st.twice.Load())
	row("viewer texts differing from the stored text", st.mismatches.Load())
	row("responses ended interrupted", st.interrupted.Load())
	row("create errors", st.createErrors.Load())
	row("viewer errors (drops, refused subscribes)", st.viewErrs.Load())
	row("viewer reconnects", st.reconnects.Load())
	row("delivery spread p50 / p99 / max", fmt.Sprintf("%v / %v / %v", pct(0.5).Round(time.Microsecond),
		pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond)))
	for i := range st.start {
		if i < len(st.end) {
			row(fmt.Sprintf("instance %d RSS start → end", i), fmt.Sprintf("%.1f → %.1f MiB", st.start[i].rss/(1<<20), st.end[i].rss/(1<<20)))
			row(fmt.Sprintf("instance %d goroutines start → end", i), fmt.Sprintf("%.0f → %.0f", st.start[i].goroutines, st.end[i].goroutines))
		}
	}
	if st.lastError != "" {
		fmt.Fprintf(&sb, "\nLast error seen: %s\n", st.lastError)
	}
	st.diffs.write(&sb)
	sb.WriteString("\nThe delivery spread is, for each event, how long after the first viewer to get it each other viewer got it, across both instances.\n")
	return sb.String()
}

// throwawayPostgres is a PostgreSQL cluster of the soak's own, made with
// pg_createcluster on a free port and dropped at the end.
type throwawayPostgres struct {
	version, name string
	port          int
}

func startThrowawayPostgres(ctx context.Context, b *bench) (*throwawayPostgres, error) {
	vs, err := os.ReadDir("/usr/lib/postgresql")
	if err != nil || len(vs) == 0 {
		return nil, errors.New("soak: no PostgreSQL server installed (apt-get install postgresql)")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	pg := &throwawayPostgres{version: vs[len(vs)-1].Name(), name: fmt.Sprintf("playbench%d", port), port: port}
	b.logf("soak: PostgreSQL %s cluster %s on port %d", pg.version, pg.name, port)
	if out, err := exec.CommandContext(ctx, "pg_createcluster", pg.version, pg.name, "-p", strconv.Itoa(port),
		"--start", "--", "--auth=trust").CombinedOutput(); err != nil {
		pg.drop(b)
		return nil, fmt.Errorf("soak: pg_createcluster: %w\n%s", err, out)
	}
	return pg, nil
}

func (pg *throwawayPostgres) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
}

// restart stops the cluster, waits down, and starts it again.
func (pg *throwawayPostgres) restart(ctx context.Context, b *bench, down time.Duration) error {
	if out, err := exec.CommandContext(ctx, "pg_ctlcluster", pg.version, pg.name, "stop", "-m", "fast").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctlcluster stop: %w\n%s", err, out)
	}
	time.Sleep(down)
	if out, err := exec.CommandContext(ctx, "pg_ctlcluster", pg.version, pg.name, "start").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctlcluster start: %w\n%s", err, out)
	}
	return nil
}

// drop stops and removes the cluster; it runs even when the soak was
// interrupted, so it does not use the soak's context.
func (pg *throwawayPostgres) drop(b *bench) {
	if out, err := exec.Command("pg_dropcluster", "--stop", pg.version, pg.name).CombinedOutput(); err != nil {
		b.logf("soak: pg_dropcluster %s %s: %v %s", pg.version, pg.name, err, out)
	}
}

// ownRedis is a redis-server of the soak's own, keeping nothing on disk.
type ownRedis struct {
	port int
	dir  string
	p    *process
}

func startOwnRedis(b *bench) (*ownRedis, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &ownRedis{port: port, dir: filepath.Join(b.tmp, "redis")}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	return r, r.start(b)
}

func (r *ownRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *ownRedis) start(b *bench) error {
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	p, err := startProcess("redis", cmd, filepath.Join(b.tmp, fmt.Sprintf("redis-%d.log", time.Now().UnixNano())))
	if err != nil {
		return err
	}
	r.p = p
	for range 100 {
		if out, err := exec.Command("redis-cli", "-p", strconv.Itoa(r.port), "ping").Output(); err == nil && strings.TrimSpace(string(out)) == "PONG" {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("soak: redis-server on %d did not answer\n%s", r.port, p.tail())
}

// restart kills the server (its data goes with it, as in a crash), waits
// down, and starts a fresh one on the same port.
func (r *ownRedis) restart(b *bench, down time.Duration) error {
	r.kill()
	time.Sleep(down)
	return r.start(b)
}

func (r *ownRedis) kill() {
	if r.p != nil {
		_ = r.p.cmd.Process.Kill()
		<-r.p.done
		r.p = nil
	}
}

func (r *ownRedis) stop() { r.kill() }
