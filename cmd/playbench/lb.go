package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground/config"
	"github.com/playground-dev/playground/internal/balancer"
)

// lbOptions are the load test's flags.
type lbOptions struct {
	duration  time.Duration
	sessions  int // running at a time
	viewers   int // per session
	instances int
	killAt    time.Duration // 0: no instance is killed
	keep      bool
}

// instanceLoad is one instance's CPU and memory over the run.
type instanceLoad struct {
	name      string
	cpu       []float64 // cores, one sample a second
	rssPeak   int64
	rssLast   int64
	viewers   string // playground_live_viewers before the kill
	killed    bool
	aliveTime time.Duration
}

// runLB is `playbench lb`: three instances over a PostgreSQL and a Redis
// of its own, behind Debian's nginx (round robin, no sticky sessions);
// comparisons are created and watched through the balancer only, so it
// alone spreads them. Halfway through, one instance is killed (SIGKILL);
// its viewers are cut off, and the report says how long they took to be
// told and to be subscribed again through the balancer, on another
// instance. It stops everything it started, whatever happens.
func runLB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o lbOptions
	fs := newFlagSet("playbench lb")
	fs.IntVar(&o.instances, "instances", 3, "Playground instances behind the balancer")
	kill := fs.Float64("kill-at", 0.5, "kill one instance this far into the run (0: none)")
	fs.DurationVar(&o.duration, "duration", 5*time.Minute, "how long the load runs")
	fs.IntVar(&o.sessions, "sessions", 200, "comparisons running at a time")
	fs.IntVar(&o.viewers, "viewers", 20, "WebSocket viewers per comparison, each connected through the balancer")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, nginx configuration)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.killAt = time.Duration(*kill * float64(o.duration))
	sv, err := startServices(ctx, o.keep, stderr)
	if err != nil {
		return err
	}
	defer sv.close()
	b, pg, rd := sv.b, sv.pg, sv.rd
	// nginx speaks for every viewer: its address is not one client's.
	servers, err := sv.startInstances(ctx, "lb", o.instances, map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32"})
	if err != nil {
		return err
	}
	st := &soakStats{}
	st.diffs.names = map[string]string{}
	if opt, err := redis.ParseURL(rd.url()); err == nil {
		rc := redis.NewClient(opt)
		defer rc.Close()
		st.recovered = func(ctx context.Context, id string) string { return recoveredMark(ctx, rc, id) }
	}
	var upstreams []string
	for i, s := range servers {
		upstreams = append(upstreams, strings.TrimPrefix(s.url, "http://"))
		st.diffs.names[upstreams[i]] = fmt.Sprintf("lb%d", i)
	}
	dir := filepath.Join(b.tmp, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lb, err := balancer.Start(ctx, balancer.Options{Upstreams: upstreams, Dir: dir, Connections: o.sessions*o.viewers + 1000})
	if err != nil {
		return err
	}
	defer lb.Stop()
	front := newPGClient(lb.URL)
	if err := front.register(ctx); err != nil {
		return err
	}
	b.logf("lb: %s, %d comparisons at a time of %d demo models, %d viewers each, %d instances behind nginx on %s",
		o.duration, o.sessions, len(soakModels), o.viewers, o.instances, lb.URL)

	loads := make([]*instanceLoad, len(servers))
	for i := range servers {
		loads[i] = &instanceLoad{name: fmt.Sprintf("lb%d", i)}
	}
	lctx, stopLoad := context.WithTimeout(ctx, o.duration)
	defer stopLoad()
	redis0, pg0 := redisCommands(ctx, rd.url()), pgWrites(ctx, pg.url())
	redisCPU, genCPU := startCPU(rd.p.pid()), startCPU(selfPID)
	began := time.Now()
	var mwg sync.WaitGroup
	mwg.Add(1)
	go func() { // samples CPU and memory until the load ends
		defer mwg.Done()
		sampleInstances(lctx, servers, loads)
	}()
	var wg sync.WaitGroup
	via := []*pgServer{{url: lb.URL}}
	for w := range o.sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Start the workers over the first ten seconds, not all at once.
			select {
			case <-time.After(time.Duration(w) * 10 * time.Second / time.Duration(o.sessions)):
			case <-lctx.Done():
				return
			}
			for i := 0; lctx.Err() == nil; i++ {
				st.runSession(lctx, via, []*pgClient{front}, w+o.sessions*i, o.viewers)
			}
		}()
	}
	victim := -1
	if o.killAt > 0 {
		select {
		case <-lctx.Done():
		case <-time.After(time.Until(began.Add(o.killAt))):
			victim = len(servers) - 1
			for i, s := range servers {
				loads[i].viewers = scrapeMetric(ctx, s.url, "playground_live_viewers")
			}
			b.logf("lb: killing instance %s (SIGKILL)", loads[victim].name)
			st.killed.Store(time.Now().UnixNano())
			_ = servers[victim].proc.cmd.Process.Signal(syscall.SIGKILL)
			loads[victim].killed, loads[victim].aliveTime = true, time.Since(began)
		}
	}
	<-lctx.Done()
	b.logf("lb: load ended; waiting for the last comparisons")
	wg.Wait()
	mwg.Wait()
	st.redisCalls = diffCounts(redis0, redisCommands(ctx, rd.url()))
	st.pgWrites = diffCounts(pg0, pgWrites(ctx, pg.url()))
	st.elapsed = time.Since(began)
	_, st.redisCores = redisCPU.stop()
	_, st.genCores = genCPU.stop()
	front.hc.CloseIdleConnections()
	fmt.Fprint(stdout, st.lbReport(o, loads, victim))
	return ctx.Err()
}

// recoveredMark says whether an instance other than its owner ended the
// session (the owner seemed gone), from the marker the recovery leaves
// in Redis for the replay window: "recovered after seq N", or "not
// recovered".
func recoveredMark(ctx context.Context, rc *redis.Client, id string) string {
	seq, err := rc.Get(ctx, config.DefaultRedisPrefix+"s:{"+id+"}:recovered").Result()
	switch {
	case err == redis.Nil:
		return "not recovered"
	case err != nil:
		return "recovery unknown"
	}
	return "recovered after seq " + seq
}
