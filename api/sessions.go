package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/playground-dev/playground"
)

// shareTokenBytes is the randomness of a share token: 192 bits, written as
// 32 URL-safe characters.
const shareTokenBytes = 24

// defaultListLimit is GET /sessions' page size when none is asked.
const defaultListLimit = 20

// handleModels lists the catalogue; no credentials needed.
func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) error {
	models := s.opts.Catalog.Models()
	if models == nil {
		models = []playground.Model{}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"models": models})
	return nil
}

// handleCreateSession starts a comparison: 201 {"session"} with every
// response pending; streaming has begun.
func (s *Server) handleCreateSession(w http.ResponseWriter, r *http.Request) error {
	p, req, err := s.sessionRequest(w, r)
	if err != nil {
		return err
	}
	return s.writeStarted(w, r, p, fromRequest(req))
}

// sessionRequest is the caller and the checked body of POST /sessions
// (and of its estimate), in docs/api.md's order: credentials, fields,
// then models against the catalogue.
func (s *Server) sessionRequest(w http.ResponseWriter, r *http.Request) (*Principal, *playground.SessionRequest, error) {
	p, err := s.authenticate(r)
	if err != nil {
		return nil, nil, err
	}
	var req playground.SessionRequest
	if err := s.decode(w, r, &req); err != nil {
		return nil, nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, nil, err
	}
	if _, err := s.lookupModels(req.Models); err != nil {
		return nil, nil, err
	}
	return p, &req, nil
}

// writeStarted starts n for p and answers 201 {"session"}, or returns the
// error.
func (s *Server) writeStarted(w http.ResponseWriter, r *http.Request, p *Principal, n newSession) error {
	sess, err := s.startSession(r.Context(), p, n)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusCreated, map[string]any{"session": sess})
	return nil
}

// modelIDs are the model ids of a request's entries, in column order.
func modelIDs(entries []playground.ModelEntry) []string {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.Model
	}
	return ids
}

// lookupModels resolves each id: unknown_model for one the catalogue does
// not list, model_unavailable for one whose provider cannot serve now;
// both with details.model.
func (s *Server) lookupModels(entries []playground.ModelEntry) ([]playground.Model, error) {
	out := make([]playground.Model, 0, len(entries))
	for _, id := range modelIDs(entries) {
		m, _, err := s.opts.Catalog.Lookup(id)
		if err != nil {
			code := playground.ErrorCode(err)
			if code == playground.EUnknownModel || code == playground.EModelUnavailable {
				return nil, playground.Errorf(code, "%s", playground.ErrorMessage(err)).WithDetail("model", id)
			}
			return nil, err
		}
		if !m.Available {
			e := playground.Errorf(playground.EModelUnavailable, "Model %q cannot be used right now.", id).WithDetail("model", id)
			if m.UnavailableReason != nil {
				e.WithDetail("reason", *m.UnavailableReason)
			}
			return nil, e
		}
		out = append(out, m)
	}
	return out, nil
}

// newSession is a session about to be started: its prompt, the session's
// system prompt and params as asked, its columns as they will run, and
// where it stands in its conversation (parent nil: a first turn).
type newSession struct {
	prompt  string
	system  *string
	params  *playground.Params
	columns []playground.Column
	kind    string
	parent  *playground.Session
	blind   bool
}

// fromRequest is a first turn as POST /sessions asks for it.
func fromRequest(req *playground.SessionRequest) newSession {
	return newSession{prompt: req.Prompt, system: req.System, params: req.Params, columns: req.Columns(), kind: playground.KindNew, blind: req.Blind}
}

// startSession charges and stores a new session and starts it.
func (s *Server) startSession(ctx context.Context, p *Principal, n newSession) (*playground.Session, error) {
	sess := &playground.Session{
		ID:        "s_" + uuid.NewString(),
		UserID:    p.UserID,
		Prompt:    n.prompt,
		System:    n.system,
		CreatedAt: s.now().UTC(),
		Status:    playground.SessionRunning,
		Kind:      n.kind,
		Blind:     n.blind,
		Revealed:  !n.blind,
		Responses: make([]*playground.Response, 0, len(n.columns)),
	}
	sess.RootID = sess.ID
	if n.parent != nil {
		sess.ParentID, sess.RootID = &n.parent.ID, n.parent.RootID
	}
	// An empty system prompt is no system prompt: stored and shown as null.
	if sess.System != nil && *sess.System == "" {
		sess.System = nil
	}
	if n.params != nil {
		sess.Params = *n.params
	}
	if n.blind {
		// Labels follow the shuffled order, so A is not always the first
		// model asked; responses are listed (and stored) in label order.
		n.columns = shuffled(n.columns)
	}
	for i, c := range n.columns {
		sess.Responses = append(sess.Responses, &playground.Response{
			ID: "r_" + uuid.NewString(), SessionID: sess.ID, Model: c.Model, Label: playground.Label(i),
			Status: playground.StatusPending, Params: c.Params, System: c.System,
			Continues: c.Continues, History: c.History,
		})
	}
	if err := s.opts.Sessions.CreateSession(ctx, sess); err != nil {
		return nil, err
	}
	// The answer is the session as created: the runner's goroutines own
	// sess from Start on, so answer from a copy taken before.
	answer := sess.Clone()
	if err := s.opts.Runner.Start(sess); err != nil {
		s.abandon(ctx, answer, err)
		return nil, unavailable(err, "The comparison could not be started; your quota was not used.")
	}
	s.metrics.sessionsStarted.Inc()
	if n.parent != nil && s.opts.Hub != nil {
		// The parent's followers hear of the new turn, wherever they
		// watch; one the broker could not reach finds it in the thread.
		if err := s.opts.Hub.Announce(ctx, n.parent.ID, playground.NextTurn{SessionID: answer.ID, Kind: answer.Kind}); err != nil {
			s.log.Warn("api: announce a new turn to the other instances", "session", answer.ID, "err", err)
		}
	}
	return answer, nil
}

