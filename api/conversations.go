package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"unicode/utf8"

	"github.com/playground-dev/playground"
)

// Limits of a conversation (docs/api.md, "Conversations").
const (
	maxTurns       = 100
	maxThreadChars = 400_000
)

// thread is a conversation's sessions, indexed by response, for walking a
// response's continues chain.
type thread struct {
	sessions []*playground.Session
	byResp   map[string]threadEntry
}

type threadEntry struct {
	sess *playground.Session
	resp *playground.Response
}

func newThread(sessions []*playground.Session) *thread {
	t := &thread{sessions: sessions, byResp: make(map[string]threadEntry)}
	for _, s := range sessions {
		for _, r := range s.Responses {
			t.byResp[r.ID] = threadEntry{s, r}
		}
	}
	return t
}

// loadThread reads the conversation that sess belongs to.
func (s *Server) loadThread(ctx context.Context, sess *playground.Session) (*thread, error) {
	sessions, err := s.opts.Sessions.Thread(ctx, sess.RootID)
	if err != nil {
		return nil, err
	}
	return newThread(sessions), nil
}

// history is what a model carrying on respID is sent before its new
// prompt: the prompt and answer text of each response along respID's
// continues chain, oldest first, respID's own last (nil: nothing).
func (t *thread) history(respID *string) []playground.Exchange {
	var out []playground.Exchange
	for id := respID; id != nil; {
		e, ok := t.byResp[*id]
		if !ok {
			break
		}
		out = append(out, playground.Exchange{Prompt: e.sess.Prompt, Answer: e.resp.Text})
		id = e.resp.Continues
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// threadChars counts what one column sends upstream in all.
func threadChars(c playground.Column, prompt string) int {
	n := utf8.RuneCountInString(prompt)
	if c.System != nil {
		n += utf8.RuneCountInString(*c.System)
	}
	for _, x := range c.History {
		n += utf8.RuneCountInString(x.Prompt) + utf8.RuneCountInString(x.Answer)
	}
	return n
}

// checkTurn refuses a new turn of conv that it cannot hold: the turn limit
// (409) and, per column, the size of what it would send (400 on prompt).
func checkTurn(conv *thread, columns []playground.Column, prompt string) error {
	if len(conv.sessions) >= maxTurns {
		return playground.Errorf(playground.EConflict, "This conversation has reached %d turns; start a new one.", maxTurns)
	}
	for _, c := range columns {
		if threadChars(c, prompt) > maxThreadChars {
			return playground.Invalid("prompt", "This turn would send %s more than %d characters in all; start a new conversation.", c.Model, maxThreadChars)
		}
	}
	return nil
}

// followupRequest is the body of POST /sessions/{id}/followup.
type followupRequest struct {
	Prompt string             `json:"prompt"`
	Models []string           `json:"models"`
	From   *string            `json:"from"`
	Params *playground.Params `json:"params"`
}

// handleFollowup starts the next turn of a conversation: each column
// carries on its own thread, or, with from, every column carries on that
// one answer's thread. Owner only; charged like any session.
// ?estimate=1 answers what it would charge and cost instead, as
// POST /sessions/estimate does, counting each column's thread.
func (s *Server) handleFollowup(w http.ResponseWriter, r *http.Request) error {
	var body followupRequest
	c, share, err := s.callerBody(w, r, &body)
	if err != nil {
		return err
	}
	// Fields, then models, before the session is looked up (docs/api.md's order).
	check := playground.SessionRequest{Prompt: body.Prompt, Models: playground.Entries(body.Models...), Params: body.Params}
	if err := check.ValidatePrompt(); err != nil {
		return err
	}
	if body.Params != nil {
		if err := body.Params.Validate(); err != nil {
			return err
		}
	}
	if body.Models != nil {
		if err := playground.ValidateEntries(check.Models, nil); err != nil {
			return err
		}
	}
	if body.From != nil {
		// With from, models are model ids: any available model may take
		// the winner's thread up.
		if _, err := s.lookupModels(check.Models); err != nil {
			return err
		}
	}
	parent, err := s.nextTurnOf(r, c, share)
	if err != nil {
		return err
	}
	conv, err := s.loadThread(r.Context(), parent)
	if err != nil {
		return err
	}
	var columns []playground.Column
	if body.From != nil {
		columns, err = fromColumns(parent, conv, *body.From, body.Models, body.Params)
	} else {
		columns, err = ownColumns(parent, conv, body.Models, body.Params)
	}
	if err != nil {
		return err
	}
	if err := playground.ValidateEntries(columnEntries(columns), columns); err != nil {
		return err
	}
	if _, err := s.lookupModels(columnEntries(columns)); err != nil {
		return err
	}
	if err := checkTurn(conv, columns, body.Prompt); err != nil {
		return err
	}
	if r.URL.Query().Get("estimate") == "1" {
		return s.writeEstimate(w, r, c.p, body.Prompt, columns)
	}
	return s.writeStarted(w, r, c.p, newSession{
		prompt: body.Prompt, system: parent.System, params: body.Params, columns: columns,
		kind: playground.KindFollowup, parent: parent,
	})
}

// carryOn is the column that model takes when it carries on resp: resp's
// system prompt (a follow-up cannot change it), resp's params overlaid
// with params, and resp's thread.
func carryOn(conv *thread, model string, resp *playground.Response, params *playground.Params) playground.Column {
	return playground.Column{
		Model: model, Params: resp.Params.Overlay(params), System: resp.System,
		Continues: &resp.ID, History: conv.history(&resp.ID),
	}
}

// ownColumns are the columns of a follow-up without from: each named
// response of parent (by model id, or by response id when a model appears
// twice) carries on its own thread; by default every column that ended
// complete.
func ownColumns(parent *playground.Session, conv *thread, names []string, params *playground.Params) ([]playground.Column, error) {
	if names == nil {
		var out []playground.Column
		for _, r := range parent.Responses {
			if r.Status == playground.StatusComplete {
				out = append(out, carryOn(conv, r.Model, r, params))
			}
		}
		if len(out) == 0 {
			return nil, playground.Invalid("models", "No answer of this turn completed: there is nothing to follow up.")
		}
		return out, nil
	}
	out := make([]playground.Column, 0, len(names))
	for i, name := range names {
		field := fmt.Sprintf("models[%d]", i)
		var match *playground.Response
		for _, r := range parent.Responses {
			if r.ID == name {
				match = r
				break
			}
			if r.Model == name {
				if match != nil {
					return nil, playground.Invalid(field, "Model %q answered more than once in this turn: name the answer by its response id.", name)
				}
				match = r
			}
		}
		switch {
		case match == nil:
			return nil, playground.Invalid(field, "%q names no answer of this turn.", name)
		case match.Status != playground.StatusComplete:
			return nil, playground.Invalid(field, "The answer %q did not complete, so it cannot be followed up.", name)
		}
		out = append(out, carryOn(conv, match.Model, match, params))
	}
	return out, nil
}

// fromColumns are the columns of a follow-up with from: every model
// carries on that one answer's thread (by default the answer's own model).
func fromColumns(parent *playground.Session, conv *thread, from string, models []string, params *playground.Params) ([]playground.Column, error) {
	resp := parent.Response(from)
	if resp == nil || resp.Status != playground.StatusComplete {
		return nil, playground.Invalid("from", "from must name an answer of this turn that completed.")
	}
	if models == nil {
		models = []string{resp.Model}
	}
	out := make([]playground.Column, len(models))
	for i, m := range models {
		out[i] = carryOn(conv, m, resp, params)
	}
	return out, nil
}

func columnEntries(cols []playground.Column) []playground.ModelEntry {
	out := make([]playground.ModelEntry, len(cols))
	for i, c := range cols {
		out[i] = playground.ModelEntry{Model: c.Model}
	}
	return out
}

// rerunRequest is the body of POST /sessions/{id}/rerun.
type rerunRequest struct {
	Models []playground.ModelEntry `json:"models"`
	Params *playground.Params      `json:"params"`
	From   *string                 `json:"from"`
}

// handleRerun starts a new session with the parent's prompt and system,
// the models of the body and its params (else the parent's), parentId set;
// charged and started like any other. Owner only. In a conversation each
// column carries on the thread that parent's answer of the same model
// carried on, or, with from (an answer of parent's own parent), that
// answer's thread.
func (s *Server) handleRerun(w http.ResponseWriter, r *http.Request) error {
	var body rerunRequest
	c, share, err := s.callerBody(w, r, &body)
	if err != nil {
		return err
	}
	// Fields and models are checked before the parent is looked up, in
	// docs/api.md's order (400 before 404).
	if body.Params != nil {
		if err := body.Params.Validate(); err != nil {
			return err
		}
	}
	fields := playground.SessionRequest{Models: body.Models, Params: body.Params}
	if err := playground.ValidateEntries(body.Models, fields.Columns()); err != nil {
		return err
	}
	if _, err := s.lookupModels(body.Models); err != nil {
		return err
	}
	parent, err := s.nextTurnOf(r, c, share)
	if err != nil {
		return err
	}
	req := playground.SessionRequest{Prompt: parent.Prompt, System: parent.System, Models: body.Models, Params: body.Params}
	if req.Params == nil {
		params := parent.Params
		req.Params = &params
	}
	columns := req.Columns()
	if body.From != nil || anyContinues(parent) {
		conv, err := s.loadThread(r.Context(), parent)
		if err != nil {
			return err
		}
		if err := rerunThreads(parent, conv, columns, body.From); err != nil {
			return err
		}
		if err := checkTurn(conv, columns, parent.Prompt); err != nil {
			return err
		}
	}
	// With the parent's system prompt the columns may now coincide.
	if err := playground.ValidateEntries(body.Models, columns); err != nil {
		return err
	}
	return s.writeStarted(w, r, c.p, newSession{
		prompt: parent.Prompt, system: parent.System, params: req.Params, columns: columns,
		kind: playground.KindRerun, parent: parent,
	})
}

// rerunThreads sets the thread each column of a rerun of parent carries
// on: with from, that answer of parent's parent; else the one that
// parent's answer of the same model carried on. A model with neither is
// 400.
func rerunThreads(parent *playground.Session, conv *thread, columns []playground.Column, from *string) error {
	if from != nil {
		e, ok := conv.byResp[*from]
		if !ok || parent.ParentID == nil || e.sess.ID != *parent.ParentID || e.resp.Status != playground.StatusComplete {
			return playground.Invalid("from", "from must name an answer of the turn before this one that completed.")
		}
		for i := range columns {
			columns[i].Continues, columns[i].History = &e.resp.ID, conv.history(&e.resp.ID)
		}
		return nil
	}
	for i := range columns {
		var found *playground.Response
		for _, pr := range parent.Responses {
			if pr.Model == columns[i].Model {
				found = pr
				break
			}
		}
		if found == nil {
			return playground.Invalid(fmt.Sprintf("models[%d]", i),
				"Model %q has no answer in this turn whose thread it could carry on; name a model of this turn, or give from.", columns[i].Model)
		}
		columns[i].Continues, columns[i].History = found.Continues, conv.history(found.Continues)
	}
	return nil
}

// anyContinues reports whether some response of s carries on a thread.
func anyContinues(s *playground.Session) bool {
	return slices.ContainsFunc(s.Responses, func(r *playground.Response) bool { return r.Continues != nil })
}

// handleThread answers every session of {id}'s conversation that the
// caller may see, oldest first, with their texts.
func (s *Server) handleThread(w http.ResponseWriter, r *http.Request) error {
	sess, owner, err := s.requestSession(r, toSee)
	if err != nil {
		return err
	}
	share := r.URL.Query().Get("share")
	conv, err := s.loadThread(r.Context(), sess)
	if err != nil {
		return err
	}
	out := make([]*playground.Session, 0, len(conv.sessions))
	for _, t := range conv.sessions {
		// A turn shared on its own (before conversations) shows no more
		// than it shared.
		if !owner && !tokenEqual(t.ShareToken, share) {
			continue
		}
		out = append(out, s.withLive(t))
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}
