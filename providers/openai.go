package providers

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/shared"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/providers/internal/chatchunk"
)

// OpenAICompat streams Chat Completions from OpenAI or any server that
// speaks its wire format (OpenRouter, Ollama, vLLM, llama.cpp): one type,
// configured per upstream by NewOpenAI, NewOpenRouter and NewLocal.
type OpenAICompat struct {
	name string
	chat openai.ChatCompletionService
	// maxCompletionTokens sends Params.MaxTokens as max_completion_tokens
	// (OpenAI's current name; its reasoning models refuse max_tokens)
	// rather than max_tokens (what OpenRouter and local servers read).
	maxCompletionTokens bool
	// cost reads OpenRouter's usage.cost (US dollars).
	cost bool
	// reasoningObject sends reasoningEffort as OpenRouter's
	// reasoning: {effort} object rather than reasoning_effort.
	reasoningObject bool
}

// NewOpenAI returns the provider for OpenAI's Chat Completions API at
// baseURL (OPENAI_BASE_URL, with its /v1) with the given key.
func NewOpenAI(apiKey, baseURL string, hc *http.Client) *OpenAICompat {
	p := newOpenAICompat(playground.ProviderOpenAI, apiKey, baseURL, hc)
	p.maxCompletionTokens = true
	return p
}

// newOpenAICompat builds the chat service from explicit options only.
// openai.NewClient would start from DefaultClientOptions, which reads
// OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_ORG_ID, OPENAI_PROJECT_ID and
// OPENAI_CUSTOM_HEADERS from the process environment (and the SDK's switch
// to skip that is internal). NewChatCompletionService takes the options it
// is given and nothing else, so no OPENAI_* variable can reach a request.
func newOpenAICompat(name, apiKey, baseURL string, hc *http.Client, extra ...option.RequestOption) *OpenAICompat {
	opts := []option.RequestOption{
		option.WithHTTPClient(sdkHTTPClient(hc)),
		option.WithBaseURL(baseURL),
		// One request per Stream: the model actor owns retries.
		option.WithMaxRetries(0),
	}
	if apiKey != "" {
		// Without a key no Authorization header is sent at all (local servers).
		opts = append(opts, option.WithAPIKey(apiKey))
	}
	opts = append(opts, extra...)
	return &OpenAICompat{name: name, chat: openai.NewChatCompletionService(opts...)}
}

// Name returns the provider's name (openai, openrouter or local).
func (p *OpenAICompat) Name() string { return p.name }

