package main

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// feed is the stream of one cell: a Playground session fed by the fake
// upstream, or a Centrifugo channel fed through its HTTP API.
type feed interface {
	session() string
	start()
	stop()
	// countIn is how many chunks were created in [t0, t1) (UnixNano).
	countIn(t0, t1 int64) int64
}

// target is one system under test for the fan-out scenarios.
type target interface {
	name() string
	start(ctx context.Context) error
	pids() []int
	// connect opens viewer i (spread over instances where there are several).
	connect(ctx context.Context, i int) (viewer, error)
	prepare(ctx context.Context, rate, size int) (feed, error)
	stop()
}

// cell is one point of the fan-out grid.
type cell struct{ V, N, Size int }

func (c cell) String() string { return fmt.Sprintf("V=%d N=%d/s %dB", c.V, c.N, c.Size) }

// cellResult is one measured window of one system on one cell.
type cellResult struct {
	System string
	Rep    int
	cell
	Window      time.Duration
	Expected    int64
	Delivered   int64
	Disconnects int64
	Codes       string
	P50, P99    time.Duration
	P999, Max   time.Duration
	ServerCPU   time.Duration
	ServerCores float64 // share of one core
	LoadGen     float64 // load generator's share of its core
	Other       float64 // every other process's CPU during the window, in cores
	RSSPerView  float64 // bytes per idle subscribed viewer (its own phase)
	Err         string
}

func (r cellResult) lost() int64 { return max(r.Expected-r.Delivered, 0) }

// invalid reports a cell whose load generator ran too hot to be believed.
func (r cellResult) invalid() bool { return r.LoadGen > 0.70 }

func (r cellResult) perCoreSecond() float64 {
	if r.ServerCPU <= 0 {
		return 0
	}
	return float64(r.Delivered) / r.ServerCPU.Seconds()
}

// fanout runs every system on every cell, rep after rep, alternating the
// systems within each viewer count: A, B, A, B …
func (b *bench) fanout(ctx context.Context, systems []func() target) []cellResult {
	var out []cellResult
	for rep := 1; rep <= b.opt.reps; rep++ {
		for _, v := range b.opt.viewers {
			for _, mk := range systems {
				if ctx.Err() != nil {
					return out
				}
				t := mk()
				b.logf("== %s rep %d/%d V=%d", t.name(), rep, b.opt.reps, v)
				out = append(out, b.runTarget(ctx, t, v, rep)...)
			}
		}
	}
	return out
}

// runTarget starts t, measures RSS per idle subscribed viewer, then runs
// each (N, size) cell with the same viewers.
func (b *bench) runTarget(ctx context.Context, t target, V, rep int) []cellResult {
	var cells []cell
	for _, n := range b.opt.rates {
		for _, size := range b.opt.sizes {
			cells = append(cells, cell{V, n, size})
		}
	}
	fail := func(err error) []cellResult {
		b.logf("   %s: %v", t.name(), err)
		var out []cellResult
		for _, c := range cells {
			out = append(out, cellResult{System: t.name(), Rep: rep, cell: c, Err: err.Error()})
		}
		return out
	}
	if err := t.start(ctx); err != nil {
		return fail(err)
	}
	defer t.stop()
	sleep(ctx, b.opt.settle)
	rss0 := sumRSS(t.pids())

	viewers := make([]viewer, V)
	if err := parallel(ctx, V, 64, func(i int) error {
		v, err := t.connect(ctx, i)
		viewers[i] = v
		return err
	}); err != nil {
		closeAll(viewers)
		return fail(fmt.Errorf("connect %d viewers: %w", V, err))
	}
	defer closeAll(viewers)

	var out []cellResult
	rssPer := -1.0
	var overloaded *cell // the first cell the system could not carry
	for _, c := range cells {
		if ctx.Err() != nil {
			break
		}
		if o := overloaded; o != nil && c.N >= o.N && c.Size >= o.Size {
			// A cell at least as heavy as one the system already could not
			// carry only costs time (minutes at 10 000 viewers), and its
			// backlog would spill into the next: not run.
			out = append(out, cellResult{System: t.name(), Rep: rep, cell: c,
				Err: fmt.Sprintf("not run: already overloaded at %d/s, %s", o.N, sizeStr(o.Size))})
			continue
		}
		if !waitIdle(ctx, t) {
			// The previous cell's backlog would count against this one.
			r := cellResult{System: t.name(), Rep: rep, cell: c,
				Err: "not run: the system was still busy with the previous cell after 30 s"}
			out = append(out, r)
			b.logf("   %-22s %s", c, r.Err)
			overloaded = &c
			continue
		}
		r := b.runCell(ctx, t, c, viewers, &rssPer, rss0)
		r.Rep = rep
		out = append(out, r)
		b.logf("   %-22s %s", c, r.short())
		if r.overloaded() && overloaded == nil {
			overloaded = &c
		}
	}
	return out
}

