package playground

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// Session statuses: running until every response has ended.
const (
	SessionRunning   = "running"
	SessionComplete  = "complete"
	SessionError     = "error"
	SessionCancelled = "cancelled"
)

// Response statuses. They only move forward: pending → streaming →
// complete, or to error / cancelled from pending or streaming.
const (
	StatusPending   = "pending"
	StatusStreaming = "streaming"
	StatusComplete  = "complete"
	StatusError     = "error"
	StatusCancelled = "cancelled"
)

// Finish reasons reported in Metrics.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishContentFilter = "content_filter"
	FinishError         = "error"
	FinishCancelled     = "cancelled"
)

// Response error codes (Response.error.code).
const (
	RErrRateLimited         = "rate_limited"
	RErrTimeout             = "timeout"
	RErrProviderError       = "provider_error"
	RErrProviderUnavailable = "provider_unavailable"
	RErrAuthFailed          = "auth_failed"
	RErrInsufficientCredits = "insufficient_credits"
	RErrModelNotFound       = "model_not_found"
	RErrContentFilter       = "content_filter"
	RErrInterrupted         = "interrupted"
)

// Limits of a session request.
const (
	MaxPromptChars    = 32000
	MaxSystemChars    = 32000
	MaxModels         = 8
	MaxTokensLimit    = 32768
	MaxSessionsListed = 100
)

// Session is one comparison: one prompt sent to several models.
type Session struct {
	ID         string    `json:"id"`
	UserID     string    `json:"-"`
	Prompt     string    `json:"prompt"`
	System     *string   `json:"system"`
	Params     Params    `json:"params"`
	CreatedAt  time.Time `json:"createdAt"`
	Status     string    `json:"status"`
	Shared     bool      `json:"shared"`
	ShareToken string    `json:"-"`
	ParentID   *string   `json:"parentId"`
	// RootID is the first turn of the session's conversation: its own id
	// for a new session, its parent's RootID otherwise.
	RootID string `json:"rootId"`
	// Kind is KindNew, KindFollowup or KindRerun.
	Kind string `json:"kind"`
	// Blind hides which model wrote which answer until Revealed.
	Blind bool `json:"blind"`
	// Revealed is false exactly while a blind session is hidden.
	Revealed bool `json:"revealed"`
	// Votes counts a blind session's votes so far: how many, never for
	// what (the reveal tells the tally). Nil, and not written, for a
	// session that is not blind, and in live events.
	Votes     *int        `json:"votes,omitempty"`
	Responses []*Response `json:"responses"`
	// Turns counts the sessions of the conversation this one starts; set
	// on the first turns that ListSessions returns, else 0.
	Turns int `json:"-"`
	// LastSeq is the seq of the last event the session's log holds; once
	// the session has ended it is the seq of its done event.
	LastSeq int64 `json:"-"`
	// Owner names the instance running the session while it runs.
	Owner string `json:"-"`
}

// Session kinds: a first turn, a follow-up of an earlier turn, or a rerun
// of one with other models or params.
const (
	KindNew      = "new"
	KindFollowup = "followup"
	KindRerun    = "rerun"
)

// Reasoning efforts of Params.ReasoningEffort.
const (
	EffortOff    = "off"
	EffortLow    = "low"
	EffortMedium = "medium"
	EffortHigh   = "high"
)

// Params are the generation settings of a session, and of each of its
// responses (the session's, overlaid with the column's own). A setting
// that is not set is null: the provider's default applies.
type Params struct {
	Temperature     *float64 `json:"temperature"`
	MaxTokens       *int     `json:"maxTokens"`
	TopP            *float64 `json:"topP"`
	ReasoningEffort *string  `json:"reasoningEffort"`
}

// Overlay returns p with every setting that o sets taken from o.
func (p Params) Overlay(o *Params) Params {
	if o == nil {
		return p
	}
	overlay(&p.Temperature, o.Temperature)
	overlay(&p.MaxTokens, o.MaxTokens)
	overlay(&p.TopP, o.TopP)
	overlay(&p.ReasoningEffort, o.ReasoningEffort)
	return p
}

// overlay is one field of an overlay: *dst becomes src when src is set
// (nil: not set, keep what dst holds).
func overlay[T any](dst **T, src *T) {
	if src != nil {
		*dst = src
	}
}