// Stream sends one streaming Chat Completions request and returns once the
// upstream has answered with the headers of a stream.
func (p *OpenAICompat) Stream(ctx context.Context, req playground.ProviderRequest) (playground.Stream, error) {
	var raw *http.Response
	params := openai.ChatCompletionNewParams{
		Model:         req.Model,
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	if req.System != "" {
		params.Messages = append(params.Messages, openai.SystemMessage(req.System))
	}
	for _, x := range req.History {
		params.Messages = append(params.Messages, openai.UserMessage(x.Prompt), openai.AssistantMessage(x.Answer))
	}
	params.Messages = append(params.Messages, openai.UserMessage(req.Prompt))
	if t := req.Params.Temperature; t != nil {
		params.Temperature = openai.Float(*t)
	}
	if tp := req.Params.TopP; tp != nil {
		params.TopP = openai.Float(*tp)
	}
	if m := req.Params.MaxTokens; m != nil {
		if p.maxCompletionTokens {
			params.MaxCompletionTokens = openai.Int(int64(*m))
		} else {
			params.MaxTokens = openai.Int(int64(*m))
		}
	}

	opts := []option.RequestOption{option.WithResponseInto(&raw)}
	if e := req.Params.ReasoningEffort; e != nil {
		switch {
		case p.reasoningObject && *e == playground.EffortOff:
			opts = append(opts, option.WithJSONSet("reasoning", map[string]any{"enabled": false}))
		case p.reasoningObject:
			opts = append(opts, option.WithJSONSet("reasoning", map[string]any{"effort": *e}))
		case *e != playground.EffortOff:
			// off is left out: "none" and "minimal" are each known to
			// some models only, and others refuse the field.
			params.ReasoningEffort = shared.ReasoningEffort(*e)
		}
	}

	sctx, cancel := context.WithCancel(ctx)
	cctx, capture := withCapture(sctx)
	sdk := p.chat.NewStreaming(cctx, params, opts...)
	if err := sdk.Err(); err != nil {
		_ = sdk.Close()
		cancel()
		return nil, streamErr(ctx, p.name, err, capture, false)
	}
	// The same response, its events decoded into chatChunk rather than the
	// SDK's ChatCompletionChunk (sdk is never read).
	next, stop := pullEvents[chatChunk](chatchunk.NewStream(ssestream.NewDecoder(raw)))
	return &sdkStream[chatChunk]{provider: p.name, cancel: cancel, next: next, stop: stop,
		read: openAIRead(ctx, p.name, p.cost), fail: openAIFail(ctx, p.name)}, nil
}

// chatChunk is what the playground reads of a Chat Completions chunk.
// The SDK's ChatCompletionChunk records every field's presence through
// reflection as it decodes, and encoding/json's reflection over even these
// few fields was a fifth of the server's CPU at 64 concurrent streams
// (playbench gateway -profile): chatchunk decodes them directly, as
// encoding/json would. The usage object is handed, once a stream, to the
// SDK's own type, whose presence flags openAIUsage reads.
type chatChunk = chatchunk.Chunk

// openAIRead reads one chunk: the text of the first choice, its finish
// reason (the end of the answer), and the usage, once a stream.
func openAIRead(ctx context.Context, provider string, cost bool) func(chatChunk) (playground.Delta, bool, error) {
	return func(chunk chatChunk) (playground.Delta, bool, error) {
		var d playground.Delta
		for _, c := range chunk.Choices {
			if c.Index != 0 {
				continue // only one completion is asked for
			}
			d.Text += c.Delta.Content + c.Delta.Refusal
			// A server that sends both names sends the same text twice.
			if c.Delta.ReasoningContent != "" {
				d.Reasoning += c.Delta.ReasoningContent
			} else {
				d.Reasoning += c.Delta.Reasoning
			}
			if c.FinishReason != "" {
				d.FinishReason = openAIFinish(c.FinishReason)
			}
		}
		if len(chunk.Usage) > 0 && string(chunk.Usage) != "null" {
			var u openai.CompletionUsage
			if err := json.Unmarshal(chunk.Usage, &u); err != nil {
				return playground.Delta{}, false, streamErr(ctx, provider, err, nil, true)
			}
			d.Usage = openAIUsage(u, cost)
		}
		return d, d.FinishReason != "", nil
	}
}

// openAIFail classifies a failed read: a chunk with an `error` object
// inside a 200 stream (OpenRouter's mid-stream failure) by that object,
// anything else as a transport failure.
func openAIFail(ctx context.Context, provider string) func(error, bool) error {
	return func(err error, started bool) error {
		var se *ssestream.StreamError
		if errors.As(err, &se) && ctx.Err() == nil {
			pe := ClassifyStreamError(provider, se.Event.Data)
			pe.Err = err
			return pe
		}
		return streamErr(ctx, provider, err, nil, started)
	}
}

// openAIFinish maps Chat Completions finish reasons; tool and function calls
// (never asked for) and anything unknown count as a normal stop.
func openAIFinish(reason string) string {
	switch reason {
	case "length":
		return playground.FinishLength
	case "content_filter":
		return playground.FinishContentFilter
	}
	return playground.FinishStop
}

// openAIUsage copies the counts the upstream reported; an omitted or null
// field stays nil, a reported 0 is 0.
func openAIUsage(u openai.CompletionUsage, withCost bool) *playground.Usage {
	out := &playground.Usage{}
	if u.JSON.PromptTokens.Valid() {
		out.PromptTokens = ptr(u.PromptTokens)
	}
	if u.JSON.CompletionTokens.Valid() {
		out.CompletionTokens = ptr(u.CompletionTokens)
	}
	if u.JSON.CompletionTokensDetails.Valid() && u.CompletionTokensDetails.JSON.ReasoningTokens.Valid() {
		out.ReasoningTokens = ptr(u.CompletionTokensDetails.ReasoningTokens)
	}
	if u.JSON.PromptTokensDetails.Valid() && u.PromptTokensDetails.JSON.CachedTokens.Valid() {
		out.CachedTokens = ptr(u.PromptTokensDetails.CachedTokens)
	}
	if withCost {
		// An extra field is never Valid (the SDK has no type to check it
		// against), so its raw JSON is parsed here; null fails the parse.
		if f, ok := u.JSON.ExtraFields["cost"]; ok {
			if c, err := strconv.ParseFloat(f.Raw(), 64); err == nil && c >= 0 && !math.IsInf(c, 0) {
				out.CostUSD = &c
			}
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