// abandon ends a stored session that the runner refused to start, giving
// each unit back, so that nothing is left running or charged.
func (s *Server) abandon(ctx context.Context, sess *playground.Session, cause error) {
	s.log.Error("api: start session", "session", sess.ID, "err", cause)
	ctx = context.WithoutCancel(ctx)
	for _, resp := range sess.Responses {
		resp.Status = playground.StatusError
		resp.Error = &playground.ResponseError{Code: playground.RErrProviderUnavailable, Message: "The comparison could not be started.", Retryable: true}
		resp.Metrics = &playground.Metrics{FinishReason: playground.FinishError}
		if err := s.opts.Sessions.FinishResponse(ctx, sess.ID, resp, true); err != nil {
			s.log.Error("api: abandon response", "session", sess.ID, "response", resp.ID, "err", err)
		}
	}
	if err := s.opts.Sessions.FinishSession(ctx, sess.ID, playground.SessionError, sess.LastSeq); err != nil {
		s.log.Error("api: abandon session", "session", sess.ID, "err", err)
	}
}

// sessionSummary is a list item of GET /sessions: a conversation's first
// turn, with how many turns the conversation holds, whose responses have
// no text or reasoning (docs/api.md: "omitted from list items").
type sessionSummary struct {
	ID        string             `json:"id"`
	Prompt    string             `json:"prompt"`
	System    *string            `json:"system"`
	Params    playground.Params  `json:"params"`
	CreatedAt time.Time          `json:"createdAt"`
	Status    string             `json:"status"`
	Shared    bool               `json:"shared"`
	ParentID  *string            `json:"parentId"`
	RootID    string             `json:"rootId"`
	Kind      string             `json:"kind"`
	Blind     bool               `json:"blind"`
	Revealed  bool               `json:"revealed"`
	Votes     *int               `json:"votes,omitempty"`
	Turns     int                `json:"turns"`
	Responses []*responseSummary `json:"responses"`
}

type responseSummary struct {
	ID        string                    `json:"id"`
	Model     playground.ModelRef       `json:"model"`
	Label     string                    `json:"label"`
	Status    string                    `json:"status"`
	Params    playground.Params         `json:"params"`
	System    *string                   `json:"system"`
	Continues *string                   `json:"continues"`
	Error     *playground.ResponseError `json:"error"`
	Metrics   *playground.Metrics       `json:"metrics"`
	Rating    int                       `json:"rating"`
}

func summarize(sess *playground.Session) *sessionSummary {
	out := &sessionSummary{
		ID: sess.ID, Prompt: sess.Prompt, System: sess.System, Params: sess.Params,
		CreatedAt: sess.CreatedAt, Status: sess.Status, Shared: sess.Shared, ParentID: sess.ParentID,
		RootID: sess.RootID, Kind: sess.Kind, Blind: sess.Blind, Revealed: sess.Revealed, Votes: sess.Votes, Turns: sess.Turns,
		Responses: make([]*responseSummary, 0, len(sess.Responses)),
	}
	for _, r := range sess.View().Responses {
		out.Responses = append(out.Responses, &responseSummary{
			ID: r.ID, Model: playground.ModelRef(r.Model), Label: r.Label, Status: r.Status, Params: r.Params, System: r.System,
			Continues: r.Continues, Error: r.Error, Metrics: r.Metrics, Rating: r.Rating,
		})
	}
	return out
}

// handleListSessions pages through the caller's sessions, newest first.
func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" || q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > playground.MaxSessionsListed {
			return playground.Invalid("limit", "limit must be a whole number from 1 to %d.", playground.MaxSessionsListed)
		}
		limit = n
	}
	list, next, err := s.opts.Sessions.ListSessions(r.Context(), p.UserID, q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	items := make([]*sessionSummary, 0, len(list))
	for _, sess := range list {
		items = append(items, summarize(s.withLive(sess)))
	}
	var cursor *string
	if next != "" {
		cursor = &next
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"sessions": items, "nextCursor": cursor})
	return nil
}

