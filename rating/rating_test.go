package rating

import (
	"math"
	"testing"
)

// reference fits the same model as Fit by a different method: Newton's
// method on the log-likelihood in θ = log p, with the prior's tied game
// against a fixed opponent of strength 1, from θ = 0. It shares no code
// with the MM fit.
func reference(t *testing.T, games []Game) map[string]float64 {
	t.Helper()
	names := map[string]int{}
	var models []string
	for _, g := range games {
		for _, m := range []string{g.A, g.B} {
			if _, ok := names[m]; !ok {
				names[m] = len(models)
				models = append(models, m)
			}
		}
	}
	n := len(models)
	theta := make([]float64, n)
	for iter := 0; iter < 200; iter++ {
		grad := make([]float64, n)
		hess := make([][]float64, n)
		for i := range hess {
			hess[i] = make([]float64, n)
		}
		// Each game: score s for A (1 win, 0.5 tie), contributes
		// s·θa + (1-s)·θb - log(e^θa + e^θb).
		for _, g := range games {
			a, b := names[g.A], names[g.B]
			s := 1.0
			if g.Tie {
				s = 0.5
			}
			pa := 1 / (1 + math.Exp(theta[b]-theta[a]))
			grad[a] += s - pa
			grad[b] += (1 - s) - (1 - pa)
			v := pa * (1 - pa)
			hess[a][a] -= v
			hess[b][b] -= v
			hess[a][b] += v
			hess[b][a] += v
		}
		// The prior: a tie against an opponent with θ = 0.
		for i := range theta {
			pi := 1 / (1 + math.Exp(-theta[i]))
			grad[i] += 0.5 - pi
			hess[i][i] -= pi * (1 - pi)
		}
		step := solve(hess, grad)
		var moved float64
		for i := range theta {
			theta[i] -= step[i]
			moved = math.Max(moved, math.Abs(step[i]))
		}
		if moved < 1e-12 {
			break
		}
	}
	var mean float64
	for _, th := range theta {
		mean += th
	}
	mean /= float64(n)
	out := map[string]float64{}
	for i, m := range models {
		out[m] = 1000 + 400*(theta[i]-mean)/math.Ln10
	}
	return out
}

// solve returns x with A x = b by Gaussian elimination with pivoting.
func solve(a [][]float64, b []float64) []float64 {
	n := len(b)
	m := make([][]float64, n)
	for i := range a {
		m[i] = append(append([]float64{}, a[i]...), b[i])
	}
	for c := 0; c < n; c++ {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(m[r][c]) > math.Abs(m[p][c]) {
				p = r
			}
		}
		m[c], m[p] = m[p], m[c]
		for r := c + 1; r < n; r++ {
			f := m[r][c] / m[c][c]
			for k := c; k <= n; k++ {
				m[r][k] -= f * m[c][k]
			}
		}
	}
	x := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		s := m[i][n]
		for k := i + 1; k < n; k++ {
			s -= m[i][k] * x[k]
		}
		x[i] = s / m[i][i]
	}
	return x
}

// designed is a vote set with a clear order A > B > C > D, some upsets,
// ties, and a model (E) that never lost.
func designed() [][]Game {
	var units [][]Game
	add := func(n int, g ...Game) {
		for range n {
			units = append(units, g)
		}
	}
	add(12, Game{A: "a", B: "b"})
	add(5, Game{A: "b", B: "a"})
	add(10, Game{A: "b", B: "c"})
	add(4, Game{A: "c", B: "b"})
	add(3, Game{A: "b", B: "c", Tie: true})
	add(9, Game{A: "c", B: "d"})
	add(2, Game{A: "d", B: "c"})
	add(6, Game{A: "a", B: "d"})
	// Three-way votes: one choice beats both others.
	add(4, Game{A: "a", B: "c"}, Game{A: "a", B: "d"})
	add(2, Game{A: "d", B: "a"}, Game{A: "d", B: "b"})
	add(2, Game{A: "a", B: "b", Tie: true}, Game{A: "a", B: "c", Tie: true}, Game{A: "b", B: "c", Tie: true})
	add(3, Game{A: "e", B: "d"})
	return units
}

