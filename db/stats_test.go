package db_test

import (
	"math"
	"testing"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db"
)

// seedResp is one response of the stats seed; nil metrics stay unreported.
type seedResp struct {
	model  string
	status string
	rating int
	ttft   *int64
	tps    *float64
	cost   *float64
}

func seedStats(t *testing.T, d *db.DB, userID string, rs []seedResp) {
	t.Helper()
	for _, sr := range rs {
		s := mustCreateSession(t, d, userID, sr.model)
		r := s.Responses[0]
		if sr.status == playground.StatusPending {
			continue
		}
		r.Status = sr.status
		r.Metrics = &playground.Metrics{TTFTMs: sr.ttft, TokensPerSecond: sr.tps, CostUSD: sr.cost, DurationMs: 100, Attempts: 1, FinishReason: "stop"}
		if sr.status == playground.StatusError {
			r.Error = &playground.ResponseError{Code: playground.RErrTimeout, Message: "timeout", Retryable: true}
		}
		if err := d.FinishResponse(ctx, s.ID, r, false); err != nil {
			t.Fatal(err)
		}
		if sr.rating != 0 {
			if _, err := d.SetRating(ctx, s.ID, r.ID, sr.rating); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestModelStats(t *testing.T) {
	forEachDB(t, db.Options{Plans: playground.Plans{FreePerDay: 100}}, func(t *testing.T, d *db.DB) {
		u := mustCreateUser(t, d, "a@example.com")
		v := mustCreateUser(t, d, "b@example.com")
		const ok, fail = playground.StatusComplete, playground.StatusError
		seedStats(t, d, u.ID, []seedResp{
			// m/a: tps 10, 30, 20, 50 (even count) → median 25; ttft avg
			// (100+200+300)/3 = 200; cost 0.125+0.25 = 0.375.
			{model: "m/a", status: ok, rating: 1, ttft: ptr[int64](100), tps: ptr(10.0), cost: ptr(0.125)},
			{model: "m/a", status: ok, rating: 1, ttft: ptr[int64](200), tps: ptr(30.0), cost: ptr(0.25)},
			{model: "m/a", status: ok, rating: -1, tps: ptr(20.0)},
			{model: "m/a", status: fail},
			{model: "m/a", status: ok, ttft: ptr[int64](300), tps: ptr(50.0)},
			// m/b: tps 7, 3, 5 (odd count) → median 5; nothing else reported.
			{model: "m/b", status: ok, tps: ptr(7.0)},
			{model: "m/b", status: ok, rating: 1, tps: ptr(3.0)},
			{model: "m/b", status: ok, tps: ptr(5.0)},
			// m/c: no speed at all; a still-pending run counts as a run.
			{model: "m/c", status: fail, ttft: ptr[int64](5)},
			{model: "m/c", status: fail},
			{model: "m/c", status: playground.StatusPending},
		})
		// Someone else's runs are not counted.
		seedStats(t, d, v.ID, []seedResp{
			{model: "m/a", status: ok, rating: 1, ttft: ptr[int64](9999), tps: ptr(9999.0), cost: ptr(99.0)},
			{model: "m/z", status: ok},
		})

		want := []playground.ModelStats{
			{Model: "m/a", Runs: 5, Errors: 1, Wins: 2, AvgTTFTMs: ptr(200.0), P50TokensPerSecond: ptr(25.0), TotalCostUSD: 0.375},
			{Model: "m/b", Runs: 3, Errors: 0, Wins: 1, AvgTTFTMs: nil, P50TokensPerSecond: ptr(5.0), TotalCostUSD: 0},
			{Model: "m/c", Runs: 3, Errors: 2, Wins: 0, AvgTTFTMs: ptr(5.0), P50TokensPerSecond: nil, TotalCostUSD: 0},
		}
		got, err := d.ModelStats(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("got %d rows, want %d: %+v", len(got), len(want), got)
		}
		for i, w := range want {
			g := got[i]
			if g.Model != w.Model || g.Runs != w.Runs || g.Errors != w.Errors || g.Wins != w.Wins ||
				!eqPtr(g.AvgTTFTMs, w.AvgTTFTMs) || !eqPtr(g.P50TokensPerSecond, w.P50TokensPerSecond) ||
				math.Abs(g.TotalCostUSD-w.TotalCostUSD) > 1e-9 {
				t.Errorf("row %d = %s, want %s", i, fmtStats(g), fmtStats(&w))
			}
		}

		none, err := d.ModelStats(ctx, "u_nobody")
		if err != nil || len(none) != 0 {
			t.Fatalf("no sessions: %v, %v", none, err)
		}
	})
}

func eqPtr(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) < 1e-9
}

func fmtStats(s *playground.ModelStats) string {
	f := func(p *float64) any {
		if p == nil {
			return "nil"
		}
		return *p
	}
	return fmtAny(s.Model, s.Runs, s.Errors, s.Wins, f(s.AvgTTFTMs), f(s.P50TokensPerSecond), s.TotalCostUSD)
}
