package api

import (
	"crypto/rand"
	"math/big"
	"net/http"
	"slices"

	"github.com/playground-dev/playground"
)

// This file serves blind comparisons: the shuffle of a new blind
// session's columns, votes and the reveal (docs/api.md, "Blind
// comparisons and the leaderboard"). What a hidden session shows is
// decided once, by playground.Session.View.

// shuffled returns the columns in a uniformly random order (crypto/rand:
// the order must not be guessable from anything the server shows).
func shuffled(cols []playground.Column) []playground.Column {
	out := append([]playground.Column(nil), cols...)
	for i := len(out) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			panic("api: crypto/rand: " + err.Error()) // crypto/rand does not fail (Go 1.24+)
		}
		k := int(j.Int64())
		out[i], out[k] = out[k], out[i]
	}
	return out
}

// nextTurnOf is the session {id} for its owner c to start a turn from (a
// follow-up or a rerun): 409 for a blind session before its reveal.
func (s *Server) nextTurnOf(r *http.Request, c caller, share string) (*playground.Session, error) {
	parent, _, err := s.liveSession(r.Context(), c, r.PathValue("id"), share, toAct)
	if err != nil {
		return nil, err
	}
	if parent.Hidden() {
		return nil, playground.Errorf(playground.EConflict, "A blind comparison takes no follow-up or rerun until it is revealed.")
	}
	return parent, nil
}

type voteRequest struct {
	Choice *string `json:"choice"`
}

// handleVote records the caller's vote on a blind session: the owner's,
// or a signed-in share holder's; an anonymous viewer is 401. A session
// that is not shared is revealed by its owner's vote at once.
func (s *Server) handleVote(w http.ResponseWriter, r *http.Request) error {
	c, share, err := s.requestCaller(r)
	if err != nil {
		return err
	}
	// A vote is an account's: a share token alone is not enough.
	if c.p == nil {
		if c.badCred != nil {
			err = c.badCred
		} else {
			err = playground.Errorf(playground.EUnauthorized, "Sign in to vote.")
		}
		return err
	}
	var body voteRequest
	if err := s.decode(w, r, &body); err != nil {
		return err
	}
	if body.Choice == nil || *body.Choice == "" {
		return playground.Invalid("choice", `choice is required: a response id, "tie" or "all_bad".`)
	}
	sess, owner, err := s.liveSession(r.Context(), c, r.PathValue("id"), share, toSee)
	if err != nil {
		return err
	}
	choice := *body.Choice
	switch {
	case !sess.Blind:
		return playground.Invalid("choice", "Only a blind comparison takes votes.")
	case choice != playground.ChoiceTie && choice != playground.ChoiceAllBad && sess.Response(choice) == nil:
		return playground.Invalid("choice", `choice must be a response of this comparison, "tie" or "all_bad".`)
	case sess.Revealed:
		return playground.Errorf(playground.EConflict, "Votes are closed: the comparison has been revealed.")
	}
	v := &playground.Vote{SessionID: sess.ID, UserID: c.p.UserID, Choice: choice, At: s.now(),
		IdentityLeak: s.identityLeak(sess)}
	if err := s.opts.Votes.CastVote(r.Context(), v); err != nil {
		return err
	}
	if owner && !sess.Shared {
		// Vote, then see: nobody else can vote on a session not shared.
		if err := s.reveal(r, sess.ID); err != nil {
			return err
		}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"vote": v})
	return nil
}

// identityLeak checks every answer of the session so far against the
// patterns of playground.IdentityLeak.
func (s *Server) identityLeak(sess *playground.Session) bool {
	models := make([]string, 0, len(sess.Responses))
	names := map[string]string{}
	for _, r := range sess.Responses {
		models = append(models, r.Model)
		if m, _, err := s.opts.Catalog.Lookup(r.Model); err == nil {
			names[r.Model] = m.Name
		}
	}
	return slices.ContainsFunc(sess.Responses, func(r *playground.Response) bool {
		return playground.IdentityLeak(r.Text, models, names)
	})
}

// handleReveal shows a blind session's models: the owner only; revealing
// twice changes nothing.
func (s *Server) handleReveal(w http.ResponseWriter, r *http.Request) error {
	sess, _, err := s.requestSession(r, toAct)
	if err != nil {
		return err
	}
	if sess.Hidden() {
		if err := s.reveal(r, sess.ID); err != nil {
			return err
		}
		if sess, _, err = s.requestSession(r, toAct); err != nil {
			return err
		}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"session": sess})
	return nil
}

// reveal marks the session revealed and, if this call did it, tells its
// viewers on every instance, with the tally. A viewer the broker could not
// reach sees the models at its next snapshot or GET.
func (s *Server) reveal(r *http.Request, sessionID string) error {
	ctx := r.Context()
	did, err := s.opts.Votes.Reveal(ctx, sessionID)
	if err != nil || !did || s.opts.Hub == nil {
		return err
	}
	sess, err := s.opts.Sessions.FindSession(ctx, sessionID)
	if err != nil {
		return err
	}
	sess = s.withLive(sess)
	tally, err := s.opts.Votes.Tally(ctx, sessionID)
	if err != nil {
		return err
	}
	if err := s.opts.Hub.Reveal(ctx, playground.NewRevealEvent(sess, tally)); err != nil {
		s.log.Warn("api: tell the other instances of a reveal", "session", sessionID, "err", err)
	}
	return nil
}
