package providers

import (
	"context"
	"errors"
	"net/http"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/playground-dev/playground"
)

// DefaultAnthropicMaxTokens is the max_tokens sent to Anthropic when the
// session sets no maxTokens: the Messages API requires the field.
const DefaultAnthropicMaxTokens = 1024

// Anthropic streams from the Messages API.
type Anthropic struct {
	client anthropic.Client
}

// NewAnthropic returns the provider for Anthropic's Messages API at baseURL
// (ANTHROPIC_BASE_URL, without a version) with the given key.
//
// option.WithoutEnvironmentDefaults keeps the SDK from reading
// ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN, ANTHROPIC_BASE_URL,
// ANTHROPIC_PROFILE, ANTHROPIC_CUSTOM_HEADERS, the federation variables and
// the profile files under ~/.config: only the options below reach requests.
func NewAnthropic(apiKey, baseURL string, hc *http.Client) *Anthropic {
	return &Anthropic{client: anthropic.NewClient(
		option.WithoutEnvironmentDefaults(),
		option.WithHTTPClient(sdkHTTPClient(hc)),
		option.WithBaseURL(baseURL),
		option.WithAPIKey(apiKey),
		// One request per Stream: the model actor owns retries.
		option.WithMaxRetries(0),
	)}
}

// Name returns "anthropic".
func (p *Anthropic) Name() string { return playground.ProviderAnthropic }

// Stream sends one streaming Messages request and returns once the upstream
// has answered with the headers of a stream.
//
// Temperature and top_p are sent as raw JSON fields (this SDK version has
// no typed fields for them). Recent Claude models refuse both together, so
// a top_p of 1 (which changes nothing) is left out.
func (p *Anthropic) Stream(ctx context.Context, req playground.ProviderRequest) (playground.Stream, error) {
	// The system prompt travels apart, in system; the thread alternates
	// user and assistant messages, ending with the new prompt.
	msgs := make([]anthropic.MessageParam, 0, 2*len(req.History)+1)
	for _, x := range req.History {
		msgs = append(msgs, anthropic.NewUserMessage(anthropic.NewTextBlock(x.Prompt)),
			anthropic.NewAssistantMessage(anthropic.NewTextBlock(x.Answer)))
	}
	msgs = append(msgs, anthropic.NewUserMessage(anthropic.NewTextBlock(req.Prompt)))
	params := anthropic.MessageNewParams{
		Model:     req.Model,
		MaxTokens: DefaultAnthropicMaxTokens,
		Messages:  msgs,
	}
	if m := req.Params.MaxTokens; m != nil {
		params.MaxTokens = int64(*m)
	}
	if req.System != "" {
		params.System = []anthropic.TextBlockParam{{Text: req.System}}
	}
	var opts []option.RequestOption
	if budget, ok := thinkingBudget(req.Params); ok {
		// Thinking counts towards max_tokens, which must exceed the
		// budget: the answer keeps the room maxTokens asked for. Anthropic
		// refuses temperature and top_p with thinking, so they are not sent.
		params.Thinking = anthropic.ThinkingConfigParamOfEnabled(budget)
		params.MaxTokens += budget
	} else {
		if t := req.Params.Temperature; t != nil {
			opts = append(opts, option.WithJSONSet("temperature", *t))
		}
		if tp := req.Params.TopP; tp != nil && *tp != 1 {
			opts = append(opts, option.WithJSONSet("top_p", *tp))
		}
	}

	sctx, cancel := context.WithCancel(ctx)
	cctx, capture := withCapture(sctx)
	s := p.client.Messages.NewStreaming(cctx, params, opts...)
	if err := s.Err(); err != nil {
		_ = s.Close()
		cancel()
		return nil, streamErr(ctx, playground.ProviderAnthropic, err, capture, false)
	}
	next, stop := pullEvents[anthropic.MessageStreamEventUnion](s)
	return &sdkStream[anthropic.MessageStreamEventUnion]{provider: playground.ProviderAnthropic, cancel: cancel,
		next: next, stop: stop, read: anthropicRead, fail: anthropicFail(ctx)}, nil
}