// overloaded reports a cell the system clearly could not carry: viewers
// that never subscribed, a tenth of the deliveries lost, or p99 over a
// second.
func (r cellResult) overloaded() bool {
	return r.Expected == 0 || r.lost()*10 > r.Expected || r.P99 > time.Second ||
		strings.HasPrefix(r.Err, "only ")
}

func (b *bench) runCell(ctx context.Context, t target, c cell, viewers []viewer, rssPer *float64, rss0 int64) cellResult {
	r := cellResult{System: t.name(), cell: c, Window: b.opt.window}
	// Viewers cut off in the previous cell come back first.
	for i, v := range viewers {
		if v == nil || !v.alive() {
			if v != nil {
				v.close()
			}
			nv, err := t.connect(ctx, i)
			if err != nil {
				r.Err = fmt.Sprintf("reconnect viewer: %v", err)
				viewers[i] = nil
				continue
			}
			viewers[i] = nv
		}
	}
	f, err := t.prepare(ctx, c.N, c.Size)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer f.stop()
	s := newSink()
	live := 0
	for _, v := range viewers {
		if v != nil {
			live++
		}
	}
	if err := parallel(ctx, len(viewers), 64, func(i int) error {
		if viewers[i] == nil {
			return nil
		}
		return viewers[i].watch(ctx, f, s)
	}); err != nil {
		r.Err = fmt.Sprintf("subscribe: %v", err)
		return r
	}
	deadline := time.Now().Add(20*time.Second + time.Duration(len(viewers))*time.Millisecond)
	for s.ready.Load() < int64(live) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	ready := s.ready.Load()
	if ready < int64(live) {
		r.Err = fmt.Sprintf("only %d of %d viewers subscribed", ready, live)
		if e := s.firstErr.Load(); e != nil {
			r.Err += ": " + *e
		}
	}
	if *rssPer < 0 {
		// Its own phase: every viewer subscribed, nothing flowing yet.
		sleep(ctx, b.opt.settle)
		*rssPer = float64(sumRSS(t.pids())-rss0) / float64(len(viewers))
		b.profileIdle(t, len(viewers))
	}
	r.RSSPerView = *rssPer

	f.start()
	sleep(ctx, b.opt.warmup)
	// The window [t0, t1) is set before it opens: a chunk is in it or not
	// for the viewers' sink and for the feed's count alike, whenever it
	// arrives. (Set as it opened and closed, a chunk created between
	// reading the clock and setting the bound was counted by one and not
	// the other: "delivered 1500 of 1490".)
	t0 := time.Now().Add(20 * time.Millisecond).UnixNano()
	t1 := t0 + b.opt.window.Nanoseconds()
	s.t0.Store(t0)
	s.t1.Store(t1)
	sleep(ctx, time.Until(time.Unix(0, t0)))
	var meters []cpuMeter
	for _, pid := range cpuPIDs(t) {
		meters = append(meters, startCPU(pid))
	}
	self := startCPU(selfPID)
	busy0, wall0 := machineBusy(), time.Now()
	endProfile := b.profileWindow(t, c)
	sleep(ctx, time.Until(time.Unix(0, t1)))
	for _, m := range meters {
		used, share := m.stop()
		r.ServerCPU += used
		r.ServerCores += share
	}
	lgUsed, lgShare := self.stop()
	r.LoadGen = lgShare
	r.Other = max(0, (machineBusy()-busy0-r.ServerCPU-lgUsed).Seconds()/time.Since(wall0).Seconds())
	endProfile()
	// A chunk due in the window but built late carries its due time, so
	// the window's count is final once the feed has made one after it.
	for waited := time.Now(); f.countIn(t1, math.MaxInt64) == 0 && time.Since(waited) < b.opt.grace && ctx.Err() == nil; {
		time.Sleep(5 * time.Millisecond)
	}
	r.Expected = f.countIn(t0, t1) * ready
	// Grace: what was created in the window may still be on its way.
	last, lastChange := s.h.Count(), time.Now()
	for s.h.Count() < r.Expected && time.Since(lastChange) < b.opt.grace && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if n := s.h.Count(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	r.Delivered = s.h.Count()
	r.Disconnects = s.disconnects.Load()
	r.Codes = s.codes()
	r.P50, r.P99, r.P999, r.Max = s.h.Quantile(0.50), s.h.Quantile(0.99), s.h.Quantile(0.999), s.h.Max()
	if r.Err == "" && r.Disconnects > 0 {
		if e := s.firstErr.Load(); e != nil {
			r.Err = *e
		}
	}
	return r
}

func (r cellResult) short() string {
	if r.Expected == 0 && r.Err != "" {
		return "error: " + r.Err
	}
	s := fmt.Sprintf("%8.0f ev/s lost %d (%d cut) p50 %s p99 %s p99.9 %s cpu %.0f%% %.2fs/M lg %.0f%% other %.0f%% rss/v %.1fKiB",
		float64(r.Delivered)/r.Window.Seconds(), r.lost(), r.Disconnects, fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.P999),
		r.ServerCores*100, r.cpuPerM(), r.LoadGen*100, r.Other*100, r.RSSPerView/1024)
	if r.Err != "" {
		s += " [" + r.Err + "]"
	}
	return s
}

