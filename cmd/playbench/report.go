package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// runScenario runs the chosen scenario into rep.
func (b *bench) runScenario(ctx context.Context, rep *report) error {
	ours := func(label, transport, redisURL string) func() target {
		return func() target { return &pgTarget{b: b, label: label, transport: transport, redisURL: redisURL} }
	}
	cf := func() target { return &cfTarget{b: b} }
	floor := func() target { return &floorTarget{b: b} }
	// With a baseline binary, each system of ours runs old and new in turn.
	withBase := func(label, transport string) []func() target {
		out := []func() target{ours(label, transport, "")}
		if b.opt.baseBin != "" {
			bin, _ := filepath.Abs(b.opt.baseBin)
			out = append(out, func() target {
				return &pgTarget{b: b, label: label + "-base", transport: transport, bin: bin}
			})
		}
		return out
	}
	withGrid := func(viewers, rates, sizes []int, f func()) {
		saved := b.opt
		if viewers != nil {
			b.opt.viewers = viewers
		}
		if rates != nil {
			b.opt.rates = rates
		}
		if sizes != nil {
			b.opt.sizes = sizes
		}
		f()
		b.opt.viewers, b.opt.rates, b.opt.sizes = saved.viewers, saved.rates, saved.sizes
	}
	sse := func() { rep.sse = b.fanout(ctx, withBase("playground-sse", "sse")) }
	redis := func() {
		rep.redis = b.fanout(ctx, []func() target{ours("playground", "ws", ""), ours("playground-redis", "ws", b.opt.redisURL)})
	}
	centrifugo := func() {
		if _, err := b.centrifugoBin(ctx); err != nil {
			b.logf("%v", err)
			rep.notes = append(rep.notes, "Centrifugo was unavailable in this run ("+firstLine(err.Error())+"): the fan-out is compared with the floor only")
			rep.fanout = b.fanout(ctx, append(withBase("playground-ws", "ws"), floor))
			return
		}
		rep.fanout = b.fanout(ctx, append(withBase("playground-ws", "ws"), cf, floor))
	}
	gateway := func() error {
		res, err := b.gateway(ctx)
		rep.gateway = res
		return err
	}
	switch b.opt.scenario {
	case "fanout":
		rep.fanout = b.fanout(ctx, append(withBase("playground-ws", "ws"), floor))
	case "fanout-sse":
		// WebSocket viewers in the same run, alternating, for the SSE / WS
		// ratios and targets.
		res := b.fanout(ctx, append(withBase("playground-sse", "sse"), ours("playground-ws", "ws", "")))
		for _, c := range res {
			if c.System == "playground-ws" {
				rep.fanout = append(rep.fanout, c)
			} else {
				rep.sse = append(rep.sse, c)
			}
		}
	case "fanout-redis":
		redis()
	case "centrifugo":
		centrifugo()
	case "gateway":
		return gateway()
	case "all":
		centrifugo()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if b.opt.quick {
			sse()
			redis()
		} else {
			// The reduced grids of the standard run (see the report).
			withGrid(nil, nil, []int{100}, sse)
			withGrid([]int{100, 1000}, []int{50, 500}, []int{100}, redis)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return gateway()
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// profileWindow fetches the server's CPU profile over the measured window
// and its allocation profile after it, when profiling.
func (b *bench) profileWindow(t target, c cell) func() {
	pt, ok := t.(*pgTarget)
	if !ok || len(pt.servers) == 0 {
		return func() {}
	}
	name := fmt.Sprintf("%s-V%d-N%d-%dB", pt.label, c.V, c.N, c.Size)
	return b.profileServer(pt.servers[0], name, max(1, int(b.opt.window.Seconds())))
}

// profileServer starts a CPU profile of secs seconds of srv (when it runs
// with a pprof listener); the returned func waits for it and then takes
// the allocation profile.
func (b *bench) profileServer(srv *pgServer, name string, secs int) func() {
	if b.opt.profile == "" || srv.pprof == "" {
		return func() {}
	}
	_ = os.MkdirAll(b.opt.profile, 0o755)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fetch(srv.pprof+fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), filepath.Join(b.opt.profile, "cpu-"+name+".pprof"))
	}()
	return func() {
		<-done
		fetch(srv.pprof+"/debug/pprof/allocs", filepath.Join(b.opt.profile, "allocs-"+name+".pprof"))
	}
}

// profileIdle takes the server's heap (after a GC) and goroutine profiles
// while V viewers are subscribed and nothing flows, when profiling: what an
// idle viewer costs, object by object.
func (b *bench) profileIdle(t target, V int) {
	pt, ok := t.(*pgTarget)
	if !ok || len(pt.servers) == 0 || b.opt.profile == "" || pt.servers[0].pprof == "" {
		return
	}
	_ = os.MkdirAll(b.opt.profile, 0o755)
	name := fmt.Sprintf("%s-V%d-idle", pt.label, V)
	base := pt.servers[0].pprof + "/debug/pprof/"
	fetch(base+"heap?gc=1", filepath.Join(b.opt.profile, "heap-"+name+".pprof"))
	fetch(base+"heap?debug=1", filepath.Join(b.opt.profile, "heap-"+name+".txt")) // ends with the runtime's MemStats
	fetch(base+"goroutine", filepath.Join(b.opt.profile, "goroutine-"+name+".pprof"))
}

func fetch(url, path string) {
	resp, err := http.Get(url)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

// report turns the results into Markdown.
type report struct {
	b       *bench
	started time.Time
	fanout  []cellResult // playground-ws, and centrifugo when it ran
	sse     []cellResult
	redis   []cellResult
	gateway []*gwResult
	notes   []string
	load    string // the machine's load as the run started
}

func newReport(b *bench) *report { return &report{b: b, started: time.Now(), load: machineLoad()} }

// agg is one system's cell over its repetitions.
type agg struct {
	system string
	cell
	reps        []cellResult
	evs         float64
	lost, cut   int64
	p50, p99    time.Duration
	p999        time.Duration
	cpuPerM     float64
	perCore     float64
	rss         float64
	lg          float64
	other       float64
	err         string
	valid, sust bool
}

func aggregate(rs []cellResult) []*agg {
	var out []*agg
	idx := map[string]*agg{}
	for _, r := range rs {
		k := r.System + "|" + r.cell.String()
		a := idx[k]
		if a == nil {
			a = &agg{system: r.System, cell: r.cell}
			idx[k] = a
			out = append(out, a)
		}
		a.reps = append(a.reps, r)
	}
	for _, a := range out {
		var evs, p50, p99, p999, cpm, pc, rss []float64
		a.valid, a.sust = true, true
		for _, r := range a.reps {
			if r.Err != "" {
				if a.err == "" {
					a.err = r.Err
				}
				a.sust = false // viewers missing, say: not a clean run
			}
			if r.Expected == 0 {
				a.sust = false
				continue
			}
			evs = append(evs, float64(r.Delivered)/r.Window.Seconds())
			a.lost += r.lost()
			a.cut += r.Disconnects
			p50 = append(p50, float64(r.P50))
			p99 = append(p99, float64(r.P99))
			p999 = append(p999, float64(r.P999))
			cpm = append(cpm, r.cpuPerM())
			pc = append(pc, r.perCoreSecond())
			rss = append(rss, r.RSSPerView)
			a.lg = max(a.lg, r.LoadGen)
			a.other = max(a.other, r.Other)
			if r.invalid() {
				a.valid = false
			}
			if r.lost() > 0 || r.Disconnects > 0 || r.P99 >= 50*time.Millisecond {
				a.sust = false
			}
		}
		if len(evs) == 0 {
			a.valid = false
			continue
		}
		a.evs, a.cpuPerM, a.perCore, a.rss = median(evs), median(cpm), median(pc), median(rss)
		a.p50, a.p99, a.p999 = time.Duration(median(p50)), time.Duration(median(p99)), time.Duration(median(p999))
		a.sust = a.sust && a.valid
	}
	return out
}

// sameCells yields each cell that system a ran, with b's run of the same
// cell; a cell b did not run is passed over.
func sameCells(as []*agg, a, b string) iter.Seq2[*agg, *agg] {
	return func(yield func(*agg, *agg) bool) {
		for _, x := range as {
			if x.system != a {
				continue
			}
			if y := pick(as, b, x.cell); y != nil && !yield(x, y) {
				return
			}
		}
	}
}

func pick(as []*agg, system string, c cell) *agg {
	for _, a := range as {
		if a.system == system && a.cell == c {
			return a
		}
	}
	return nil
}

func systems(as []*agg) []string { return distinct(as, func(a *agg) string { return a.system }) }

// distinct is key of each of as, each value once, in the order first seen.
func distinct[T comparable](as []*agg, key func(*agg) T) []T {
	var out []T
	for _, a := range as {
		if k := key(a); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func (r *report) markdown() string {
	var w bytes.Buffer
	o := r.b.opt
	fmt.Fprintf(&w, "# Playground benchmarks\n\n")
	fmt.Fprintf(&w, "Generated by `go run ./cmd/playbench %s` on %s (took %s).\n\n", strings.Join(o.args, " "),
		r.started.UTC().Format("2006-01-02 15:04 UTC"), time.Since(r.started).Round(time.Second))
	fmt.Fprintf(&w, "## Machine and method\n\n")
	fmt.Fprintf(&w, "- machine: %d CPUs, %s, Linux %s, %s\n", hostCPUs(), cpuModel(), kernel(), runtime.Version())
	if serverCPU >= 0 && haveTaskset() {
		fmt.Fprintf(&w, "- layout: each system under test is its own process on CPU %d (`taskset -c %d`, `GOMAXPROCS=1`); playbench (fake upstream, publisher, viewers) runs on CPU %d with `GOMAXPROCS=1`\n", serverCPU, serverCPU, loadCPU)
	} else {
		fmt.Fprintf(&w, "- layout: **not pinned** (fewer than two CPUs or no taskset): numbers are indicative only\n")
	}
	if o.inproc {
		fmt.Fprintf(&w, "- **in-process server** (smoke test): CPU and memory numbers include the load generator\n")
	}
	if o.profile != "" {
		fmt.Fprintf(&w, "- profiling run: the server is Playground wired in-process by `playbench _serve` (same packages as `playground serve`) with a pprof listener\n")
	}
	fmt.Fprintf(&w, "- fan-out: per cell a %s warm-up, then a %s measured window; %d repetitions, systems alternating A, B, A, B …; the table shows the median of the repetitions (lost and cut-off viewers summed)\n",
		o.warmup, o.window, o.reps)
	fmt.Fprintf(&w, "- the fake upstream and the Centrifugo publisher are open-loop at N chunks/s; each chunk's text starts with its creation time (UnixNano; a chunk built more than 1 ms late carries its due time, so stalls count); latency = receipt − creation, one host, one clock\n")
	fmt.Fprintf(&w, "- lost = chunks created in the window × viewers − chunks received (within %s after the window); cut = viewers disconnected by the server; CPU from `/proc/<pid>/stat`; RSS per viewer = (RSS with V idle subscribed viewers − RSS with none) / V, measured before the first cell; load gen = playbench's share of its core during the window (above 70 %%: the cell is marked invalid); other load = the CPU every other process on the machine used during the window (worst repetition, in cores): this machine is shared, and where it is high, latency suffers from CPU contention that is not the system's own\n", o.grace)
	fmt.Fprintf(&w, "- machine load when the run started: %s; when it ended: %s\n", r.load, machineLoad())
	fmt.Fprintf(&w, "- each cell starts once the system under test is idle again (below a tenth of a core for half a second, at most 30 s of waiting), so that one cell's backlog does not count against the next\n")
	fmt.Fprintf(&w, "- sustainable = zero loss, no viewer cut off, no error, p99 < 50 ms in every repetition, and valid; once a cell overloads a system (viewers not subscribed in time, over a tenth lost, or p99 over 1 s), the heavier cells of that row are not run in that repetition\n")
	for _, n := range r.notes {
		fmt.Fprintf(&w, "- **note:** %s\n", n)
	}
	fmt.Fprintln(&w)

	var targets []targetLine
	if len(r.fanout) > 0 {
		as := aggregate(r.fanout)
		fmt.Fprintf(&w, "## Fan-out over WebSocket\n\n")
		for _, s := range systems(as) {
			fmt.Fprintf(&w, "### %s\n\n", s)
			fanoutTable(&w, as, s)
		}
		targets = append(targets, fanoutTargets(as, "playground-ws")...)
		if slices.Contains(systems(as), "centrifugo") {
			fmt.Fprintf(&w, "### Playground / Centrifugo\n\n")
			targets = append(targets, centrifugoTable(&w, as)...)
		}
		if slices.Contains(systems(as), "floor") {
			fmt.Fprintf(&w, "### Against the floor\n\n")
			if !slices.Contains(systems(as), "centrifugo") {
				fmt.Fprintf(&w, "Centrifugo did not run (see the notes): floor ratios only.\n\n")
			}
			targets = append(targets, floorTable(&w, as)...)
		}
		if slices.Contains(systems(as), "playground-ws-base") {
			fmt.Fprintf(&w, "### New / baseline binary\n\n")
			ratioTable(&w, as, "playground-ws", "playground-ws-base")
		}
	}
	if len(r.sse) > 0 {
		as := aggregate(r.sse)
		fmt.Fprintf(&w, "## Fan-out over SSE\n\n")
		if o.scenario == "all" && !o.quick {
			fmt.Fprintf(&w, "Reduced grid in the standard run: 100 B chunks only.\n\n")
		}
		for _, s := range systems(as) {
			fanoutTable(&w, as, s)
		}
		if len(r.fanout) > 0 {
			all := aggregate(append(slices.Clone(r.fanout), r.sse...))
			ratioTable(&w, all, "playground-sse", "playground-ws")
			targets = append(targets, sseTargets(all)...)
		}
		if slices.Contains(systems(as), "playground-sse-base") {
			ratioTable(&w, as, "playground-sse", "playground-sse-base")
		}
	}
	if len(r.redis) > 0 {
		as := aggregate(r.redis)
		fmt.Fprintf(&w, "## Fan-out through Redis\n\n")
		fmt.Fprintf(&w, "`playground-redis`: two instances on one Redis (%s, flushed first), the session running on the first, viewers split evenly between them; `playground`: one instance without Redis, in the same run.", redactURL(o.redisURL))
		if o.scenario == "all" && !o.quick {
			fmt.Fprintf(&w, " Reduced grid in the standard run: V ∈ {100, 1000}, N ∈ {50, 500}, 100 B chunks.")
		}
		fmt.Fprintf(&w, " Both instances of the pair share the one server core; their CPU per delivery is their sum plus the Redis server's (which is not pinned).\n\n")
		for _, s := range systems(as) {
			fmt.Fprintf(&w, "### %s\n\n", s)
			fanoutTable(&w, as, s)
		}
		targets = append(targets, redisTable(&w, as)...)
	}
	if len(r.gateway) > 0 {
		targets = append(targets, gatewayTables(&w, r.gateway, o)...)
	}
	if len(targets) > 0 {
		fmt.Fprintf(&w, "## Targets\n\n| target | measured | |\n|---|---|---|\n")
		for _, t := range targets {
			mark := "**missed**"
			switch {
			case t.na:
				mark = "not measured"
			case t.met:
				mark = "met"
			}
			fmt.Fprintf(&w, "| %s | %s | %s |\n", t.name, t.measured, mark)
		}
		fmt.Fprintln(&w)
	}
	return w.String()
}

type targetLine struct {
	name, measured string
	met, na        bool
}

// redactURL is a Redis URL as the report may show it: the password of
// its user info and any password or token in its query (go-redis reads
// sentinel_password there) replaced by "xxxxx". The report is committed
// to docs, so a URL that does not parse is not shown at all.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a Redis URL that does not parse)"
	}
	q := u.Query()
	for k := range q {
		if k := strings.ToLower(k); strings.Contains(k, "password") || strings.Contains(k, "token") || strings.Contains(k, "secret") {
			q[k] = []string{"xxxxx"}
		}
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

func fanoutTable(w io.Writer, as []*agg, system string) {
	fmt.Fprintf(w, "| V | N/s | chunk | delivered/s | lost (cut) | p50 | p99 | p99.9 | CPU-s per M deliveries | deliveries per CPU-s | RSS per idle viewer | load gen | other load | |\n")
	fmt.Fprintf(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	var best *agg
	for _, a := range as {
		if a.system != system {
			continue
		}
		if len(a.reps) == 0 || a.lg == 0 && a.evs == 0 {
			fmt.Fprintf(w, "| %d | %d | %s | – | – | – | – | – | – | – | – | – | – | error: %s |\n", a.V, a.N, sizeStr(a.Size), mdEscape(a.err))
			continue
		}
		flag := ""
		switch {
		case !a.valid:
			flag = "invalid (load gen)"
		case a.sust:
			flag = "sustainable"
		}
		if a.err != "" && !a.sust {
			flag = strings.TrimSpace(flag + " " + mdEscape(shorten(a.err, 60)))
		}
		fmt.Fprintf(w, "| %d | %d | %s | %.0f | %d (%d) | %s | %s | %s | %.2f | %.0f | %s | %.0f %% | %.0f %% | %s |\n",
			a.V, a.N, sizeStr(a.Size), a.evs, a.lost, a.cut, fmtDur(a.p50), fmtDur(a.p99), fmtDur(a.p999),
			a.cpuPerM, a.perCore, kib(a.rss), a.lg*100, a.other*100, flag)
		if a.sust && (best == nil || a.V*a.N > best.V*best.N || a.V*a.N == best.V*best.N && a.Size > best.Size) {
			best = a
		}
	}
	if best != nil {
		fmt.Fprintf(w, "\nSustainable point: **%d viewers × %d chunks/s** (%s chunks, %.0f deliveries/s, p99 %s).\n\n", best.V, best.N, sizeStr(best.Size), best.evs, fmtDur(best.p99))
	} else {
		fmt.Fprintf(w, "\nNo cell was sustainable.\n\n")
	}
}

func sizeStr(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func kib(b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f KiB", b/1024)
}

func mdEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ")
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// fanoutTargets are the fan-out's own targets beside the floor's (see
// floorTable): the memory of an idle viewer. The earlier absolute latency
// goals (p99 under 5 ms at 1 000 × 50/s, p50 under 0.5 ms at 100 viewers)
// are retired: on this machine the floor itself is above them, so they
// measured the machine rather than the server.
func fanoutTargets(as []*agg, system string) []targetLine {
	var out []targetLine
	var big *agg
	for _, a := range as {
		if a.system == system && a.rss > 0 && (big == nil || a.V > big.V) {
			big = a
		}
	}
	if big != nil {
		out = append(out, targetLine{name: "≤ 16 KiB RSS per idle WebSocket viewer", measured: fmt.Sprintf("%s at %d viewers", kib(big.rss), big.V), met: big.rss <= 16*1024})
	}
	return out
}

// invalidNote marks a measurement whose cells were not valid (the load
// generator above 70 % of its core): such a cell says how far playbench
// could push, not what the system costs, so its target is not judged.
func invalidNote(as ...*agg) string {
	for _, a := range as {
		if !a.valid {
			return " (invalid: load gen)"
		}
	}
	return ""
}

func sizesOf(as []*agg) []int { return distinct(as, func(a *agg) int { return a.Size }) }

// ratioTable compares system a with baseline b cell by cell.
func ratioTable(w io.Writer, as []*agg, a, b string) {
	fmt.Fprintf(w, "%s / %s, same run:\n\n| V | N/s | chunk | p99 %s | p99 %s | p99 ratio | deliveries per CPU-s ratio | RSS per viewer ratio |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n", a, b, a, b)
	for x, y := range sameCells(as, a, b) {
		fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %s | %s | %s |\n", x.V, x.N, sizeStr(x.Size), fmtDur(x.p99), fmtDur(y.p99),
			ratio(float64(x.p99), float64(y.p99)), ratio(x.perCore, y.perCore), ratio(x.rss, y.rss))
	}
	fmt.Fprintln(w)
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func centrifugoTable(w io.Writer, as []*agg) []targetLine {
	fmt.Fprintf(w, "| V | N/s | chunk | deliveries per CPU-s ours | Centrifugo | ratio | p99 ours | Centrifugo | ratio | lost ours | Centrifugo | both sustainable |\n")
	fmt.Fprintf(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	var both []*agg // our cells where both are sustainable
	var rssOurs, rssCF []float64
	var rssV int
	for a, c := range sameCells(as, "playground-ws", "centrifugo") {
		bs := a.sust && c.sust
		if bs {
			both = append(both, a)
		}
		fmt.Fprintf(w, "| %d | %d | %s | %.0f | %.0f | %s | %s | %s | %s | %d | %d | %s |\n", a.V, a.N, sizeStr(a.Size),
			a.perCore, c.perCore, ratio(a.perCore, c.perCore), fmtDur(a.p99), fmtDur(c.p99), ratio(float64(a.p99), float64(c.p99)),
			a.lost, c.lost, yesNo(bs))
		if a.rss <= 0 || c.rss <= 0 {
			continue
		}
		if a.V > rssV {
			rssV, rssOurs, rssCF = a.V, nil, nil
		}
		if a.V == rssV {
			rssOurs, rssCF = append(rssOurs, a.rss), append(rssCF, c.rss)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Memory per idle subscribed viewer:\n\n| V | ours | Centrifugo | ratio |\n|---:|---:|---:|---:|\n")
	for _, v := range vsOf(as) {
		var o, c []float64
		for _, a := range as {
			if a.V != v {
				continue
			}
			if a.rss <= 0 {
				continue
			}
			if a.system == "playground-ws" {
				o = append(o, a.rss)
			} else if a.system == "centrifugo" {
				c = append(c, a.rss)
			}
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s |\n", v, kib(median(o)), kib(median(c)), ratio(median(o), median(c)))
	}
	fmt.Fprintln(w)

	// Sustainable capacity: the largest cell each sustains, and CPU
	// efficiency where both do.
	var out []targetLine
	bestOf := func(sys string) *agg {
		var best *agg
		for _, a := range as {
			if a.system == sys && a.sust && (best == nil || a.evs > best.evs) {
				best = a
			}
		}
		return best
	}
	bo, bc := bestOf("playground-ws"), bestOf("centrifugo")
	if bo != nil && bc != nil {
		fmt.Fprintf(w, "Largest sustainable cell: ours %s (%.0f deliveries/s), Centrifugo %s (%.0f deliveries/s).\n\n", bo.cell, bo.evs, bc.cell, bc.evs)
	}
	if len(both) > 0 {
		var effRatios, p99Ratios []float64
		for _, a := range both {
			c := pick(as, "centrifugo", a.cell)
			effRatios = append(effRatios, a.perCore/c.perCore)
			p99Ratios = append(p99Ratios, float64(a.p99)/float64(c.p99))
		}
		// The efficiency at the heaviest cell both sustain is the fairest
		// reading of "sustainable deliveries per core".
		heavy := both[0]
		for _, a := range both {
			if a.V*a.N > heavy.V*heavy.N {
				heavy = a
			}
		}
		hc := pick(as, "centrifugo", heavy.cell)
		out = append(out, targetLine{name: "≥ 2.5 × Centrifugo's sustainable deliveries per core",
			measured: fmt.Sprintf("%.2f× deliveries per CPU-second at %s, the heaviest cell both sustain (median over such cells %.2f×)", heavy.perCore/hc.perCore, heavy.cell, median(effRatios)),
			met:      heavy.perCore/hc.perCore >= 2.5})
		out = append(out, targetLine{name: "≤ 0.5 × Centrifugo's p99 at equal load",
			measured: fmt.Sprintf("worst %.2f×, median %.2f× over the %d cells both sustain", slices.Max(p99Ratios), median(p99Ratios), len(both)),
			met:      slices.Max(p99Ratios) <= 0.5})
	} else {
		out = append(out, targetLine{name: "≥ 2.5 × Centrifugo's sustainable deliveries per core", measured: "no cell sustained by both", na: true})
	}
	if len(rssOurs) > 0 && median(rssCF) > 0 {
		rr := median(rssOurs) / median(rssCF)
		out = append(out, targetLine{name: "≤ 0.35 × Centrifugo's memory per viewer",
			measured: fmt.Sprintf("%.2f× at %d viewers (%s vs %s)", rr, rssV, kib(median(rssOurs)), kib(median(rssCF))), met: rr <= 0.35})
	}
	return out
}

func vsOf(as []*agg) []int { return distinct(as, func(a *agg) int { return a.V }) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func redisTable(w io.Writer, as []*agg) []targetLine {
	fmt.Fprintf(w, "### Redis / in-process, same run\n\n| V | N/s | chunk | p50 in-process | p50 Redis | p99 in-process | p99 Redis | added p99 | lost Redis |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var out []targetLine
	for a, s := range sameCells(as, "playground-redis", "playground") {
		added := a.p99 - s.p99
		fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %s | %s | %s | %d |\n", a.V, a.N, sizeStr(a.Size), fmtDur(s.p50), fmtDur(a.p50),
			fmtDur(s.p99), fmtDur(a.p99), signed(added), a.lost)
		if a.N == 500 {
			out = append(out, targetLine{name: fmt.Sprintf("through Redis at 500/s, %d viewers (%s): added p99 ≤ 1 ms", a.V, sizeStr(a.Size)),
				measured: fmt.Sprintf("%s (lost %d)%s", signed(added), a.lost, invalidNote(a, s)),
				met:      added <= time.Millisecond && a.lost == 0 && a.valid && s.valid, na: !a.valid || !s.valid})
		}
	}
	fmt.Fprintln(w)
	return out
}

func signed(d time.Duration) string {
	if d == 0 {
		return "±0"
	}
	if d < 0 {
		return "−" + fmtDur(-d)
	}
	return "+" + fmtDur(d)
}

// floorTable sets every system of the fan-out beside the floor of the
// same run: p99 and CPU per delivery as multiples of the floor's.
func floorTable(w io.Writer, as []*agg) []targetLine {
	var others []string
	for _, s := range systems(as) {
		if s != "floor" {
			others = append(others, s)
		}
	}
	fmt.Fprintf(w, "| V | N/s | chunk | floor p99 | floor CPU-s per M |")
	for _, s := range others {
		fmt.Fprintf(w, " %s p99 / floor | %s CPU / floor |", s, s)
	}
	fmt.Fprintf(w, "\n|---:|---:|---:|---:|---:|%s\n", strings.Repeat("---:|---:|", len(others)))
	var out []targetLine
	for _, f := range as {
		if f.system != "floor" {
			continue
		}
		fmt.Fprintf(w, "| %d | %d | %s | %s | %.2f |", f.V, f.N, sizeStr(f.Size), fmtDur(f.p99), f.cpuPerM)
		for _, s := range others {
			if a := pick(as, s, f.cell); a != nil {
				fmt.Fprintf(w, " %s | %s |", ratio(float64(a.p99), float64(f.p99)), ratio(a.cpuPerM, f.cpuPerM))
			} else {
				fmt.Fprintf(w, " – | – |")
			}
		}
		fmt.Fprintln(w, "")
		if a := pick(as, "playground-ws", f.cell); a != nil && a.p99 > 0 && f.p99 > 0 && f.cpuPerM > 0 {
			p, c := float64(a.p99)/float64(f.p99), a.cpuPerM/f.cpuPerM
			out = append(out, targetLine{name: fmt.Sprintf("%s: p99 and CPU per delivery ≤ 1.1 × the floor, no loss", f.cell),
				measured: fmt.Sprintf("p99 %.2f×, CPU %.2f×, lost %d (%d cut)%s", p, c, a.lost, a.cut, invalidNote(a, f)),
				met:      a.valid && f.valid && p <= 1.1 && c <= 1.1 && a.lost == 0 && a.cut == 0,
				na:       !a.valid || !f.valid})
		}
	}
	fmt.Fprintln(w)
	return out
}

// sseTargets: an SSE viewer costs at most 1.2 × a WebSocket viewer per
// delivery, and at most 16 KiB when idle.
func sseTargets(as []*agg) []targetLine {
	var out []targetLine
	var big *agg
	for _, a := range as {
		if a.system != "playground-sse" {
			continue
		}
		if ws := pick(as, "playground-ws", a.cell); ws != nil && ws.cpuPerM > 0 && a.cpuPerM > 0 {
			r := a.cpuPerM / ws.cpuPerM
			out = append(out, targetLine{name: fmt.Sprintf("%s: SSE CPU per delivery ≤ 1.2 × WebSocket's", a.cell),
				measured: fmt.Sprintf("%.2f×%s", r, invalidNote(a, ws)), met: a.valid && ws.valid && r <= 1.2,
				na: !a.valid || !ws.valid})
		}
		if a.rss > 0 && (big == nil || a.V > big.V) {
			big = a
		}
	}
	if big != nil {
		out = append(out, targetLine{name: "≤ 16 KiB RSS per idle SSE viewer", measured: fmt.Sprintf("%s at %d viewers", kib(big.rss), big.V), met: big.rss <= 16*1024})
	}
	return out
}