func flatten(units [][]Game) []Game {
	var all []Game
	for _, u := range units {
		all = append(all, u...)
	}
	return all
}

func TestFitMatchesNewtonReference(t *testing.T) {
	games := flatten(designed())
	got, want := Fit(games), reference(t, games)
	if len(got) != len(want) {
		t.Fatalf("models: got %v, want %v", got, want)
	}
	for m, w := range want {
		if math.Abs(got[m]-w) > 1 {
			t.Errorf("%s: rating %.3f, reference %.3f", m, got[m], w)
		}
	}
}

func TestBoardRatingsOrderCountsAndIntervals(t *testing.T) {
	units := designed()
	board := Board(units, Options{Resamples: 150, Seed: 7})
	want := reference(t, flatten(units))
	var mean float64
	for i, st := range board {
		mean += st.Rating
		if math.Abs(st.Rating-want[st.Model]) > 1 {
			t.Errorf("%s: rating %.3f, reference %.3f", st.Model, st.Rating, want[st.Model])
		}
		if !(st.Low <= st.Rating && st.Rating <= st.High) || st.High-st.Low <= 0 {
			t.Errorf("%s: interval [%.1f, %.1f] does not hold %.1f", st.Model, st.Low, st.High, st.Rating)
		}
		if i > 0 && board[i-1].Rating < st.Rating {
			t.Errorf("not best first: %s %.1f before %s %.1f", board[i-1].Model, board[i-1].Rating, st.Model, st.Rating)
		}
		if st.Battles != st.Wins+st.Ties+st.Losses {
			t.Errorf("%s: battles %d != %d+%d+%d", st.Model, st.Battles, st.Wins, st.Ties, st.Losses)
		}
	}
	if math.Abs(mean/float64(len(board))-Anchor) > 1e-6 {
		t.Errorf("mean rating %.6f, want %v", mean/float64(len(board)), Anchor)
	}
	order := ""
	for _, st := range board {
		if st.Model != "e" {
			order += st.Model
		}
	}
	if order != "abcd" {
		t.Errorf("order %q, want abcd (a clear order in the votes)", order)
	}
	// a: 12+6+4·2 wins, 5+2 losses, 2·2 ties.
	for _, st := range board {
		if st.Model == "a" && (st.Wins != 26 || st.Losses != 7 || st.Ties != 4 || st.Battles != 37) {
			t.Errorf("a: %+v", st)
		}
	}
}

func TestEloScale(t *testing.T) {
	// With the prior's pull negligible, 10:1 odds are about 400 points.
	var games []Game
	for range 10000 {
		games = append(games, Game{A: "x", B: "y"})
	}
	for range 1000 {
		games = append(games, Game{A: "y", B: "x"})
	}
	r := Fit(games)
	if d := r["x"] - r["y"]; math.Abs(d-400) > 2 {
		t.Errorf("10:1 odds give %.2f points, want about 400", d)
	}
	if math.Abs((r["x"]+r["y"])/2-1000) > 1e-9 {
		t.Errorf("mean %v, want 1000", (r["x"]+r["y"])/2)
	}
}

func TestAllTiesAreEqualAndEmptyIsEmpty(t *testing.T) {
	r := Fit([]Game{{A: "x", B: "y", Tie: true}, {A: "y", B: "z", Tie: true}})
	for m, v := range r {
		if math.Abs(v-1000) > 1e-6 {
			t.Errorf("%s: %v after ties only, want 1000", m, v)
		}
	}
	if b := Board(nil, Options{}); len(b) != 0 {
		t.Errorf("empty board: %v", b)
	}
}

func TestUnbeatenModelStaysFinite(t *testing.T) {
	b := Board([][]Game{{{A: "x", B: "y"}}, {{A: "x", B: "y"}}}, Options{Seed: 1})
	for _, st := range b {
		if math.IsInf(st.Rating, 0) || math.IsNaN(st.Rating) || math.IsNaN(st.Low) || math.IsNaN(st.High) {
			t.Errorf("%+v", st)
		}
	}
	if b[0].Model != "x" {
		t.Errorf("winner %s first? %+v", b[0].Model, b)
	}
}
