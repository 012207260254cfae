package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// sampleInstances records each live instance's CPU (cores) and RSS once a
// second until ctx ends.
func sampleInstances(ctx context.Context, servers []*pgServer, loads []*instanceLoad) {
	prev := make([]time.Duration, len(servers))
	for i, s := range servers {
		prev[i], _ = cpuTime(s.pid)
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			wall := now.Sub(last)
			last = now
			for i, s := range servers {
				c, err := cpuTime(s.pid)
				r, rerr := rss(s.pid)
				if err != nil || rerr != nil { // the killed instance is gone
					continue
				}
				loads[i].cpu = append(loads[i].cpu, (c-prev[i]).Seconds()/wall.Seconds())
				prev[i] = c
				loads[i].rssPeak = max(loads[i].rssPeak, r)
				loads[i].rssLast = r
			}
		}
	}
}

// redisCommands are Redis's calls per command so far (INFO commandstats).
func redisCommands(ctx context.Context, url string) map[string]int64 {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil
	}
	c := redis.NewClient(opt)
	defer c.Close()
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		// cmdstat_xadd:calls=12,usec=...
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		out[name] = n
	}
	return out
}

// pgWrites are the database's committed transactions and rows written so
// far (pg_stat_database, through psql).
func pgWrites(ctx context.Context, url string) map[string]int64 {
	out, err := exec.CommandContext(ctx, "psql", url, "-Atc",
		"select xact_commit, tup_inserted, tup_updated, tup_deleted from pg_stat_database where datname = current_database()").Output()
	if err != nil {
		return nil
	}
	f := strings.Split(strings.TrimSpace(string(out)), "|")
	m := map[string]int64{}
	for i, k := range []string{"commits", "inserted", "updated", "deleted"} {
		if i < len(f) {
			m[k], _ = strconv.ParseInt(f[i], 10, 64)
		}
	}
	return m
}

func diffCounts(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		out[k] = v - before[k]
	}
	return out
}

// scrapeMetric reads one gauge from an instance's /metrics ("?" if it cannot).
func scrapeMetric(ctx context.Context, base, name string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if val, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return val
		}
	}
	return "?"
}

func durPct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func (st *soakStats) lbReport(o lbOptions, loads []*instanceLoad, victim int) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var sb strings.Builder
	fmt.Fprintf(&sb, "## Behind nginx: %s, %d instances, %d comparisons at a time of %d demo models, %d viewers each\n\n",
		o.duration, o.instances, o.sessions, len(soakModels), o.viewers)
	fmt.Fprintf(&sb, "| figure | value |\n|---|---:|\n")
	row := func(k string, v any) { fmt.Fprintf(&sb, "| %s | %v |\n", k, v) }
	row("comparisons started / checked at the end", fmt.Sprintf("%d / %d", st.sessions.Load(), st.complete.Load()))
	row("viewer events received", st.events.Load())
	row("events lost (a seq skipped) / doubled (a seq seen twice)", fmt.Sprintf("%d / %d", st.lost.Load(), st.twice.Load()))
	row("viewer texts differing from the stored text (unexplained, see below)", fmt.Sprintf("%d (%d)", st.mismatches.Load(), st.diffs.count("unexplained")))
	row("responses ended interrupted", st.interrupted.Load())
	row("create errors / viewer errors / viewer reconnects", fmt.Sprintf("%d / %d / %d", st.createErrors.Load(), st.viewErrs.Load(), st.reconnects.Load()))
	row("delivery after the session's first viewer, p50 / p99 / max", fmt.Sprintf("%v / %v / %v",
		durPct(st.spread, 0.5).Round(time.Microsecond), durPct(st.spread, 0.99).Round(time.Microsecond), durPct(st.spread, 1).Round(time.Microsecond)))
	for i, l := range loads {
		var sum, peak float64
		for _, c := range l.cpu {
			sum += c
			peak = max(peak, c)
		}
		avg := 0.0
		if len(l.cpu) > 0 {
			avg = sum / float64(len(l.cpu))
		}
		what := fmt.Sprintf("instance %d", i)
		if l.killed {
			what += fmt.Sprintf(" (killed at %s)", l.aliveTime.Round(time.Second))
		}
		row(what+": CPU mean / peak (cores), RSS peak / last, viewers before the kill",
			fmt.Sprintf("%.2f / %.2f, %.0f / %.0f MiB, %s", avg, peak, float64(l.rssPeak)/(1<<20), float64(l.rssLast)/(1<<20), l.viewers))
	}
	secs := st.elapsed.Seconds()
	var calls int64
	for _, n := range st.redisCalls {
		calls += n
	}
	if xadd := st.redisCalls["xadd"]; xadd > 0 {
		row("events appended to Redis streams (XADD), per second", fmt.Sprintf("%d, %.0f/s", xadd, float64(xadd)/secs))
		row("Redis commands in all, per second, per appended event", fmt.Sprintf("%d, %.0f/s, %.2f", calls, float64(calls)/secs, float64(calls)/float64(xadd)))
		row("Redis server CPU (cores), CPU-µs per command", fmt.Sprintf("%.2f, %.1f", st.redisCores, st.redisCores*secs*1e6/float64(calls)))
		var top []string
		for k, n := range st.redisCalls {
			if n > 0 {
				top = append(top, fmt.Sprintf("%s %.2f", k, float64(n)/float64(xadd)))
			}
		}
		slices.Sort(top)
		row("Redis commands per appended event, by command", strings.Join(top, ", "))
	}
	if st.pgWrites != nil {
		row("PostgreSQL commits / rows inserted / rows updated, per second", fmt.Sprintf("%.0f / %.0f / %.0f",
			float64(st.pgWrites["commits"])/secs, float64(st.pgWrites["inserted"])/secs, float64(st.pgWrites["updated"])/secs))
	}
	row("load generator CPU (cores; playbench, all viewers and clients)", fmt.Sprintf("%.2f", st.genCores))
	if victim >= 0 {
		row("viewers cut off by the kill", len(st.told))
		row("told (connection closed) after the kill, p50 / p99 / max", fmt.Sprintf("%v / %v / %v",
			durPct(st.told, 0.5).Round(time.Millisecond), durPct(st.told, 0.99).Round(time.Millisecond), durPct(st.told, 1).Round(time.Millisecond)))
		row("subscribed again elsewhere after the kill, p50 / p99 / max", fmt.Sprintf("%v / %v / %v",
			durPct(st.resumed, 0.5).Round(time.Millisecond), durPct(st.resumed, 0.99).Round(time.Millisecond), durPct(st.resumed, 1).Round(time.Millisecond)))
	}
	if st.lastError != "" {
		fmt.Fprintf(&sb, "\nLast error seen: %s\n", st.lastError)
	}
	st.diffs.write(&sb)
	sb.WriteString("\nDelivery is measured from the moment the first of a comparison's viewers got an event to each other viewer's receipt " +
		"(the demo models put no timestamp in their text); every viewer connects through nginx, so about a third are on the instance running the comparison. " +
		"A viewer cut off reconnects after 200 ms and subscribes from its last seq.\n")
	return sb.String()
}

