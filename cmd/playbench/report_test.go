package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestFanoutTargetsAreTheFloors: the report judges the fan-out against
// the floor of the same run, cell by cell, and no longer by the retired
// absolute goals (p99 under 5 ms at 1 000 × 50/s, p50 under 0.5 ms at 100
// viewers), which the floor itself misses on a busy machine.
func TestFanoutTargetsAreTheFloors(t *testing.T) {
	at := func(system string, V int, p99 time.Duration, cpu float64, lost int64) *agg {
		return &agg{system: system, cell: cell{V, 50, 100}, p50: p99 / 4, p99: p99, cpuPerM: cpu, lost: lost, valid: true}
	}
	as := []*agg{
		at("playground-ws", 100, 2100*time.Microsecond, 8.4, 0), at("floor", 100, 2*time.Millisecond, 8, 0),
		at("playground-ws", 1000, 20*time.Millisecond, 9.6, 0), at("floor", 1000, 15*time.Millisecond, 8, 0),
	}
	as[2].rss = 15 << 10
	targets := append(fanoutTargets(as, "playground-ws"), floorTable(io.Discard, as)...)
	met := map[string]bool{}
	for _, tl := range targets {
		if strings.Contains(tl.name, "5 ms") || strings.Contains(tl.name, "0.5 ms") {
			t.Errorf("a retired target is still judged: %q", tl.name)
		}
		met[tl.name] = tl.met
	}
	want := map[string]bool{
		"V=100 N=50/s 100B: p99 and CPU per delivery ≤ 1.1 × the floor, no loss":  true,  // 1.05× and 1.05×
		"V=1000 N=50/s 100B: p99 and CPU per delivery ≤ 1.1 × the floor, no loss": false, // 1.33× and 1.2×
		"≤ 16 KiB RSS per idle WebSocket viewer":                                  true,
	}
	for name, ok := range want {
		if got, listed := met[name]; !listed || got != ok {
			t.Errorf("%q: listed %v, met %v; want met %v (targets: %v)", name, listed, got, ok, met)
		}
	}
	if len(met) != len(want) {
		t.Errorf("targets %v, want exactly %v", met, want)
	}

	// A cell that lost deliveries misses, whatever its ratios.
	as[0].lost = 3
	for _, tl := range floorTable(io.Discard, as) {
		if strings.HasPrefix(tl.name, "V=100 ") && tl.met {
			t.Errorf("a cell with lost deliveries is met: %q %q", tl.name, tl.measured)
		}
	}

	// A cell where playbench saturated its core is not judged either way.
	as[0].lost, as[1].valid = 0, false
	for _, tl := range floorTable(io.Discard, as) {
		if strings.HasPrefix(tl.name, "V=100 ") && (!tl.na || tl.met || !strings.Contains(tl.measured, "invalid")) {
			t.Errorf("a cell whose floor was invalid is judged: %q %q (met %v, not measured %v)", tl.name, tl.measured, tl.met, tl.na)
		}
	}
}
