package providers_test

import (
	"encoding/json"
	"testing"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/providers"
	"github.com/playground-dev/playground/providers/providertest"
)

// newProvider builds the named provider against a fake upstream.
func newProvider(t *testing.T, name string, srv *providertest.Server) playground.Provider {
	t.Helper()
	switch name {
	case playground.ProviderOpenAI:
		return providers.NewOpenAI("sk", srv.URL+"/v1", srv.Client())
	case playground.ProviderOpenRouter:
		return providers.NewOpenRouter("sk-or", srv.URL+"/api/v1", srv.Client())
	case playground.ProviderLocal:
		return providers.NewLocal(srv.URL+"/v1", srv.Client())
	case playground.ProviderAnthropic:
		return providers.NewAnthropic("sk-ant", srv.URL, srv.Client())
	case playground.ProviderGemini:
		return newGemini(t, srv)
	}
	t.Fatalf("no provider %q", name)
	return nil
}

// Each provider's thinking, replayed byte for byte from its own wire
// format, arrives as Delta.Reasoning, apart from the answer, and the
// usage (thinking tokens included) still parses.
func TestReasoningStreams(t *testing.T) {
	cases := []struct {
		provider, fixture   string
		reasoning, text     string
		completion, thought int64
	}{
		{playground.ProviderAnthropic, "anthropic-thinking.sse",
			"Simple educational question. Benign.", "Water boils at 100 °C at sea level.", 106, 67},
		{playground.ProviderGemini, "gemini-thought.sse",
			"**Recalling the boiling point**\n\nThe user wants the boiling point of water at sea level. At standard pressure that is 100 °C.",
			"Water boils at 100 °C at sea level.", 58, 48},
		// reasoning and reasoning_details carry the same text: read once.
		{playground.ProviderOpenRouter, "openrouter-reasoning.sse",
			"The user asks about boiling water. At sea level it is 100 °C.", "Water boils at 100 °C at sea level.", 40, 31},
		{playground.ProviderLocal, "local-reasoning-content.sse",
			"Boiling point at 1 atm: 100 °C.", "Water boils at 100 °C at sea level.", 26, 17},
	}
	for _, c := range cases {
		t.Run(c.provider, func(t *testing.T) {
			srv := providertest.NewServer(t, providertest.ReplaySSE(t, c.fixture))
			r := stream(t, newProvider(t, c.provider, srv), "thinker", playground.Params{})
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.reasoning != c.reasoning {
				t.Fatalf("reasoning = %q, want %q", r.reasoning, c.reasoning)
			}
			if r.text != c.text {
				t.Fatalf("text = %q, want %q", r.text, c.text)
			}
			if r.finish != playground.FinishStop {
				t.Fatalf("finish = %q", r.finish)
			}
			wantInt(t, "completion", r.usage.CompletionTokens, c.completion)
			wantInt(t, "reasoning tokens", r.usage.ReasoningTokens, c.thought)
		})
	}
}

// Ollama's OpenAI endpoint names the thinking delta `reasoning`, as
// OpenRouter does; a local server may send either name.
func TestLocalReasoningField(t *testing.T) {
	srv := providertest.NewServer(t, providertest.SSEBytes(
		[]byte(`data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"Think."}}]}`+"\n\n"),
		[]byte(`data: {"choices":[{"index":0,"delta":{"content":"Answer."},"finish_reason":"stop"}]}`+"\n\n"),
		[]byte("data: [DONE]\n\n")))
	r := stream(t, newProvider(t, playground.ProviderLocal, srv), "qwen3", playground.Params{})
	if r.err != nil || r.reasoning != "Think." || r.text != "Answer." {
		t.Fatalf("reasoning %q, text %q, err %v", r.reasoning, r.text, r.err)
	}
}

