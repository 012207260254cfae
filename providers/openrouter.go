package providers

import (
	"net/http"

	"github.com/openai/openai-go/v3/option"

	"github.com/playground-dev/playground"
)

// NewOpenRouter returns the provider for OpenRouter's OpenAI-compatible API
// at baseURL (OPENROUTER_BASE_URL, with its /v1).
//
// It is OpenAI's code with four differences, each covered by a fixture:
// reasoningEffort is sent as OpenRouter's `reasoning` object;
// every request asks for `"usage": {"include": true}`, so the last chunk
// carries usage.cost in US dollars (reported as CostUSD); the
// `: OPENROUTER PROCESSING` keep-alive lines are SSE comments, which the
// openai-go decoder skips; and a chunk with an `error` object after the
// stream began ends it with a classified, retryable provider_error, after
// the text delivered before it.
func NewOpenRouter(apiKey, baseURL string, hc *http.Client) *OpenAICompat {
	p := newOpenAICompat(playground.ProviderOpenRouter, apiKey, baseURL, hc,
		option.WithJSONSet("usage", map[string]any{"include": true}))
	p.cost = true
	p.reasoningObject = true
	return p
}
