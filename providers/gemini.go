package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"

	"google.golang.org/genai"

	"github.com/playground-dev/playground"
)

// Gemini streams from the Gemini API (generativelanguage.googleapis.com)
// with google.golang.org/genai.
type Gemini struct {
	client *genai.Client
}

// NewGemini returns the provider for the Gemini API at baseURL
// (GEMINI_BASE_URL, without a version) with the given key.
//
// genai reads GOOGLE_GENAI_USE_VERTEXAI, GOOGLE_API_KEY, GEMINI_API_KEY,
// GOOGLE_CLOUD_* and GOOGLE_GEMINI_BASE_URL (its environment reader cannot
// be replaced), but each is only a fallback for a field left empty: with
// Backend, APIKey, HTTPOptions.BaseURL and HTTPClient set here none of them
// takes effect. What remains: genai logs a warning when both GOOGLE_API_KEY
// and GEMINI_API_KEY are set in the environment.
//
// Retries: genai retries only when HTTPOptions.RetryOptions is set; it is
// set to one attempt so that stays true whatever the defaults become.
func NewGemini(apiKey, baseURL string, hc *http.Client) (*Gemini, error) {
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		Backend:    genai.BackendGeminiAPI,
		APIKey:     apiKey,
		HTTPClient: sdkHTTPClient(hc),
		HTTPOptions: genai.HTTPOptions{
			BaseURL:      baseURL,
			RetryOptions: &genai.HTTPRetryOptions{Attempts: genai.Ptr[int32](1)},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("gemini: new client: %w", err)
	}
	return &Gemini{client: c}, nil
}

// Name returns "gemini".
func (p *Gemini) Name() string { return playground.ProviderGemini }

// Stream sends one streamGenerateContent?alt=sse request.
//
// genai's GenerateContentStream returns an iterator that sends the request
// only when first pulled, so Stream pulls the first response itself (which
// means the headers and the first event have arrived) and keeps it for the
// first Recv. Automatic continuation, which would send further requests to
// resume a broken stream, is turned off: one Stream, one request.
func (p *Gemini) Stream(ctx context.Context, req playground.ProviderRequest) (playground.Stream, error) {
	cfg := &genai.GenerateContentConfig{AutomaticContinuation: genai.Ptr(false)}
	if req.System != "" {
		cfg.SystemInstruction = genai.NewContentFromText(req.System, genai.RoleUser)
	}
	if t := req.Params.Temperature; t != nil {
		cfg.Temperature = genai.Ptr(float32(*t))
	}
	if tp := req.Params.TopP; tp != nil {
		cfg.TopP = genai.Ptr(float32(*tp))
	}
	if m := req.Params.MaxTokens; m != nil {
		cfg.MaxOutputTokens = int32(*m)
	}
	if e := req.Params.ReasoningEffort; e != nil {
		// Thought summaries come only when asked for; off is a budget of
		// 0, which models that cannot stop thinking refuse.
		if budget, ok := thinkingBudget(req.Params); ok {
			cfg.ThinkingConfig = &genai.ThinkingConfig{IncludeThoughts: true, ThinkingBudget: genai.Ptr(int32(budget))}
		} else {
			cfg.ThinkingConfig = &genai.ThinkingConfig{ThinkingBudget: genai.Ptr[int32](0)}
		}
	}
	// The thread as contents with roles user and model, ending with the
	// new prompt.
	contents := make([]*genai.Content, 0, 2*len(req.History)+1)
	for _, x := range req.History {
		contents = append(contents, genai.NewContentFromText(x.Prompt, genai.RoleUser),
			genai.NewContentFromText(x.Answer, genai.RoleModel))
	}
	contents = append(contents, genai.NewContentFromText(req.Prompt, genai.RoleUser))

	sctx, cancel := context.WithCancel(ctx)
	cctx, capture := withCapture(sctx)
	pull, stop := iter.Pull2(p.client.Models.GenerateContentStream(cctx, req.Model, contents, cfg))
	next := func() (*genai.GenerateContentResponse, bool, error) {
		resp, err, ok := pull()
		return resp, ok && err == nil, err
	}
	fail := geminiFail(ctx, capture)
	first, ok, err := next()
	if !ok {
		cancel()
		stop()
		if err != nil {
			return nil, fail(err, false)
		}
		// No event at all: an empty 200 stream.
		return nil, truncatedStream(playground.ProviderGemini)
	}
	// The first event, pulled here to report a failed start as Stream's
	// error, is the first Recv's.
	pending := true
	return &sdkStream[*genai.GenerateContentResponse]{provider: playground.ProviderGemini, cancel: cancel,
		next: func() (*genai.GenerateContentResponse, bool, error) {
			if pending {
				pending = false
				return first, true, nil
			}
			return next()
		},
		stop: stop, read: geminiRead, fail: fail}, nil
}

