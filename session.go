package playground

import (
	"context"
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
	ID         string      `json:"id"`
	UserID     string      `json:"-"`
	Prompt     string      `json:"prompt"`
	System     *string     `json:"system"`
	Params     Params      `json:"params"`
	CreatedAt  time.Time   `json:"createdAt"`
	Status     string      `json:"status"`
	Shared     bool        `json:"shared"`
	ShareToken string      `json:"-"`
	ParentID   *string     `json:"parentId"`
	Responses  []*Response `json:"responses"`
	// LastSeq is the seq of the last event the session's log holds; once
	// the session has ended it is the seq of its done event.
	LastSeq int64 `json:"-"`
	// Owner names the instance running the session while it runs.
	Owner string `json:"-"`
}

// Params are the generation settings sent to every model of a session.
type Params struct {
	Temperature *float64 `json:"temperature,omitempty"`
	MaxTokens   *int     `json:"maxTokens,omitempty"`
	TopP        *float64 `json:"topP,omitempty"`
}

// Response is one model's answer within a session.
type Response struct {
	ID        string         `json:"id"`
	SessionID string         `json:"-"`
	Model     string         `json:"model"`
	Status    string         `json:"status"`
	Text      string         `json:"text"`
	Error     *ResponseError `json:"error"`
	Metrics   *Metrics       `json:"metrics"`
	Rating    int            `json:"rating"`
	// NextIndex is the index the response's next chunk will carry.
	NextIndex int `json:"-"`
	// Attempts counts upstream requests so far (also in Metrics once ended).
	Attempts int `json:"-"`
	// Refunded reports whether the run was given back to the quota.
	Refunded bool `json:"-"`
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
	Prompt string   `json:"prompt"`
	Models []string `json:"models"`
	System *string  `json:"system"`
	Params *Params  `json:"params"`
}

// Validate checks the field rules of docs/api.md; models are only checked for
// count and duplicates here (the catalogue checks they exist).
func (r *SessionRequest) Validate() error {
	n := utf8.RuneCountInString(r.Prompt)
	if n < 1 {
		return Invalid("prompt", "Prompt is required.")
	}
	if n > MaxPromptChars {
		return Invalid("prompt", "Prompt must be at most %d characters.", MaxPromptChars)
	}
	if r.System != nil && utf8.RuneCountInString(*r.System) > MaxSystemChars {
		return Invalid("system", "System prompt must be at most %d characters.", MaxSystemChars)
	}
	if err := noNUL("prompt", r.Prompt); err != nil {
		return err
	}
	if r.System != nil {
		if err := noNUL("system", *r.System); err != nil {
			return err
		}
	}
	if err := ValidateModelList(r.Models); err != nil {
		return err
	}
	if r.Params != nil {
		return r.Params.Validate()
	}
	return nil
}

// ValidateModelList checks 1 to 8 distinct ids.
func ValidateModelList(models []string) error {
	if len(models) < 1 || len(models) > MaxModels {
		return Invalid("models", "Choose 1 to %d models.", MaxModels)
	}
	seen := make(map[string]bool, len(models))
	for _, m := range models {
		if seen[m] {
			return Invalid("models", "Model %q is listed twice.", m)
		}
		seen[m] = true
	}
	return nil
}

// Validate checks the ranges of docs/api.md.
func (p *Params) Validate() error {
	if p.Temperature != nil && (*p.Temperature < 0 || *p.Temperature > 2) {
		return Invalid("params.temperature", "Temperature must be between 0 and 2.")
	}
	if p.TopP != nil && (*p.TopP <= 0 || *p.TopP > 1) {
		return Invalid("params.topP", "topP must be above 0 and at most 1.")
	}
	if p.MaxTokens != nil && (*p.MaxTokens < 1 || *p.MaxTokens > MaxTokensLimit) {
		return Invalid("params.maxTokens", "maxTokens must be between 1 and %d.", MaxTokensLimit)
	}
	return nil
}

// ResponseCheckpoint is the running state of one response, written at
// least every two seconds while a session streams.
type ResponseCheckpoint struct {
	ID        string
	Status    string
	Text      string
	NextIndex int
	Attempts  int
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

// SessionService stores comparisons. Not found is a *Error with ENotFound.
type SessionService interface {
	// CreateSession charges cost runs from the owner's quota by one atomic
	// statement (resetting a turned period first) and inserts the session
	// and its responses, all in one transaction. Not enough quota is a
	// *Error EQuotaExceeded with details remaining, required and resetsAt,
	// and nothing is written.
	CreateSession(ctx context.Context, s *Session) error
	FindSession(ctx context.Context, id string) (*Session, error)
	FindSessionByShareToken(ctx context.Context, token string) (*Session, error)
	// ListSessions returns the user's sessions newest first, without
	// response texts, and the cursor of the next page ("" on the last).
	ListSessions(ctx context.Context, userID, cursor string, limit int) ([]*Session, string, error)
	// SetShareToken sets (or, with "", clears) the share token.
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
