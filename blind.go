package playground

import (
	"context"
	"encoding/json"
	"time"
)

// This file holds blind comparisons: what a hidden session shows (the one
// redaction point every Session, Response and live event passes through),
// the votes on it, and the reveal.

// Hidden reports whether s hides which model wrote which answer: a blind
// session not yet revealed.
func (s *Session) Hidden() bool { return s.Blind && !s.Revealed }

// View is s as its viewers may see it: s itself, or, while s is hidden, a
// copy whose responses are Redacted. Every Session is marshalled through
// it (Session.MarshalJSON), so no path can forget it.
func (s *Session) View() *Session {
	if !s.Hidden() {
		return s
	}
	c := s.Clone()
	for i, r := range c.Responses {
		c.Responses[i] = r.Redacted()
	}
	return c
}

// ViewOf is r, a response of s, as s's viewers may see it: r itself, or
// r.Redacted() while s is hidden. Live events are built from it.
func (s *Session) ViewOf(r *Response) *Response {
	if s.Hidden() {
		return r.Redacted()
	}
	return r
}

// Redacted is a copy of r with everything that could name its model
// removed: no model (written as null), no cost, and, for an error, a
// message that names no provider (upstream messages often do). Timings
// and token counts stay: they name nothing.
func (r *Response) Redacted() *Response {
	c := *r
	c.Model = ""
	if r.Metrics != nil {
		m := *r.Metrics
		m.CostUSD = nil
		c.Metrics = &m
	}
	if r.Error != nil {
		e := *r.Error
		e.Message = blindErrorMessage(e.Code)
		c.Error = &e
	}
	return &c
}

// blindErrorMessage is a response error's message as a hidden session
// shows it: said of "the model", from its code alone.
func blindErrorMessage(code string) string {
	switch code {
	case RErrRateLimited:
		return "The model's provider is rate-limiting requests; try again shortly."
	case RErrTimeout:
		return "The model took too long to answer."
	case RErrProviderUnavailable:
		return "The model cannot be served right now; try again shortly."
	case RErrAuthFailed:
		return "The server's key for this model was refused."
	case RErrInsufficientCredits:
		return "The server's account for this model is out of credits."
	case RErrModelNotFound:
		return "The model could not be found upstream."
	case RErrContentFilter:
		return "The model withheld the answer under its content policy."
	case RErrInterrupted:
		return "The server running this response stopped before it finished."
	default:
		return "The model's provider failed to answer."
	}
}

// MarshalJSON writes the session as View shows it.
func (s Session) MarshalJSON() ([]byte, error) {
	type plain Session // no MarshalJSON: no recursion
	return json.Marshal((*plain)(s.View()))
}

// MarshalJSON writes a response; a redacted one's model is null.
func (r Response) MarshalJSON() ([]byte, error) {
	type plain Response
	return json.Marshal(struct {
		plain
		Model ModelRef `json:"model"`
	}{plain(r), ModelRef(r.Model)})
}

// ModelRef is a model id on the wire: null when empty, as a hidden
// session's responses and events have it.
type ModelRef string

// MarshalJSON writes null for the empty ModelRef.
func (m ModelRef) MarshalJSON() ([]byte, error) {
	if m == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(m))
}

// Vote choices besides a response id.
const (
	ChoiceTie    = "tie"
	ChoiceAllBad = "all_bad"
)

// MinBlindModels is the fewest columns a blind session may have.
const MinBlindModels = 2

// Vote is one account's verdict on a blind session.
type Vote struct {
	SessionID string    `json:"-"`
	UserID    string    `json:"-"`
	Choice    string    `json:"choice"`
	At        time.Time `json:"at"`
	// IdentityLeak is set when an answer of the session names its own
	// model or maker (see IdentityLeak); such votes are left out of the
	// leaderboard unless asked for.
	IdentityLeak bool `json:"identityLeak"`
}

// RevealEvent tells a blind session's viewers which model wrote which
// answer, with the votes' tally. It is not part of the log.
type RevealEvent struct {
	Type      EventType        `json:"type"`
	SessionID string           `json:"sessionId"`
	Responses []RevealedColumn `json:"responses"`
	Votes     map[string]int   `json:"votes"`
}

// RevealedColumn names the model behind one label.
type RevealedColumn struct {
	ResponseID string   `json:"responseId"`
	Label      string   `json:"label"`
	Model      string   `json:"model"`
	CostUSD    *float64 `json:"costUsd"`
}

// NewRevealEvent is the reveal of s (as stored, with its models) with
// the tally of its votes: every response and tie and all_bad, 0 when none.
func NewRevealEvent(s *Session, tally map[string]int) RevealEvent {
	ev := RevealEvent{Type: EventReveal, SessionID: s.ID, Votes: map[string]int{ChoiceTie: 0, ChoiceAllBad: 0}}
	for _, r := range s.Responses {
		col := RevealedColumn{ResponseID: r.ID, Label: r.Label, Model: r.Model}
		if r.Metrics != nil {
			col.CostUSD = r.Metrics.CostUSD
		}
		ev.Responses = append(ev.Responses, col)
		ev.Votes[r.ID] = 0
	}
	for k, n := range tally {
		if _, ok := ev.Votes[k]; ok {
			ev.Votes[k] = n
		}
	}
	return ev
}

// RevealFrame is a reveal for the session's viewers; not part of the log.
func RevealFrame(ev RevealEvent) Frame {
	ev.Type = EventReveal
	return EncodeFrame(EventReveal, ev.SessionID, 0, ev)
}

// CountedVote is one vote as the leaderboard counts it: the models of the
// session's complete responses, and the winner among them ("" for a tie
// or all_bad). A vote for an answer that did not complete is not counted.
type CountedVote struct {
	UserID       string
	Models       []string
	Winner       string
	IdentityLeak bool
}

// VoteService stores votes and reveals. Not found is a *Error ENotFound.
type VoteService interface {
	// CastVote stores v (one per account and session: a second replaces
	// the first) if the session is still hidden, in one transaction with
	// that check; after the reveal it is a *Error EConflict and nothing
	// is written.
	CastVote(ctx context.Context, v *Vote) error
	// Reveal marks a blind session revealed; it reports whether this
	// call did it (false: it was revealed already).
	Reveal(ctx context.Context, sessionID string) (bool, error)
	// Tally counts a session's votes by choice.
	Tally(ctx context.Context, sessionID string) (map[string]int, error)
	// CountedVotes lists the votes the leaderboard counts: those cast on
	// blind sessions that have been revealed (every vote is cast before
	// its session's reveal), of one account, or of all with userID "".
	CountedVotes(ctx context.Context, userID string) ([]CountedVote, error)
}
