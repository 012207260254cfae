package playground

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Provider names.
const (
	ProviderOpenAI     = "openai"
	ProviderOpenRouter = "openrouter"
	ProviderAnthropic  = "anthropic"
	ProviderGemini     = "gemini"
	ProviderLocal      = "local"
	ProviderDemo       = "demo"
)

// ProviderNames lists every provider the registry knows, in display order.
var ProviderNames = []string{ProviderOpenAI, ProviderOpenRouter, ProviderAnthropic, ProviderGemini, ProviderLocal, ProviderDemo}

// Reasons a model is unavailable (Model.unavailableReason).
const (
	UnavailableNoKey       = "no_key"
	UnavailableCoolingDown = "cooling_down"
	UnavailableNotBuilt    = "not_supported"
)

// Model is one entry of GET /models.
type Model struct {
	ID                string   `json:"id"`
	Provider          string   `json:"provider"`
	Name              string   `json:"name"`
	Available         bool     `json:"available"`
	UnavailableReason *string  `json:"unavailableReason"`
	Pricing           *Pricing `json:"pricing"`
}

// Pricing is in US dollars per million tokens.
type Pricing struct {
	InputPerMillionUSD  float64 `json:"inputPerMillionUsd"`
	OutputPerMillionUSD float64 `json:"outputPerMillionUsd"`
}

// Cost computes the price of a run, or nil when a count is unknown.
func (p *Pricing) Cost(promptTokens, completionTokens *int64) *float64 {
	if p == nil || promptTokens == nil || completionTokens == nil {
		return nil
	}
	c := (float64(*promptTokens)*p.InputPerMillionUSD + float64(*completionTokens)*p.OutputPerMillionUSD) / 1e6
	return &c
}

// SplitModelID splits "provider/upstream-name" at the first slash.
func SplitModelID(id string) (provider, name string, ok bool) {
	provider, name, ok = strings.Cut(id, "/")
	return provider, name, ok && provider != "" && name != ""
}

// Catalog is the set of models that can be compared and the providers that
// serve them (implemented by providers.Registry).
type Catalog interface {
	// Models lists every offered model with its availability as of now.
	Models() []Model
	// Lookup returns a listed model and the provider that serves it; an id
	// that is not listed is a *Error EUnknownModel.
	Lookup(id string) (Model, Provider, error)
}

// ProviderRequest is one upstream request: Model is the upstream name (the
// part of the model id after the first slash). History holds the earlier
// turns of the thread the request carries on, oldest first; each provider
// sends them in its own multi-turn format, between the system prompt and
// Prompt.
type ProviderRequest struct {
	Model   string
	Prompt  string
	System  string
	History []Exchange
	Params  Params
}

// Exchange is one earlier turn of a thread: the prompt the user sent and
// the answer's text (its reasoning is never sent back).
type Exchange struct {
	Prompt string
	Answer string
}

// Provider streams completions from one upstream. Stream makes exactly one
// upstream request (no SDK retries: the model actor's policy decides) and
// returns once the upstream has answered with a stream, or with a
// *ProviderError.
type Provider interface {
	Name() string
	Stream(ctx context.Context, req ProviderRequest) (Stream, error)
}

// Stream yields the deltas of one upstream response. Recv returns io.EOF
// after the last delta; any other error is a *ProviderError (or the
// context's error). Close is safe to call more than once.
type Stream interface {
	Recv() (Delta, error)
	Close() error
}

// Delta is one step of an upstream stream. Any delta, even an empty one,
// shows that the upstream is alive; only non-empty Text counts as a chunk.
type Delta struct {
	Text string
	// Reasoning is visible thinking the upstream streamed in this step,
	// apart from the answer: it becomes reasoning events, never a chunk,
	// and never counts towards ttftMs.
	Reasoning string
	// Usage is set when the upstream reports token counts or cost; later
	// reports replace earlier ones field by field.
	Usage *Usage
	// FinishReason is one of the Finish* constants when the upstream says
	// why it stopped.
	FinishReason string
}

// Usage is what a provider reports about a response; nil fields were not reported.
type Usage struct {
	PromptTokens     *int64
	CompletionTokens *int64
	ReasoningTokens  *int64
	CachedTokens     *int64
	CostUSD          *float64
}

// Merge copies every reported field of o into u.
func (u *Usage) Merge(o *Usage) {
	if o == nil {
		return
	}
	overlay(&u.PromptTokens, o.PromptTokens)
	overlay(&u.CompletionTokens, o.CompletionTokens)
	overlay(&u.ReasoningTokens, o.ReasoningTokens)
	overlay(&u.CachedTokens, o.CachedTokens)
	overlay(&u.CostUSD, o.CostUSD)
}

// ProviderError is an upstream failure, classified. Code is a Response
// error code (RErr*); Retryable says whether another attempt may succeed;
// RetryAfter is the wait the upstream asked for (0 when it did not say).
// Raw holds the upstream's own words for the log, never for a client.
type ProviderError struct {
	Code       string
	Message    string
	Retryable  bool
	RetryAfter time.Duration
	Status     int
	Raw        string
	Err        error
}

func (e *ProviderError) Error() string {
	s := fmt.Sprintf("provider error %s (status %d): %s", e.Code, e.Status, e.Message)
	if e.Raw != "" {
		s += ": " + e.Raw
	}
	return s
}

func (e *ProviderError) Unwrap() error { return e.Err }

// AsProviderError returns err as a *ProviderError, if it is one.
func AsProviderError(err error) (*ProviderError, bool) {
	var pe *ProviderError
	ok := errors.As(err, &pe)
	return pe, ok
}
