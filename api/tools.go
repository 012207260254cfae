package api

import (
	"fmt"
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
func (s *Server) handleEstimate(w http.ResponseWriter, r *http.Request) {
	p, err := s.authenticate(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req playground.SessionRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := req.Validate(); err != nil {
		s.writeError(w, r, err)
		return
	}
	models, err := s.lookupModels(req.Models)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.currentUser(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	prompt, completion := estimateTokens(&req)
	out := estimateAnswer{QuotaRequired: len(models), QuotaRemaining: u.Quota.Remaining, Models: make([]modelEstimate, 0, len(models))}
	for _, m := range models {
		out.Models = append(out.Models, modelEstimate{Model: m.ID, EstimatedCostUSD: m.Pricing.Cost(&prompt, &completion)})
	}
	s.writeJSON(w, http.StatusOK, out)
}

// estimateTokens is the prompt and completion token estimate described at
// charsPerToken.
func estimateTokens(req *playground.SessionRequest) (prompt, completion int64) {
	chars := utf8.RuneCountInString(req.Prompt)
	messages := 1
	if req.System != nil && *req.System != "" {
		chars += utf8.RuneCountInString(*req.System)
		messages++
	}
	prompt = int64((chars+charsPerToken-1)/charsPerToken + messages*tokensPerMessage)
	completion = defaultCompletionTokens
	if req.Params != nil && req.Params.MaxTokens != nil {
		completion = int64(*req.Params.MaxTokens)
	}
	return prompt, completion
}

// rerunRequest is the body of POST /sessions/{id}/rerun.
type rerunRequest struct {
	Models []playground.ModelEntry `json:"models"`
	Params *playground.Params      `json:"params"`
}

// handleRerun starts a new session with the parent's prompt and system,
// the models of the body and its params (else the parent's), parentId set;
// charged and started like any other. Owner only.
func (s *Server) handleRerun(w http.ResponseWriter, r *http.Request) {
	p, share, err := s.authOrShare(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var body rerunRequest
	if err := s.decode(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Fields and models are checked before the parent is looked up, in
	// API.md's order (400 before 404).
	if body.Params != nil {
		if err := body.Params.Validate(); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	fields := playground.SessionRequest{Models: body.Models, Params: body.Params}
	if err := playground.ValidateEntries(body.Models, fields.Columns()); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.lookupModels(body.Models); err != nil {
		s.writeError(w, r, err)
		return
	}
	parent, owner, err := s.visibleSession(r.Context(), p, r.PathValue("id"), share)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !owner {
		s.writeError(w, r, playground.Errorf(playground.EForbidden, "Only the owner of this comparison may rerun it."))
		return
	}
	req := playground.SessionRequest{Prompt: parent.Prompt, System: parent.System, Models: body.Models, Params: body.Params}
	if req.Params == nil {
		params := parent.Params
		req.Params = &params
	}
	// With the parent's system prompt the columns may now coincide.
	if err := req.Validate(); err != nil {
		s.writeError(w, r, err)
		return
	}
	continues, err := rerunThreads(parent, body.Models)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sess, err := s.startSession(r.Context(), p, &req, turn{kind: playground.KindRerun, parent: parent, continues: continues})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, map[string]any{"session": sess})
}

// rerunThreads gives each column of a rerun the thread it carries on: the
// one that parent's response of the same model carried on. When parent
// carries on no thread (a first turn) any model may be asked; further down
// a conversation, a model that no response of parent ran has no thread to
// carry on, and is 400.
func rerunThreads(parent *playground.Session, entries []playground.ModelEntry) ([]*string, error) {
	out := make([]*string, len(entries))
	for i, e := range entries {
		var found *playground.Response
		for _, pr := range parent.Responses {
			if pr.Model == e.Model {
				found = pr
				break
			}
		}
		switch {
		case found != nil:
			out[i] = found.Continues
		case anyContinues(parent):
			return nil, playground.Invalid(fmt.Sprintf("models[%d]", i),
				"Model %q has no answer in this turn to carry on; name a model of this turn.", e.Model)
		}
	}
	return out, nil
}

// anyContinues reports whether some response of s carries on a thread.
func anyContinues(s *playground.Session) bool {
	for _, r := range s.Responses {
		if r.Continues != nil {
			return true
		}
	}
	return false
}

// ratingRequest is the body of PUT …/rating; Score is a pointer so that a
// missing score is told apart from 0.
type ratingRequest struct {
	Score *int `json:"score"`
}

// handleRating records the owner's score of an ended response: 200
// {"response"}. Share holders get 403; a response still running 400.
func (s *Server) handleRating(w http.ResponseWriter, r *http.Request) {
	p, share, err := s.authOrShare(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var body ratingRequest
	if err := s.decode(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Score == nil {
		s.writeError(w, r, playground.Invalid("score", "score is required: -1, 0 or 1."))
		return
	}
	if *body.Score < -1 || *body.Score > 1 {
		s.writeError(w, r, playground.Invalid("score", "score must be -1, 0 or 1."))
		return
	}
	sess, owner, err := s.visibleSession(r.Context(), p, r.PathValue("id"), share)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !owner {
		s.writeError(w, r, playground.Errorf(playground.EForbidden, "Only the owner of this comparison may rate it."))
		return
	}
	resp := sess.Response(r.PathValue("responseId"))
	if resp == nil {
		s.writeError(w, r, playground.Errorf(playground.ENotFound, "No such response in this comparison."))
		return
	}
	if !resp.Ended() {
		s.writeError(w, r, playground.Errorf(playground.EInvalid, "A response can be rated once it has ended."))
		return
	}
	out, err := s.opts.Sessions.SetRating(r.Context(), sess.ID, resp.ID, *body.Score)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"response": out})
}

// handleModelStats answers the per-model statistics of the caller's own
// sessions.
func (s *Server) handleModelStats(w http.ResponseWriter, r *http.Request) {
	p, err := s.authenticate(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	stats, err := s.opts.Sessions.ModelStats(r.Context(), p.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if stats == nil {
		stats = []*playground.ModelStats{}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"models": stats})
}