// textDiff is one viewer's text of one answer that differs from the
// stored text, with what the load test knows of how the viewer got it.
type textDiff struct {
	session, response string
	viewer            int
	view              *viewerLog
	stored            string
	status            string // the stored response's status (and error code)
	owner             string // the instance that created (and ran) the session, as the balancer names it
	recovered         string // whether another instance ended it (see soakStats.recovered)
	interrupted       bool   // the answer ended "interrupted": its instance was killed
}

// reason says why the text differs, as far as the load test can tell.
// Only "unexplained" is a defect for certain: an answer whose instance
// was killed is stored as far as its last checkpoint and the event log
// go, and a viewer that was on that instance may have seen events that
// reached neither. A viewer cut off by the kill from an instance that did
// not run its answer resumes elsewhere with nothing missing or doubled:
// a difference there is unexplained.
func (d textDiff) reason() string {
	switch {
	case !d.view.done:
		return "the viewer never saw done"
	case d.interrupted:
		return "its answer's instance was killed"
	}
	return "unexplained"
}

// diffLog gathers the texts that differ: a count per reason and the
// first few, to be shown in the report.
type diffLog struct {
	mu      sync.Mutex
	names   map[string]string // an instance's address (as the balancer names it) to its name
	reasons map[string]int
	samples []textDiff
}

const diffSamples = 5

func (l *diffLog) add(d textDiff) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reasons == nil {
		l.reasons = map[string]int{}
	}
	l.reasons[d.reason()]++
	if len(l.samples) < diffSamples {
		l.samples = append(l.samples, d)
	}
}

// count is how many differ for reason.
func (l *diffLog) count(reason string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reasons[reason]
}

// write adds to a report why the texts differ and the first few of them.
func (l *diffLog) write(sb *strings.Builder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.samples) == 0 {
		return
	}
	var why []string
	for r, n := range l.reasons {
		why = append(why, fmt.Sprintf("%d: %s", n, r))
	}
	slices.Sort(why)
	fmt.Fprintf(sb, "\nViewer texts that differ from the stored text, by reason: %s. The first %d:\n\n", strings.Join(why, "; "), len(l.samples))
	for _, d := range l.samples {
		var served []string
		for _, s := range d.view.served {
			var names []string
			for _, addr := range strings.Split(s, ", ") {
				if n := l.names[addr]; n != "" {
					addr = n
				}
				names = append(names, addr)
			}
			served = append(served, strings.Join(names, "→"))
		}
		owner := d.owner
		if n := l.names[owner]; n != "" {
			owner = n
		}
		got := d.view.texts[d.response]
		cut := ""
		if d.view.cut {
			cut = ", cut off by the kill"
		}
		fmt.Fprintf(sb, "- session %s (run by %s, %s), response %s (stored %s), viewer %d served by %s%s, %d snapshot(s): stored %d bytes, viewer %d, first difference at byte %d, %s (%s)\n",
			d.session, owner, d.recovered, d.response, d.status, d.viewer, strings.Join(served, ", "), cut, d.view.snapshots, len(d.stored), len(got),
			firstDiff(got, d.stored), extraKind(got, d.stored), d.reason())
	}
}

// firstDiff is the byte offset at which a and b first differ.
func firstDiff(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// extraKind says what a viewer's text holds beyond the stored one when it
// starts with all of it: the stored text's own tail again (chunks applied
// twice, over a snapshot that already held them), text found earlier in
// the stored text, or text the stored one lacks (the stored text is short).
func extraKind(viewer, stored string) string {
	extra, ok := strings.CutPrefix(viewer, stored)
	switch {
	case !ok || extra == "":
		return "not an extension of the stored text"
	case strings.HasSuffix(stored, extra):
		return fmt.Sprintf("the extra %d bytes repeat the stored tail (doubled)", len(extra))
	case strings.Contains(stored, extra):
		return fmt.Sprintf("the extra %d bytes repeat earlier stored text", len(extra))
	}
	return fmt.Sprintf("the extra %d bytes are new text (the stored text is short)", len(extra))
}
