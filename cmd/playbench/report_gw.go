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
		"`direct`: an SSE client reads the upstream; `proxy`: through `httputil.ReverseProxy` (its own process, pinned like the server); `playground-sse` / `playground-ws`: a session with one model on that upstream, watched over SSE or WebSocket, the upstream held until the viewer's snapshot arrived. "+
		"TTFT = the first content chunk's creation (upstream) → its receipt by the viewer; per chunk = the same for the other %d chunks; added = path − direct at the same percentile; load gen above 70 %% marks concurrent runs invalid (one stream at a time is a closed loop that keeps playbench busy by construction, with nothing queued behind it). Session creation (`POST /sessions`) is reported on its own.\n\n",
		gatewayChunks, o.gwSize, o.gwStreams, o.reps, gatewayChunks-1)
	var out []targetLine
	for _, gap := range o.gaps {
		fmt.Fprintf(w, "### Upstream chunks %s apart\n\n", gap)
		fmt.Fprintf(w, "| C | path | streams (errors) | TTFT p50 | TTFT p99 | added TTFT p50 / p99 | chunk p50 | chunk p99 | added chunk p50 / p99 | session creation p50 / p99 | server core | load gen |\n")
		fmt.Fprintf(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range o.streams {
			var direct *gwResult
			for _, r := range rs {
				if r.Gap == gap && r.C == c && r.Path == pathDirect {
					direct = r
				}
			}
			for _, r := range rs {
				if r.Gap != gap || r.C != c {
					continue
				}
				added := func(h, d *hist, q float64) time.Duration { return h.Quantile(q) - d.Quantile(q) }
				at, ac := "–", "–"
				if direct != nil && r != direct {
					at = signed(added(r.TTFT, direct.TTFT, .5)) + " / " + signed(added(r.TTFT, direct.TTFT, .99))
					ac = signed(added(r.Chunk, direct.Chunk, .5)) + " / " + signed(added(r.Chunk, direct.Chunk, .99))
				}
				create := "–"
				if r.Create.Count() > 0 {
					create = fmtDur(r.Create.Quantile(.5)) + " / " + fmtDur(r.Create.Quantile(.99))
				}
				sc := "–"
				if len(r.Server) > 0 {
					sc = fmt.Sprintf("%.0f %%", median(r.Server)*100)
				}
				lg := fmt.Sprintf("%.0f %%", median(r.LoadGen)*100)
				if r.invalid() {
					lg += " (invalid)"
				}
				errs := fmt.Sprintf("%d (%d)", r.Streams, r.Errors)
				if r.FirstErr != "" {
					errs += " " + mdEscape(shorten(r.FirstErr, 50))
				}
				fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c, r.Path, errs,
					fmtDur(r.TTFT.Quantile(.5)), fmtDur(r.TTFT.Quantile(.99)), at,
					fmtDur(r.Chunk.Quantile(.5)), fmtDur(r.Chunk.Quantile(.99)), ac, create, sc, lg)
				if direct == nil || r == direct || (r.Path != pathSSE && r.Path != pathWS) {
					continue
				}
				valid := !r.invalid() && !direct.invalid() && r.Errors == 0
				note := ""
				if !valid {
					note = " (invalid: load gen or errors)"
				}
				if c == 1 {
					t50, t99 := added(r.TTFT, direct.TTFT, .5), added(r.TTFT, direct.TTFT, .99)
					c50, c99 := added(r.Chunk, direct.Chunk, .5), added(r.Chunk, direct.Chunk, .99)
					out = append(out,
						targetLine{name: fmt.Sprintf("gateway %s, 1 stream, %s gap: added TTFT ≤ 100 µs p50 / 250 µs p99", r.Path, gap),
							measured: signed(t50) + " / " + signed(t99) + note, met: valid && t50 <= 100*time.Microsecond && t99 <= 250*time.Microsecond},
						targetLine{name: fmt.Sprintf("gateway %s, 1 stream, %s gap: added per chunk ≤ 10 µs p50 / 50 µs p99", r.Path, gap),
							measured: signed(c50) + " / " + signed(c99) + note, met: valid && c50 <= 10*time.Microsecond && c99 <= 50*time.Microsecond})
				}
				if c == 64 {
					t99, c99 := added(r.TTFT, direct.TTFT, .99), added(r.Chunk, direct.Chunk, .99)
					out = append(out, targetLine{name: fmt.Sprintf("gateway %s, 64 streams, %s gap: added p99 ≤ 1 ms", r.Path, gap),
						measured: "TTFT " + signed(t99) + ", chunk " + signed(c99) + note, met: valid && t99 <= time.Millisecond && c99 <= time.Millisecond})
				}
			}
		}
		fmt.Fprintln(w)
	}
	return out
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