// reasoningEffort reaches each provider as its own request field, with
// the values of README's table; unset sends nothing.
func TestReasoningEffortRequest(t *testing.T) {
	type check func(t *testing.T, b map[string]any)
	field := func(path ...string) func(b map[string]any) (any, bool) {
		return func(b map[string]any) (any, bool) {
			var v any = b
			for _, k := range path {
				m, ok := v.(map[string]any)
				if !ok {
					return nil, false
				}
				if v, ok = m[k]; !ok {
					return nil, false
				}
			}
			return v, true
		}
	}
	is := func(want string, path ...string) check {
		return func(t *testing.T, b map[string]any) {
			t.Helper()
			v, ok := field(path...)(b)
			got, _ := json.Marshal(v)
			if !ok || string(got) != want {
				t.Fatalf("%v = %s (present %v), want %s", path, got, ok, want)
			}
		}
	}
	absent := func(path ...string) check {
		return func(t *testing.T, b map[string]any) {
			t.Helper()
			if v, ok := field(path...)(b); ok {
				t.Fatalf("%v = %v was sent", path, v)
			}
		}
	}
	fixtures := map[string]string{
		playground.ProviderOpenAI: "openai-stream-usage.sse", playground.ProviderOpenRouter: "openrouter-reasoning.sse",
		playground.ProviderLocal: "local-reasoning-content.sse", playground.ProviderAnthropic: "anthropic-thinking.sse",
		playground.ProviderGemini: "gemini-thought.sse",
	}
	cases := []struct {
		provider string
		effort   string // "" leaves it unset
		checks   []check
	}{
		{playground.ProviderOpenAI, "", []check{absent("reasoning_effort")}},
		{playground.ProviderOpenAI, "off", []check{absent("reasoning_effort")}},
		{playground.ProviderOpenAI, "low", []check{is(`"low"`, "reasoning_effort")}},
		{playground.ProviderOpenAI, "medium", []check{is(`"medium"`, "reasoning_effort")}},
		{playground.ProviderOpenAI, "high", []check{is(`"high"`, "reasoning_effort")}},
		{playground.ProviderLocal, "off", []check{absent("reasoning_effort")}},
		{playground.ProviderLocal, "high", []check{is(`"high"`, "reasoning_effort")}},
		{playground.ProviderOpenRouter, "", []check{absent("reasoning"), absent("reasoning_effort")}},
		{playground.ProviderOpenRouter, "off", []check{is(`{"enabled":false}`, "reasoning"), absent("reasoning_effort")}},
		{playground.ProviderOpenRouter, "low", []check{is(`{"effort":"low"}`, "reasoning"), absent("reasoning_effort")}},
		{playground.ProviderOpenRouter, "high", []check{is(`{"effort":"high"}`, "reasoning")}},
		{playground.ProviderAnthropic, "", []check{absent("thinking"), is(`1024`, "max_tokens"), is(`0.5`, "temperature")}},
		{playground.ProviderAnthropic, "off", []check{absent("thinking"), is(`1024`, "max_tokens")}},
		{playground.ProviderAnthropic, "low", []check{is(`{"budget_tokens":1024,"type":"enabled"}`, "thinking"), is(`2048`, "max_tokens"), absent("temperature")}},
		{playground.ProviderAnthropic, "medium", []check{is(`{"budget_tokens":4096,"type":"enabled"}`, "thinking"), is(`5120`, "max_tokens")}},
		{playground.ProviderAnthropic, "high", []check{is(`{"budget_tokens":16384,"type":"enabled"}`, "thinking"), is(`17408`, "max_tokens")}},
		{playground.ProviderGemini, "", []check{absent("generationConfig", "thinkingConfig")}},
		{playground.ProviderGemini, "off", []check{is(`{"thinkingBudget":0}`, "generationConfig", "thinkingConfig")}},
		{playground.ProviderGemini, "low", []check{is(`{"includeThoughts":true,"thinkingBudget":1024}`, "generationConfig", "thinkingConfig")}},
		{playground.ProviderGemini, "medium", []check{is(`{"includeThoughts":true,"thinkingBudget":4096}`, "generationConfig", "thinkingConfig")}},
		{playground.ProviderGemini, "high", []check{is(`{"includeThoughts":true,"thinkingBudget":16384}`, "generationConfig", "thinkingConfig")}},
	}
	for _, c := range cases {
		t.Run(c.provider+"/"+c.effort, func(t *testing.T) {
			srv := providertest.NewServer(t, providertest.ReplaySSE(t, fixtures[c.provider]))
			params := playground.Params{Temperature: floatp(0.5)}
			if c.effort != "" {
				params.ReasoningEffort = &c.effort
			}
			if r := stream(t, newProvider(t, c.provider, srv), "thinker", params); r.err != nil {
				t.Fatal(r.err)
			}
			b := body(t, srv.LastRequest(t))
			for _, ch := range c.checks {
				ch(t, b)
			}
		})
	}
}
