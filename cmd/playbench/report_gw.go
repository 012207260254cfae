package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func gatewayTables(w io.Writer, rs []*gwResult, o options) []targetLine {
	fmt.Fprintf(w, "## Gateway overhead\n\n")
	fmt.Fprintf(w, "A fake OpenAI-compatible upstream streams %d chunks of %d B per request; each run of a path runs C streams at once, %d streams per path and repetition (at least one per concurrent stream), the paths alternating; %d repetitions merged. "+
		"`direct`: an SSE client reads the upstream; `proxy`: through `httputil.ReverseProxy` (its own process, pinned like the server); `playground-sse` / `playground-ws`: a session with one model on that upstream, watched over SSE or WebSocket, the upstream held until the viewer's snapshot arrived; `…-base`: the same through the baseline binary (`-baseline-bin`), in turn with the one under test. "+
		"TTFT = the first content chunk's creation (upstream) → its receipt by the viewer; per chunk = the same for the other %d chunks; added = path − direct at the same percentile; CPU / chunk = the server's (or proxy's) CPU time over the path's runs ÷ chunks delivered, session creation and everything else included; load gen above 70 %% marks concurrent runs invalid (one stream at a time is a closed loop that keeps playbench busy by construction, with nothing queued behind it). Session creation (`POST /sessions`) is reported on its own.\n\n",
		gatewayChunks, o.gwSize, o.gwStreams, o.reps, gatewayChunks-1)
	added := func(h, d *hist, q float64) time.Duration { return h.Quantile(q) - d.Quantile(q) }
	var out []targetLine
	for _, gap := range o.gaps {
		fmt.Fprintf(w, "### Upstream chunks %s apart\n\n", gap)
		fmt.Fprintf(w, "| C | path | streams (errors) | TTFT p50 | TTFT p99 | added TTFT p50 / p99 | chunk p50 | chunk p99 | added chunk p50 / p99 | session creation p50 / p99 | server core | CPU / chunk | load gen |\n")
		fmt.Fprintf(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range o.streams {
			cell := map[string]*gwResult{}
			for _, r := range rs {
				if r.Gap == gap && r.C == c {
					cell[r.Path] = r
				}
			}
			direct := cell[pathDirect]
			for _, r := range rs {
				if r.Gap != gap || r.C != c {
					continue
				}
				at, ac := "–", "–"
				if direct != nil && r != direct {
					at = signed(added(r.TTFT, direct.TTFT, .5)) + " / " + signed(added(r.TTFT, direct.TTFT, .99))
					ac = signed(added(r.Chunk, direct.Chunk, .5)) + " / " + signed(added(r.Chunk, direct.Chunk, .99))
				}
				create := "–"
				if r.Create.Count() > 0 {
					create = fmtDur(r.Create.Quantile(.5)) + " / " + fmtDur(r.Create.Quantile(.99))
				}
				sc, cpc := "–", "–"
				if len(r.Server) > 0 {
					sc = fmt.Sprintf("%.0f %%", median(r.Server)*100)
					cpc = fmtDur(r.cpuPerChunk())
				}
				lg := fmt.Sprintf("%.0f %%", median(r.LoadGen)*100)
				if r.invalid() {
					lg += " (invalid)"
				}
				errs := fmt.Sprintf("%d (%d)", r.Streams, r.Errors)
				if r.FirstErr != "" {
					errs += " " + mdEscape(shorten(r.FirstErr, 50))
				}
				fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c, r.Path, errs,
					fmtDur(r.TTFT.Quantile(.5)), fmtDur(r.TTFT.Quantile(.99)), at,
					fmtDur(r.Chunk.Quantile(.5)), fmtDur(r.Chunk.Quantile(.99)), ac, create, sc, cpc, lg)
			}
			if c == 64 {
				out = append(out, gatewayTargets(cell, gap, added)...)
			}
		}
		fmt.Fprintln(w)
		baselineTable(w, rs, gap, o.streams, added)
	}
	return out
}