// cpuPerM is server CPU-seconds per million deliveries.
func (r cellResult) cpuPerM() float64 {
	if r.Delivered == 0 {
		return 0
	}
	return r.ServerCPU.Seconds() / float64(r.Delivered) * 1e6
}

func sumRSS(pids []int) int64 {
	var n int64
	for _, p := range pids {
		v, _ := rss(p)
		n += v
	}
	return n
}

func closeAll(vs []viewer) {
	for _, v := range vs {
		if v != nil {
			v.close()
		}
	}
}

// parallel runs fn(0..n-1) on up to width goroutines and returns the
// first error.
func parallel(ctx context.Context, n, width int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range min(width, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// median of a non-empty slice of floats.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// cpuPIDs are the processes whose CPU the system under test spends: its
// own, and the Redis server's for a pair that fans out through Redis.
// waitIdle waits until the system under test has digested the previous
// cell: its processes together below a tenth of a core over half a second.
// It reports false after 30 s.
func waitIdle(ctx context.Context, t target) bool {
	deadline := time.Now().Add(30 * time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		var ms []cpuMeter
		for _, pid := range cpuPIDs(t) {
			ms = append(ms, startCPU(pid))
		}
		sleep(ctx, 500*time.Millisecond)
		busy := 0.0
		for _, m := range ms {
			_, share := m.stop()
			busy += share
		}
		if busy < 0.1 {
			return true
		}
	}
	return false
}

func cpuPIDs(t target) []int {
	pids := t.pids()
	if pt, ok := t.(*pgTarget); ok && pt.redisURL != "" {
		if out, err := exec.Command("pidof", "redis-server").Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if n, err := strconv.Atoi(f); err == nil {
					pids = append(pids, n)
				}
			}
		}
	}
	return pids
}
