package api

import (
	"net/http"
	"unicode/utf8"

	"github.com/playground-dev/playground"
)

// Token estimate of POST /sessions/estimate. No provider's tokenizer is
// run: for every provider family the prompt is taken as one token per 4
// characters (rounded up) of prompt plus system, plus a fixed overhead per
// message for the chat framing. The completion is taken at
// params.maxTokens, or defaultCompletionTokens when the request sets none
// (Anthropic's API requires max_tokens, and we send this same default), so
// that the cost is an upper bound for the completion and an approximation
// for the prompt.
const (
	charsPerToken           = 4
	tokensPerMessage        = 4
	defaultCompletionTokens = 1024
)

// estimateAnswer is the body of POST /sessions/estimate.
type estimateAnswer struct {
	QuotaRequired  int             `json:"quotaRequired"`
	QuotaRemaining int             `json:"quotaRemaining"`
	Models         []modelEstimate `json:"models"`
}

type modelEstimate struct {
	Model            string   `json:"model"`
	EstimatedCostUSD *float64 `json:"estimatedCostUsd"`
}

// handleEstimate answers what POST /sessions with the same body would
// charge and cost, with the same checks, and charges nothing.
func (s *Server) handleEstimate(w http.ResponseWriter, r *http.Request) error {
	p, req, err := s.sessionRequest(w, r)
	if err != nil {
		return err
	}
	return s.writeEstimate(w, r, p, req.Prompt, req.Columns())
}

// writeEstimate answers the charge and the cost of starting columns with
// prompt (each column with its own system prompt, thread and maxTokens).
func (s *Server) writeEstimate(w http.ResponseWriter, r *http.Request, p *Principal, prompt string, columns []playground.Column) error {
	models, err := s.lookupModels(columnEntries(columns))
	if err != nil {
		return err
	}
	u, err := s.currentUser(r.Context(), p)
	if err != nil {
		return err
	}
	out := estimateAnswer{QuotaRequired: len(models), QuotaRemaining: u.Quota.Remaining, Models: make([]modelEstimate, 0, len(models))}
	for i, m := range models {
		in, completion := estimateTokens(prompt, columns[i])
		out.Models = append(out.Models, modelEstimate{Model: m.ID, EstimatedCostUSD: m.Pricing.Cost(&in, &completion)})
	}
	s.writeJSON(w, http.StatusOK, out)
	return nil
}

// estimateTokens is the prompt and completion token estimate of one
// column, as described at charsPerToken: its system prompt, every earlier
// prompt and answer of its thread, and the prompt, each a message.
func estimateTokens(prompt string, c playground.Column) (in, completion int64) {
	chars := utf8.RuneCountInString(prompt)
	messages := 1
	if c.System != nil && *c.System != "" {
		chars += utf8.RuneCountInString(*c.System)
		messages++
	}
	for _, x := range c.History {
		chars += utf8.RuneCountInString(x.Prompt) + utf8.RuneCountInString(x.Answer)
		messages += 2
	}
	in = int64((chars+charsPerToken-1)/charsPerToken + messages*tokensPerMessage)
	completion = defaultCompletionTokens
	if c.Params.MaxTokens != nil {
		completion = int64(*c.Params.MaxTokens)
	}
	return in, completion
}

// ratingRequest is the body of PUT …/rating; Score is a pointer so that a
// missing score is told apart from 0.
type ratingRequest struct {
	Score *int `json:"score"`
}

// handleRating records the owner's score of an ended response: 200
// {"response"}. Share holders get 403; a response still running 400.
func (s *Server) handleRating(w http.ResponseWriter, r *http.Request) error {
	var body ratingRequest
	c, share, err := s.callerBody(w, r, &body)
	if err != nil {
		return err
	}
	if body.Score == nil {
		return playground.Invalid("score", "score is required: -1, 0 or 1.")
	}
	if *body.Score < -1 || *body.Score > 1 {
		return playground.Invalid("score", "score must be -1, 0 or 1.")
	}
	sess, _, err := s.liveSession(r.Context(), c, r.PathValue("id"), share, toAct)
	if err != nil {
		return err
	}
	resp := sess.Response(r.PathValue("responseId"))
	if resp == nil {
		return playground.Errorf(playground.ENotFound, "No such response in this comparison.")
	}
	if !resp.Ended() {
		return playground.Errorf(playground.EInvalid, "A response can be rated once it has ended.")
	}
	out, err := s.opts.Sessions.SetRating(r.Context(), sess.ID, resp.ID, *body.Score)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"response": sess.ViewOf(out)})
	return nil
}

// handleModelStats answers the per-model statistics of the caller's own
// sessions.
func (s *Server) handleModelStats(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	stats, err := s.opts.Sessions.ModelStats(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	if stats == nil {
		stats = []*playground.ModelStats{}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"models": stats})
	return nil
}
