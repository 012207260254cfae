package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/rating"
)

// leaderboardEvery is how often a board may be recomputed: the numbers
// served may be up to this old.
const leaderboardEvery = time.Minute

// leaderboardResamples is the bootstrap's resample count.
const leaderboardResamples = 200

// boardKey names one board: an account's ("" for everyone's), with or
// without the votes whose answers gave their model away.
type boardKey struct {
	userID string
	leaks  bool
}

// board is a computed leaderboard, as served.
type board struct {
	Models    []boardModel `json:"models"`
	Votes     int          `json:"votes"`
	UpdatedAt *time.Time   `json:"updatedAt"`
}

type boardModel struct {
	Model   string     `json:"model"`
	Rating  float64    `json:"rating"`
	CI95    [2]float64 `json:"ci95"`
	Battles int        `json:"battles"`
	Wins    int        `json:"wins"`
	Ties    int        `json:"ties"`
	Losses  int        `json:"losses"`
}

// leaderboards holds the boards computed so far. A request never
// computes: it serves what is there (an empty board with updatedAt null
// before the first computation) and, when that is missing or older than
// leaderboardEvery, starts one computation of that board in the
// background, unless one already runs.
type leaderboards struct {
	mu      sync.Mutex
	boards  map[boardKey]*board
	running map[boardKey]bool
	wg      sync.WaitGroup
}

// board returns the board for k as it stands, asking for a fresher one
// when it is due. Each computation runs in a goroutine of its own,
// started here, which ends when the computation does (bounded by a
// timeout and by the server's closing); CloseLive waits for it.
func (s *Server) board(k boardKey) board {
	lb := &s.boards
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.boards == nil {
		lb.boards, lb.running = map[boardKey]*board{}, map[boardKey]bool{}
	}
	b := lb.boards[k]
	due := b == nil || s.now().Sub(*b.UpdatedAt) >= leaderboardEvery
	if due && !lb.running[k] {
		lb.running[k] = true
		lb.wg.Add(1)
		go s.computeBoard(k)
	}
	if b == nil {
		return board{Models: []boardModel{}}
	}
	return *b
}

// computeBoard fits one board and stores it.
func (s *Server) computeBoard(k boardKey) {
	defer s.boards.wg.Done()
	ctx, cancel := context.WithTimeout(s.live.closing, 30*time.Second)
	defer cancel()
	b, err := s.fitBoard(ctx, k)
	s.boards.mu.Lock()
	defer s.boards.mu.Unlock()
	delete(s.boards.running, k)
	if err != nil {
		s.log.Warn("api: compute the leaderboard", "err", err)
		return
	}
	s.boards.boards[k] = b
}

// fitBoard reads the counted votes and fits them: a choice beats each
// other complete answer of its session, tie and all_bad tie every pair.
func (s *Server) fitBoard(ctx context.Context, k boardKey) (*board, error) {
	votes, err := s.opts.Votes.CountedVotes(ctx, k.userID)
	if err != nil {
		return nil, err
	}
	var units [][]rating.Game
	for _, v := range votes {
		if v.IdentityLeak && !k.leaks {
			continue
		}
		var games []rating.Game
		for i, a := range v.Models {
			for _, b := range v.Models[i+1:] {
				switch {
				case v.Winner == "":
					games = append(games, rating.Game{A: a, B: b, Tie: true})
				case v.Winner == a:
					games = append(games, rating.Game{A: a, B: b})
				case v.Winner == b:
					games = append(games, rating.Game{A: b, B: a})
				}
			}
		}
		if len(games) > 0 {
			units = append(units, games)
		}
	}
	now := s.now().UTC()
	out := &board{Models: []boardModel{}, Votes: len(units), UpdatedAt: &now}
	for _, st := range rating.Board(units, rating.Options{Resamples: leaderboardResamples, Seed: uint64(now.UnixNano())}) {
		out.Models = append(out.Models, boardModel{Model: st.Model, Rating: st.Rating, CI95: [2]float64{st.Low, st.High},
			Battles: st.Battles, Wins: st.Wins, Ties: st.Ties, Losses: st.Losses})
	}
	return out, nil
}

// handleLeaderboard answers GET /leaderboard?scope=me|all[&leaks=include].
func (s *Server) handleLeaderboard(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	k := boardKey{}
	switch q.Get("scope") {
	case "me":
		k.userID = p.UserID
	case "all":
	default:
		return playground.Invalid("scope", `scope must be "me" or "all".`)
	}
	switch q.Get("leaks") {
	case "":
	case "include":
		k.leaks = true
	default:
		return playground.Invalid("leaks", `leaks must be "include" or absent.`)
	}
	s.writeJSON(w, http.StatusOK, s.board(k))
	return nil
}