// handleGetSession answers one session with the text so far, to its owner
// or to a holder of its share token (?share=).
func (s *Server) handleGetSession(w http.ResponseWriter, r *http.Request) error {
	sess, _, err := s.requestSession(r, toSee)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"session": sess})
	return nil
}

// handleGetShared finds a session by its share token alone, for a viewer
// who has only the link. A dead token is 404.
func (s *Server) handleGetShared(w http.ResponseWriter, r *http.Request) error {
	token := r.PathValue("token")
	if !playground.CouldBeID(playground.IDShareToken, token) {
		return playground.Errorf(playground.ENotFound, "No such session.")
	}
	row, err := s.opts.Sessions.FindSessionByShareToken(r.Context(), token)
	if err != nil {
		return err
	}
	// Compare anyway: a store that matched loosely (case, collation) must
	// not widen who can see a session.
	if !tokenEqual(row.ShareToken, token) {
		return playground.Errorf(playground.ENotFound, "No such session.")
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"session": s.withLive(row)})
	return nil
}

// withLive is row as it stands: a session running here is further along
// than its last checkpoint, so its live copy merged with row; else row.
func (s *Server) withLive(row *playground.Session) *playground.Session {
	if live, ok := s.opts.Runner.Live(row.ID); ok {
		return mergeLive(row, live)
	}
	return row
}

// mergeLive returns the live copy of a session with what only the
// database knows: owner, share state, reveal and ratings.
func mergeLive(row, live *playground.Session) *playground.Session {
	out := live.Clone()
	out.UserID, out.ShareToken, out.Shared, out.Turns = row.UserID, row.ShareToken, row.Shared, row.Turns
	// The reveal is the database's: the live copy may not have heard yet.
	out.Blind, out.Revealed, out.Votes = row.Blind, row.Revealed, row.Votes
	for _, r := range out.Responses {
		if dr := row.Response(r.ID); dr != nil {
			r.Rating = dr.Rating
		}
	}
	return out
}

// handleCancel ends what is still running of a session (POST
// /sessions/{id}/cancel) or of one of its responses (POST
// …/responses/{responseId}/cancel, the others go on): 202, empty. Owner
// only; an unknown response id is 404; what has ended already is 202 and
// nothing changes.
func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) error {
	sess, _, err := s.requestSession(r, toAct)
	if err != nil {
		return err
	}
	respID := r.PathValue("responseId") // empty: the whole session
	running := sess.Status == playground.SessionRunning
	if respID != "" {
		resp := sess.Response(respID)
		if resp == nil {
			return playground.Errorf(playground.ENotFound, "No such response in this comparison.")
		}
		running = !resp.Ended()
	}
	if running {
		if err := s.opts.Runner.Cancel(r.Context(), sess.ID, respID); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// handleShare answers the session's share token, making one if it has
// none: asked again while shared, the same token.
func (s *Server) handleShare(w http.ResponseWriter, r *http.Request) error {
	sess, _, err := s.requestSession(r, toAct)
	if err != nil {
		return err
	}
	token := sess.ShareToken
	if token == "" {
		token = newShareToken()
		if err := s.opts.Sessions.SetShareToken(r.Context(), sess.ID, token); err != nil {
			return err
		}
	}
	s.writeJSON(w, http.StatusOK, map[string]string{"shareToken": token})
	return nil
}

// handleUnshare clears the share token (204) and cuts off the viewers who
// came with it, wherever they watch.
func (s *Server) handleUnshare(w http.ResponseWriter, r *http.Request) error {
	sess, _, err := s.requestSession(r, toAct)
	if err != nil {
		return err
	}
	if sess.ShareToken != "" {
		if err := s.opts.Sessions.SetShareToken(r.Context(), sess.ID, ""); err != nil {
			return err
		}
		// The token is dead in the database already: new viewers are
		// refused. Cutting off the current ones, on every turn of the
		// conversation, is best effort; a failure is logged, not reported
		// as a failed unshare.
		ids := []string{sess.ID}
		if conv, err := s.opts.Sessions.Thread(r.Context(), sess.RootID); err == nil {
			ids = ids[:0]
			for _, t := range conv {
				ids = append(ids, t.ID)
			}
		}
		for _, id := range ids {
			if err := s.opts.Runner.Unshare(r.Context(), id, sess.ShareToken); err != nil {
				s.log.Warn("api: cut off share viewers", "session", id, "err", err)
			}
			if s.opts.Hub != nil {
				s.opts.Hub.CutFollowers(id, sess.ShareToken) // the other instances': through the runner's unshare
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// newShareToken returns 192 random bits, URL-safe base64 (no padding).
func newShareToken() string {
	b := make([]byte, shareTokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
