package db

import (
	"context"

	"github.com/playground-dev/playground"
)

// statsRow is one row of the model statistics query.
type statsRow struct {
	Model     string   `bun:"model"`
	Runs      int      `bun:"runs"`
	Errors    int      `bun:"errors"`
	Wins      int      `bun:"wins"`
	AvgTTFT   *float64 `bun:"avg_ttft_ms"`
	P50TPS    *float64 `bun:"p50_tps"`
	TotalCost float64  `bun:"total_cost_usd"`
}

// statsPostgres computes every figure in one pass; percentile_cont
// interpolates between the two middle values of an even count, and like
// the other aggregates skips NULLs. Models sort byte-wise (COLLATE "C") to
// match SQLite.
const statsPostgres = `
SELECT r.model AS model,
	count(*) AS runs,
	count(*) FILTER (WHERE r.status = 'error') AS errors,
	count(*) FILTER (WHERE r.rating = 1) AS wins,
	avg(r.ttft_ms)::double precision AS avg_ttft_ms,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY r.tokens_per_second) AS p50_tps,
	coalesce(sum(r.cost_usd), 0)::double precision AS total_cost_usd
FROM responses r
JOIN sessions s ON s.id = r.session_id
WHERE s.user_id = ? AND s.revealed
GROUP BY r.model
ORDER BY runs DESC, r.model COLLATE "C"`

// statsSQLite has no percentile function: the median is computed with
// window functions, numbering each model's non-null speeds in order and
// averaging the middle one (odd count) or two (even count); for n values
// the middle positions are (n+1)/2 and (n+2)/2 in integer division.
const statsSQLite = `
WITH mine AS (
	SELECT r.model, r.status, r.rating, r.ttft_ms, r.cost_usd, r.tokens_per_second
	FROM responses r
	JOIN sessions s ON s.id = r.session_id
	WHERE s.user_id = ? AND s.revealed
),
ranked AS (
	SELECT model, tokens_per_second AS tps,
		ROW_NUMBER() OVER (PARTITION BY model ORDER BY tokens_per_second) AS rn,
		COUNT(*) OVER (PARTITION BY model) AS cnt
	FROM mine
	WHERE tokens_per_second IS NOT NULL
),
medians AS (
	SELECT model, AVG(tps) AS p50
	FROM ranked
	WHERE rn IN ((cnt + 1) / 2, (cnt + 2) / 2)
	GROUP BY model
)
SELECT m.model AS model,
	COUNT(*) AS runs,
	SUM(CASE WHEN m.status = 'error' THEN 1 ELSE 0 END) AS errors,
	SUM(CASE WHEN m.rating = 1 THEN 1 ELSE 0 END) AS wins,
	AVG(m.ttft_ms) AS avg_ttft_ms,
	md.p50 AS p50_tps,
	COALESCE(SUM(m.cost_usd), 0.0) AS total_cost_usd
FROM mine m
LEFT JOIN medians md ON md.model = m.model
GROUP BY m.model, md.p50
ORDER BY runs DESC, m.model`

// ModelStats returns per-model figures over the user's own sessions (a
// blind session's only once revealed: until then its figures would name
// its models), by
// one aggregate query: runs (every response), errors, wins (rated 1),
// average time to first token, median tokens per second (both null when
// no response reported one) and total cost. Most runs first.
func (d *DB) ModelStats(ctx context.Context, userID string) ([]*playground.ModelStats, error) {
	q := statsPostgres
	if d.dialect == DialectSQLite {
		q = statsSQLite
	}
	var rows []statsRow
	if err := d.db.NewRaw(q, userID).Scan(ctx, &rows); err != nil {
		return nil, fail("model stats", err)
	}
	out := make([]*playground.ModelStats, len(rows))
	for i, r := range rows {
		out[i] = &playground.ModelStats{
			Model:              r.Model,
			Runs:               r.Runs,
			Errors:             r.Errors,
			Wins:               r.Wins,
			AvgTTFTMs:          r.AvgTTFT,
			P50TokensPerSecond: r.P50TPS,
			TotalCostUSD:       r.TotalCost,
		}
	}
	return out, nil
}
