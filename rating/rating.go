// Package rating fits Bradley-Terry strengths to pairwise comparisons and
// puts them on an Elo scale, with bootstrap confidence intervals: the
// leaderboard of blind comparisons.
//
// A Bradley-Terry model (Bradley and Terry, 1952) gives each model i a
// strength p_i such that i beats j with probability p_i / (p_i + p_j).
// Strengths are fitted by maximum likelihood with Hunter's MM algorithm
// (Hunter, 2004, "MM algorithms for generalized Bradley-Terry models",
// Annals of Statistics 32(1)), a tie counting as half a win to each side,
// as Chatbot Arena does (Chiang et al., 2024, "Chatbot Arena: An Open
// Platform for Evaluating LLMs by Human Preference"). Ratings are
// 400·log10(p_i), shifted so that their mean is 1000; a difference of 400
// points is odds of ten to one. A weak prior (one tied game against a
// virtual opponent of the mean's strength) keeps a model that never lost
// or never won at a finite rating.
package rating

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Game is one comparison between two models: A beat B, or a tie.
type Game struct {
	A, B string
	Tie  bool
}

// Standing is one model's place on the board.
type Standing struct {
	Model  string
	Rating float64
	// Low and High bound the 95 % bootstrap interval of Rating.
	Low, High float64
	Battles   int
	Wins      int
	Ties      int
	Losses    int
}

// Scale and Anchor put strengths on the Elo scale: 400 points per factor
// of ten, mean 1000.
const (
	Scale  = 400.0
	Anchor = 1000.0
)

// Options tune Board.
type Options struct {
	// Resamples is how many bootstrap resamples give the intervals
	// (at least 100; default 200).
	Resamples int
	// Seed makes the resampling repeatable.
	Seed uint64
}

// Fit returns each model's Elo-scale rating from games, by the MM
// algorithm, with mean Anchor over the models that appear.
func Fit(games []Game) map[string]float64 {
	models, idx := index(games)
	return ratings(models, fit(len(models), pairs(games, idx)))
}

// Board is the leaderboard of the units of games: each unit (one vote,
// which may stand for several games) is resampled whole by the bootstrap.
// Standings are best first.
func Board(units [][]Game, opts Options) []Standing {
	var all []Game
	for _, u := range units {
		all = append(all, u...)
	}
	models, idx := index(all)
	if len(models) == 0 {
		return []Standing{}
	}
	point := ratings(models, fit(len(models), pairs(all, idx)))
	out := make([]Standing, len(models))
	for i, m := range models {
		out[i] = Standing{Model: m, Rating: point[m]}
	}
	for _, g := range all {
		a, b := &out[idx[g.A]], &out[idx[g.B]]
		a.Battles++
		b.Battles++
		switch {
		case g.Tie:
			a.Ties++
			b.Ties++
		default:
			a.Wins++
			b.Losses++
		}
	}

	n := opts.Resamples
	if n < 100 {
		n = 200
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	samples := make([][]float64, len(models))
	sample := make([]Game, 0, len(all))
	for range n {
		sample = sample[:0]
		for range units {
			sample = append(sample, units[rng.IntN(len(units))]...)
		}
		// A model absent from a resample has only the prior's game: it
		// sits at the prior opponent's strength before anchoring.
		r := ratings(models, fit(len(models), pairs(sample, idx)))
		for i, m := range models {
			samples[i] = append(samples[i], r[m])
		}
	}
	for i := range out {
		s := samples[i]
		slices.Sort(s)
		out[i].Low, out[i].High = percentile(s, 0.025), percentile(s, 0.975)
		// The interval always holds the point estimate: a resample cannot
		// be more certain than the data it came from.
		out[i].Low = math.Min(out[i].Low, out[i].Rating)
		out[i].High = math.Max(out[i].High, out[i].Rating)
	}
	slices.SortStableFunc(out, func(a, b Standing) int {
		switch {
		case a.Rating > b.Rating:
			return -1
		case a.Rating < b.Rating:
			return 1
		}
		if a.Model < b.Model {
			return -1
		}
		return 1
	})
	return out
}

// index lists the models of games in sorted order, with their positions.
func index(games []Game) ([]string, map[string]int) {
	set := map[string]bool{}
	for _, g := range games {
		set[g.A], set[g.B] = true, true
	}
	models := make([]string, 0, len(set))
	for m := range set {
		models = append(models, m)
	}
	slices.Sort(models)
	idx := make(map[string]int, len(models))
	for i, m := range models {
		idx[m] = i
	}
	return models, idx
}

// pairs turns games into w[i][j]: the wins of i over j, a tie counting
// half to each.
func pairs(games []Game, idx map[string]int) [][]float64 {
	w := make([][]float64, len(idx))
	for i := range w {
		w[i] = make([]float64, len(idx))
	}
	for _, g := range games {
		a, b := idx[g.A], idx[g.B]
		if g.Tie {
			w[a][b] += 0.5
			w[b][a] += 0.5
		} else {
			w[a][b]++
		}
	}
	return w
}

// prior is the weight of the virtual tied game each model plays against
// an opponent of strength 1 (the geometric mean, after normalising).
const prior = 1.0

// fit runs MM iterations until the log-strengths move less than 1e-10:
// p_i ← W_i / Σ_j n_ij / (p_i + p_j), with the prior's game against a
// fixed opponent of strength 1 included (which also fixes the scale, so
// no normalising is needed). It returns log p.
func fit(n int, w [][]float64) []float64 {
	p := make([]float64, n)
	for i := range p {
		p[i] = 1
	}
	next := make([]float64, n)
	for range 100000 {
		var moved float64
		for i := range n {
			wins := prior / 2
			denom := prior / (p[i] + 1)
			for j := range n {
				if nij := w[i][j] + w[j][i]; nij > 0 {
					wins += w[i][j]
					denom += nij / (p[i] + p[j])
				}
			}
			next[i] = wins / denom
			moved = math.Max(moved, math.Abs(math.Log(next[i])-math.Log(p[i])))
		}
		p, next = next, p
		if moved < 1e-10 {
			break
		}
	}
	out := make([]float64, n)
	for i := range p {
		out[i] = math.Log(p[i])
	}
	return out
}

// ratings maps log-strengths to the Elo scale with mean Anchor.
func ratings(models []string, logp []float64) map[string]float64 {
	out := make(map[string]float64, len(models))
	var mean float64
	for _, l := range logp {
		mean += l
	}
	if len(logp) > 0 {
		mean /= float64(len(logp))
	}
	for i, m := range models {
		out[m] = Anchor + Scale*(logp[i]-mean)/math.Ln10
	}
	return out
}

// percentile of sorted s at q, interpolating between neighbours.
func percentile(s []float64, q float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}