// thinkingBudget is the thinking budget in tokens for reasoningEffort low,
// medium and high (Anthropic's budget_tokens, Gemini's thinkingBudget);
// ok is false when the effort is unset or off. 1024 is Anthropic's least.
func thinkingBudget(p playground.Params) (budget int64, ok bool) {
	if p.ReasoningEffort == nil {
		return 0, false
	}
	switch *p.ReasoningEffort {
	case playground.EffortLow:
		return 1024, true
	case playground.EffortMedium:
		return 4096, true
	case playground.EffortHigh:
		return 16384, true
	}
	return 0, false
}

// anthropicRead reads one event of the Messages stream; message_stop is
// the end of the answer.
func anthropicRead(ev anthropic.MessageStreamEventUnion) (playground.Delta, bool, error) {
	var d playground.Delta
	switch ev.Type {
	case "message_start":
		u := ev.Message.Usage
		if u.JSON.InputTokens.Valid() {
			d.Usage = &playground.Usage{PromptTokens: ptr(anthropicPromptTokens(u.InputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens))}
			if u.JSON.CacheReadInputTokens.Valid() {
				d.Usage.CachedTokens = ptr(u.CacheReadInputTokens)
			}
		}
	case "content_block_delta":
		// thinking blocks stream thinking_delta; their signature_delta
		// (for sending the block back, which the playground never does)
		// is left out.
		switch ev.Delta.Type {
		case "text_delta":
			d.Text = ev.Delta.Text
		case "thinking_delta":
			d.Reasoning = ev.Delta.Thinking
		}
	case "message_delta":
		u := ev.Usage
		d.Usage = &playground.Usage{}
		if u.JSON.OutputTokens.Valid() {
			d.Usage.CompletionTokens = ptr(u.OutputTokens)
		}
		if u.JSON.InputTokens.Valid() && u.InputTokens > 0 {
			// Newer API versions repeat the (final) input counts here.
			d.Usage.PromptTokens = ptr(anthropicPromptTokens(u.InputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens))
		}
		if u.JSON.CacheReadInputTokens.Valid() && u.InputTokens > 0 {
			d.Usage.CachedTokens = ptr(u.CacheReadInputTokens)
		}
		if u.JSON.OutputTokensDetails.Valid() && u.OutputTokensDetails.JSON.ThinkingTokens.Valid() {
			d.Usage.ReasoningTokens = ptr(u.OutputTokensDetails.ThinkingTokens)
		}
		if r := ev.Delta.StopReason; r != "" {
			d.FinishReason = anthropicFinish(r)
		}
	case "message_stop":
		return d, true, nil
	}
	return d, false, nil
}

// anthropicFail classifies a failed read: an `error` event inside the 200
// stream by its error.type, not by the (successful) HTTP status; anything
// else as a transport failure.
func anthropicFail(ctx context.Context) func(error, bool) error {
	return func(err error, started bool) error {
		var ae *anthropic.Error
		if errors.As(err, &ae) && ae.StatusCode < 400 && ctx.Err() == nil {
			pe := ClassifyStreamError(playground.ProviderAnthropic, []byte(ae.RawJSON()))
			pe.Err = err
			return pe
		}
		return streamErr(ctx, playground.ProviderAnthropic, err, nil, started)
	}
}

// anthropicPromptTokens is the whole prompt: Anthropic's input_tokens leaves
// out the tokens written to and read from the prompt cache, which OpenAI's
// prompt_tokens includes. Summing keeps cachedTokens a part of promptTokens
// for every provider.
func anthropicPromptTokens(input, cacheWrite, cacheRead int64) int64 {
	return input + cacheWrite + cacheRead
}

// anthropicFinish maps stop_reason: refusal is a content filter, max_tokens
// a cut, everything else (end_turn, stop_sequence, tool_use, pause_turn) a
// normal stop.
func anthropicFinish(r anthropic.StopReason) string {
	switch r {
	case anthropic.StopReasonMaxTokens, anthropic.StopReasonModelContextWindowExceeded:
		return playground.FinishLength
	case anthropic.StopReasonRefusal:
		return playground.FinishContentFilter
	}
	return playground.FinishStop
}