// Equal reports whether p and o set the same settings to the same values.
func (p Params) Equal(o Params) bool {
	return eqPtr(p.Temperature, o.Temperature) && eqPtr(p.MaxTokens, o.MaxTokens) &&
		eqPtr(p.TopP, o.TopP) && eqPtr(p.ReasoningEffort, o.ReasoningEffort)
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Response is one model's answer within a session.
type Response struct {
	ID        string `json:"id"`
	SessionID string `json:"-"`
	Model     string `json:"model"`
	// Label is the column's letter: A, B, … in column order.
	Label  string `json:"label"`
	Status string `json:"status"`
	// Params are the settings this column runs with: the session's,
	// overlaid with the column's own.
	Params Params `json:"params"`
	// System is the system prompt this column runs with (nil: none).
	System *string `json:"system"`
	// Continues is the response whose conversation this one carries on
	// (nil on a first turn).
	Continues *string `json:"continues"`
	Text      string  `json:"text"`
	// Reasoning is the model's visible thinking ("" when it sent none).
	Reasoning string         `json:"reasoning"`
	Error     *ResponseError `json:"error"`
	Metrics   *Metrics       `json:"metrics"`
	Rating    int            `json:"rating"`
	// NextIndex is the index the response's next chunk will carry.
	NextIndex int `json:"-"`
	// Attempts counts upstream requests so far (also in Metrics once ended).
	Attempts int `json:"-"`
	// Refunded reports whether the run was given back to the quota.
	Refunded bool `json:"-"`
	// History is the thread this response carries on, oldest first, as
	// sent upstream; set when the session is started, not stored (the
	// continues chain holds it).
	History []Exchange `json:"-"`
}

// Label is the letter of the column at position (0-based): A … Z, then
// AA, AB, … should columns ever outnumber the alphabet.
func Label(position int) string {
	if position < 26 {
		return string(rune('A' + position))
	}
	return Label(position/26-1) + Label(position%26)
}

// Ended reports whether the response reached a final status.
func (r *Response) Ended() bool {
	return r.Status == StatusComplete || r.Status == StatusError || r.Status == StatusCancelled
}

// ResponseError says why a response ended in error.
type ResponseError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

// Metrics are measured once a response ends. Pointers are null when
// neither reported by the provider nor computable: never a guess.
type Metrics struct {
	TTFTMs           *int64   `json:"ttftMs"`
	DurationMs       int64    `json:"durationMs"`
	PromptTokens     *int64   `json:"promptTokens"`
	CompletionTokens *int64   `json:"completionTokens"`
	TokensPerSecond  *float64 `json:"tokensPerSecond"`
	CostUSD          *float64 `json:"costUsd"`
	Attempts         int      `json:"attempts"`
	FinishReason     string   `json:"finishReason"`
	ReasoningTokens  *int64   `json:"reasoningTokens"`
	CachedTokens     *int64   `json:"cachedTokens"`
}

// FinalStatus is the session status implied by its responses, or running.
func (s *Session) FinalStatus() string {
	anyErr, anyCancel := false, false
	for _, r := range s.Responses {
		switch r.Status {
		case StatusError:
			anyErr = true
		case StatusCancelled:
			anyCancel = true
		case StatusComplete:
		default:
			return SessionRunning
		}
	}
	switch {
	case anyErr:
		return SessionError
	case anyCancel:
		return SessionCancelled
	}
	return SessionComplete
}

// Response returns the response with the given id, or nil.
func (s *Session) Response(id string) *Response {
	for _, r := range s.Responses {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// Clone returns a deep copy, safe to hand to another goroutine.
func (s *Session) Clone() *Session {
	c := *s
	if s.Votes != nil {
		n := *s.Votes
		c.Votes = &n
	}
	c.Responses = make([]*Response, len(s.Responses))
	for i, r := range s.Responses {
		rc := *r
		if r.Error != nil {
			e := *r.Error
			rc.Error = &e
		}
		if r.Metrics != nil {
			m := *r.Metrics
			rc.Metrics = &m
		}
		c.Responses[i] = &rc
	}
	return &c
}

// SessionRequest is the body of POST /sessions (and of estimate).
type SessionRequest struct {
	Prompt string       `json:"prompt"`
	Models []ModelEntry `json:"models"`
	System *string      `json:"system"`
	Params *Params      `json:"params"`
	// Blind hides which model wrote which answer until the reveal.
	Blind bool `json:"blind"`
}

// ModelEntry is one column of a session request: a model id, or an object
// giving the column its own params (over the session's) and its own system
// prompt (instead of the session's).
type ModelEntry struct {
	Model  string  `json:"model"`
	Params *Params `json:"params"`
	System *string `json:"system"`
}

// UnmarshalJSON takes a bare model id as well as the object form.
func (e *ModelEntry) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*e = ModelEntry{}
		return json.Unmarshal(b, &e.Model)
	}
	type plain ModelEntry // no UnmarshalJSON: no recursion
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*e = ModelEntry(p)
	return nil
}

// Entries makes model entries of plain ids.
func Entries(ids ...string) []ModelEntry {
	out := make([]ModelEntry, len(ids))
	for i, id := range ids {
		out[i] = ModelEntry{Model: id}
	}
	return out
}

// Column is a new session's column as it will run: its model, the params
// and system prompt in effect for it, and, in a conversation, the response
// it carries on with that response's thread.
type Column struct {
	Model     string
	Params    Params
	System    *string
	Continues *string
	History   []Exchange
}

// Columns resolves each entry against the session's params and system
// prompt. An empty system prompt is none.
func (r *SessionRequest) Columns() []Column {
	base := Params{}
	if r.Params != nil {
		base = *r.Params
	}
	out := make([]Column, len(r.Models))
	for i, e := range r.Models {
		sys := r.System
		if e.System != nil {
			sys = e.System
		}
		if sys != nil && *sys == "" {
			sys = nil
		}
		out[i] = Column{Model: e.Model, Params: base.Overlay(e.Params), System: sys}
	}
	return out
}

// Validate checks the field rules of docs/api.md; models are only checked for
// count, shape and duplicates here (the catalogue checks they exist).
func (r *SessionRequest) Validate() error {
	if err := r.ValidatePrompt(); err != nil {
		return err
	}
	if r.System != nil && utf8.RuneCountInString(*r.System) > MaxSystemChars {
		return Invalid("system", "System prompt must be at most %d characters.", MaxSystemChars)
	}
	if r.System != nil {
		if err := noNUL("system", *r.System); err != nil {
			return err
		}
	}
	if r.Params != nil {
		if err := r.Params.validate("params."); err != nil {
			return err
		}
	}
	if err := ValidateEntries(r.Models, r.Columns()); err != nil {
		return err
	}
	if r.Blind && len(r.Models) < MinBlindModels {
		return Invalid("models", "A blind comparison needs %d to %d models.", MinBlindModels, MaxModels)
	}
	return nil
}

// ValidatePrompt checks the prompt's length: 1 to MaxPromptChars.
func (r *SessionRequest) ValidatePrompt() error {
	n := utf8.RuneCountInString(r.Prompt)
	if n < 1 {
		return Invalid("prompt", "Prompt is required.")
	}
	if n > MaxPromptChars {
		return Invalid("prompt", "Prompt must be at most %d characters.", MaxPromptChars)
	}
	return noNUL("prompt", r.Prompt)
}

// ValidateEntries checks 1 to 8 entries, each naming a model, with valid
// params and system prompt, and no two columns alike: the same model twice
// is allowed only when its params or system prompt differ (cols are the
// entries resolved, as Columns gives them).
func ValidateEntries(entries []ModelEntry, cols []Column) error {
	if len(entries) < 1 || len(entries) > MaxModels {
		return Invalid("models", "Choose 1 to %d models.", MaxModels)
	}
	for i, e := range entries {
		field := fmt.Sprintf("models[%d]", i)
		if e.Model == "" {
			return Invalid(field+".model", "Each column needs a model id.")
		}
		if e.System != nil && utf8.RuneCountInString(*e.System) > MaxSystemChars {
			return Invalid(field+".system", "System prompt must be at most %d characters.", MaxSystemChars)
		}
		if e.System != nil {
			if err := noNUL(field+".system", *e.System); err != nil {
				return err
			}
		}
		if e.Params != nil {
			if err := e.Params.validate(field + ".params."); err != nil {
				return err
			}
		}
	}
	for i := range cols {
		for j := 0; j < i; j++ {
			a, b := cols[j], cols[i]
			if a.Model == b.Model && a.Params.Equal(b.Params) && eqPtr(a.System, b.System) {
				return Invalid(fmt.Sprintf("models[%d]", i),
					"Model %q is listed twice with the same params and system prompt.", b.Model)
			}
		}
	}
	return nil
}

// Validate checks the ranges of docs/api.md, naming fields under "params.".
func (p *Params) Validate() error { return p.validate("params.") }

func (p *Params) validate(prefix string) error {
	if p.Temperature != nil && (*p.Temperature < 0 || *p.Temperature > 2) {
		return Invalid(prefix+"temperature", "Temperature must be between 0 and 2.")
	}
	if p.TopP != nil && (*p.TopP <= 0 || *p.TopP > 1) {
		return Invalid(prefix+"topP", "topP must be above 0 and at most 1.")
	}
	if p.MaxTokens != nil && (*p.MaxTokens < 1 || *p.MaxTokens > MaxTokensLimit) {
		return Invalid(prefix+"maxTokens", "maxTokens must be between 1 and %d.", MaxTokensLimit)
	}
	if e := p.ReasoningEffort; e != nil && *e != EffortOff && *e != EffortLow && *e != EffortMedium && *e != EffortHigh {
		return Invalid(prefix+"reasoningEffort", `reasoningEffort must be "off", "low", "medium" or "high".`)
	}
	return nil
}

// ResponseCheckpoint is the running state of one response, written at
// least every two seconds while a session streams. A checkpoint carries
// only what the last one did not: Text is the response's text from byte
// TextFrom on, Reasoning its thinking from byte ReasoningFrom on, so the
// bytes written for a response grow with its length, not its square.
// Written again at the same offsets (a retry after a failed write), the
// longer text replaces the shorter: nothing is stored twice.
type ResponseCheckpoint struct {
	ID            string
	Status        string
	TextFrom      int
	Text          string
	ReasoningFrom int
	Reasoning     string
	NextIndex     int
	Attempts      int
}

// ModelStats is one row of GET /stats/models.
type ModelStats struct {
	Model              string   `json:"model"`
	Runs               int      `json:"runs"`
	Errors             int      `json:"errors"`
	Wins               int      `json:"wins"`
	AvgTTFTMs          *float64 `json:"avgTtftMs"`
	P50TokensPerSecond *float64 `json:"p50TokensPerSecond"`
	TotalCostUSD       float64  `json:"totalCostUsd"`
}

// SessionAccess is what decides who may see a session: its owner, and
// the share token that covers it (its conversation's; "" when not shared).
type SessionAccess struct {
	UserID     string
	ShareToken string
}

// SessionService stores comparisons. Not found is a *Error with ENotFound.
type SessionService interface {
	// CreateSession charges cost runs from the owner's quota by one atomic
	// statement (resetting a turned period first) and inserts the session
	// and its responses, all in one transaction. Not enough quota is a
	// *Error EQuotaExceeded with details remaining, required and resetsAt,
	// and nothing is written.
	CreateSession(ctx context.Context, s *Session) error
	FindSession(ctx context.Context, id string) (*Session, error)
	// FindSessionAccess returns only what decides who may see the
	// session: its owner and its share token, as FindSession would.
	FindSessionAccess(ctx context.Context, id string) (SessionAccess, error)
	// FindSessionByShareToken returns the session that holds token: the
	// first turn of the conversation it shares.
	FindSessionByShareToken(ctx context.Context, token string) (*Session, error)
	// Thread returns every session of the conversation whose first turn is
	// rootID, oldest first, with their texts.
	Thread(ctx context.Context, rootID string) ([]*Session, error)
	// ListSessions returns the user's conversations, one first turn each
	// with its Turns, newest first, without response texts, and the cursor
	// of the next page ("" on the last).
	ListSessions(ctx context.Context, userID, cursor string, limit int) ([]*Session, string, error)
	// SetShareToken sets (or, with "", clears) the share token of the
	// session's conversation; a session's ShareToken, as found, is its
	// conversation's.
	SetShareToken(ctx context.Context, id, token string) error

	// Checkpoint writes the running state of responses that have not ended
	// and the session's last seq. It never overwrites an ended response.
	Checkpoint(ctx context.Context, sessionID string, lastSeq int64, rs []ResponseCheckpoint) error
	// FinishResponse commits a response's final row (status, full text,
	// metrics, error) and, when refund is set, gives its unit back to the
	// owner once (a second call refunds nothing).
	FinishResponse(ctx context.Context, sessionID string, r *Response, refund bool) error
	// FinishSession commits the session's final status and last seq.
	FinishSession(ctx context.Context, sessionID, status string, lastSeq int64) error
	// RunningSessions lists sessions still marked running (for recovery).
	RunningSessions(ctx context.Context) ([]*Session, error)

	SetRating(ctx context.Context, sessionID, responseID string, score int) (*Response, error)
	ModelStats(ctx context.Context, userID string) ([]*ModelStats, error)
}

// Runner runs comparisons while they stream (implemented by actors.Engine).
type Runner interface {
	// Start begins streaming a session that CreateSession has just stored
	// (status running, every response pending). It returns once the
	// session is registered, so a subscribe that follows finds it.
	Start(s *Session) error
	// Cancel ends every running response of the session, or only the one
	// named by responseID, wherever the session runs. Cancelling an ended
	// session or response changes nothing.
	Cancel(ctx context.Context, sessionID, responseID string) error
	// Live returns the current state of a session that runs on this
	// instance, with its text so far.
	Live(sessionID string) (*Session, bool)
	// Unshare cuts off the viewers that came with token, wherever they are.
	Unshare(ctx context.Context, sessionID, token string) error
}