// gatewayTargets are issue 18's targets at 64 concurrent streams: session
// creation p99 ≤ 5 ms; added p99 per chunk no more than the reverse
// proxy's in the same run; server CPU per chunk ≤ 1.5 × the proxy's.
// (Older goals, retired with them: added TTFT ≤ 100 µs p50 / 250 µs p99
// and per chunk ≤ 10 µs / 50 µs at one stream, added p99 ≤ 1 ms at 64.)
func gatewayTargets(cell map[string]*gwResult, gap time.Duration, added func(h, d *hist, q float64) time.Duration) []targetLine {
	direct, proxy := cell[pathDirect], cell[pathProxy]
	if direct == nil || proxy == nil {
		return nil
	}
	var out []targetLine
	for _, p := range []string{pathSSE, pathWS} {
		r := cell[p]
		if r == nil {
			continue
		}
		valid := !r.invalid() && !direct.invalid() && !proxy.invalid() && r.Errors == 0
		note := ""
		if !valid {
			note = " (invalid: load gen or errors)"
		}
		c50, c99 := r.Create.Quantile(.5), r.Create.Quantile(.99)
		ours, theirs := added(r.Chunk, direct.Chunk, .99), added(proxy.Chunk, direct.Chunk, .99)
		cpu, proxyCPU := r.cpuPerChunk(), proxy.cpuPerChunk()
		ratio := 0.0
		if proxyCPU > 0 {
			ratio = float64(cpu) / float64(proxyCPU)
		}
		out = append(out,
			targetLine{name: fmt.Sprintf("gateway %s, 64 streams, %s gap: session creation p99 ≤ 5 ms", p, gap),
				measured: fmt.Sprintf("p50 %s / p99 %s%s", fmtDur(c50), fmtDur(c99), note), met: valid && c99 <= 5*time.Millisecond},
			targetLine{name: fmt.Sprintf("gateway %s, 64 streams, %s gap: added p99 per chunk ≤ the reverse proxy's", p, gap),
				measured: fmt.Sprintf("%s, proxy %s%s", signed(ours), signed(theirs), note), met: valid && ours <= theirs},
			targetLine{name: fmt.Sprintf("gateway %s, 64 streams, %s gap: server CPU per chunk ≤ 1.5 × the reverse proxy's", p, gap),
				measured: fmt.Sprintf("%s, proxy %s: %.2f ×%s", fmtDur(cpu), fmtDur(proxyCPU), ratio, note), met: valid && proxyCPU > 0 && ratio <= 1.5})
	}
	return out
}

// baselineTable compares each Playground path with the baseline binary's
// run of it, when there was one.
func baselineTable(w io.Writer, rs []*gwResult, gap time.Duration, streams []int, added func(h, d *hist, q float64) time.Duration) {
	header := false
	for _, c := range streams {
		cell := map[string]*gwResult{}
		for _, r := range rs {
			if r.Gap == gap && r.C == c {
				cell[r.Path] = r
			}
		}
		direct := cell[pathDirect]
		for _, pair := range [][2]string{{pathSSE, pathSSEOld}, {pathWS, pathWSOld}} {
			nw, old := cell[pair[0]], cell[pair[1]]
			if nw == nil || old == nil || direct == nil {
				continue
			}
			if !header {
				header = true
				fmt.Fprintf(w, "New / baseline binary, same run (upstream chunks %s apart):\n\n", gap)
				fmt.Fprintf(w, "| C | path | creation p50 new / old | creation p99 new / old | added chunk p99 new / old | CPU / chunk new / old |\n|---:|---|---:|---:|---:|---:|\n")
			}
			ratio := func(a, b time.Duration) string {
				if b <= 0 {
					return "–"
				}
				return fmt.Sprintf("%.2f ×", float64(a)/float64(b))
			}
			fmt.Fprintf(w, "| %d | %s | %s / %s (%s) | %s / %s (%s) | %s / %s | %s / %s (%s) |\n", c, pair[0],
				fmtDur(nw.Create.Quantile(.5)), fmtDur(old.Create.Quantile(.5)), ratio(nw.Create.Quantile(.5), old.Create.Quantile(.5)),
				fmtDur(nw.Create.Quantile(.99)), fmtDur(old.Create.Quantile(.99)), ratio(nw.Create.Quantile(.99), old.Create.Quantile(.99)),
				signed(added(nw.Chunk, direct.Chunk, .99)), signed(added(old.Chunk, direct.Chunk, .99)),
				fmtDur(nw.cpuPerChunk()), fmtDur(old.cpuPerChunk()), ratio(nw.cpuPerChunk(), old.cpuPerChunk()))
		}
	}
	if header {
		fmt.Fprintln(w)
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// machineLoad describes how busy the (shared) machine was.
func machineLoad() string {
	var parts []string
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			parts = append(parts, "load average "+strings.Join(f[:3], " "))
		}
	}
	if b, err := os.ReadFile("/proc/pressure/cpu"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		parts = append(parts, "CPU pressure ("+line+")")
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, ", ")
}