// geminiRead reads one GenerateContentResponse; a finish reason is the end
// of the answer.
func geminiRead(resp *genai.GenerateContentResponse) (playground.Delta, bool, error) {
	d := geminiDelta(resp)
	return d, d.FinishReason != "", nil
}

// geminiFail turns a genai error into ours. An error answer (status 400
// and above) is in the capture, as sent; an APIError without one is an
// `error` payload inside the 200 stream, before or after the first event.
func geminiFail(ctx context.Context, capture *httpCapture) func(error, bool) error {
	return func(err error, started bool) error {
		var ae genai.APIError
		if _, _, _, answered := capture.get(); !answered && errors.As(err, &ae) && ctx.Err() == nil {
			data, _ := json.Marshal(map[string]any{"error": ae})
			pe := ClassifyStreamError(playground.ProviderGemini, data)
			pe.Err = err
			return pe
		}
		return streamErr(ctx, playground.ProviderGemini, err, capture, started)
	}
}

// geminiDelta reads one GenerateContentResponse: the text parts of the first
// candidate (thought summaries, parts with thought true, as reasoning), its
// finish reason, and the usage.
func geminiDelta(resp *genai.GenerateContentResponse) playground.Delta {
	var d playground.Delta
	if resp == nil {
		return d
	}
	if len(resp.Candidates) > 0 && resp.Candidates[0] != nil {
		c := resp.Candidates[0]
		if c.Content != nil {
			for _, part := range c.Content.Parts {
				switch {
				case part == nil:
				case part.Thought:
					d.Reasoning += part.Text
				default:
					d.Text += part.Text
				}
			}
		}
		d.FinishReason = geminiFinish(c.FinishReason)
	}
	if pf := resp.PromptFeedback; pf != nil && pf.BlockReason != "" {
		// The prompt itself was blocked: no candidate comes.
		d.FinishReason = playground.FinishContentFilter
	}
	if u := resp.UsageMetadata; u != nil {
		d.Usage = geminiUsage(u, d.FinishReason != "")
	}
	return d
}

// geminiUsage copies usageMetadata. genai decodes the counts into plain
// int32s and Gemini leaves zero counts out of its JSON, so an absent count
// and a 0 look the same here. The rules: the prompt count is always
// reported; the candidates count once it is positive or on the final
// event (a finished answer of 0 tokens is 0, not unknown), thoughts
// included, as OpenAI's completion_tokens includes reasoning tokens and both
// are billed as output; thoughts and
// cached counts only when positive, since a model without thinking or
// without a cache hit omits them, and null is the honest value then.
func geminiUsage(u *genai.GenerateContentResponseUsageMetadata, final bool) *playground.Usage {
	out := &playground.Usage{PromptTokens: ptr(int64(u.PromptTokenCount))}
	if n := u.CandidatesTokenCount + u.ThoughtsTokenCount; n > 0 || final {
		out.CompletionTokens = ptr(int64(n))
	}
	if u.ThoughtsTokenCount > 0 {
		out.ReasoningTokens = ptr(int64(u.ThoughtsTokenCount))
	}
	if u.CachedContentTokenCount > 0 {
		out.CachedTokens = ptr(int64(u.CachedContentTokenCount))
	}
	return out
}

// geminiFinish maps finishReason; the blocking reasons are content filters,
// and anything else that ends an answer counts as a stop.
func geminiFinish(r genai.FinishReason) string {
	switch r {
	case "", genai.FinishReasonUnspecified:
		return ""
	case genai.FinishReasonMaxTokens:
		return playground.FinishLength
	case genai.FinishReasonSafety, genai.FinishReasonProhibitedContent, genai.FinishReasonBlocklist,
		genai.FinishReasonRecitation, genai.FinishReasonSPII, genai.FinishReasonImageSafety,
		genai.FinishReasonImageProhibitedContent, genai.FinishReasonImageRecitation:
		return playground.FinishContentFilter
	}
	return playground.FinishStop
}
