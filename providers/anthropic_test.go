package providers_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/providers"
	"github.com/playground-dev/playground/providers/providertest"
)

func TestAnthropicStream(t *testing.T) {
	// Every variable the SDK's default chain reads, set wrong.
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-from-environment")
	t.Setenv("ANTHROPIC_AUTH_TOKEN", "token-from-environment")
	t.Setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:1")
	t.Setenv("ANTHROPIC_CUSTOM_HEADERS", "X-Leaked: yes")
	t.Setenv("ANTHROPIC_PROFILE", "nonexistent-profile")

	srv := providertest.NewServer(t, providertest.ReplaySSE(t, "anthropic-stream.sse"))
	p := providers.NewAnthropic("sk-ant-configured", srv.URL, srv.Client())
	r := stream(t, p, "claude-sonnet-4-5", playground.Params{Temperature: floatp(0.3), TopP: floatp(1)})
	wantAnswer(t, r, "CRDTs let replicas merge without coordination.")
	wantInt(t, "prompt", r.usage.PromptTokens, 25)
	wantInt(t, "cached", r.usage.CachedTokens, 0)
	wantInt(t, "completion", r.usage.CompletionTokens, 12)
	wantNil(t, "reasoning", r.usage.ReasoningTokens)
	wantNil(t, "cost", r.usage.CostUSD)

	req := srv.LastRequest(t)
	if req.Path != "/v1/messages" {
		t.Fatalf("path = %s", req.Path)
	}
	// This SDK version sends the API key as a bearer token.
	if a := req.Header.Get("Authorization"); a != "Bearer sk-ant-configured" {
		t.Fatalf("Authorization = %q: the environment's credential leaked in", a)
	}
	if k, x := req.Header.Get("X-Api-Key"), req.Header.Get("X-Leaked"); k != "" || x != "" {
		t.Fatalf("X-Api-Key = %q, X-Leaked = %q came from the environment", k, x)
	}
	b := body(t, req)
	if b["max_tokens"] != float64(providers.DefaultAnthropicMaxTokens) || b["stream"] != true || b["temperature"] != 0.3 {
		t.Fatalf("body = %v", b)
	}
	if _, ok := b["top_p"]; ok {
		t.Fatal("top_p 1 was sent; Claude refuses temperature and top_p together")
	}
	if sys, _ := b["system"].([]any); len(sys) != 1 {
		t.Fatalf("system = %v", b["system"])
	}
}

func TestAnthropic529(t *testing.T) {
	srv := providertest.NewServer(t, providertest.ReplayHTTP(t, "anthropic-529.http"))
	p := providers.NewAnthropic("sk-ant", srv.URL, srv.Client())
	r := stream(t, p, "claude-sonnet-4-5", playground.Params{MaxTokens: intp(50)})
	pe := wantProviderError(t, r.err, playground.RErrProviderError, true)
	if pe.Status != 529 {
		t.Fatalf("status = %d", pe.Status)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("%d upstream requests, want 1", n)
	}
	if b := body(t, srv.LastRequest(t)); b["max_tokens"] != float64(50) {
		t.Fatalf("max_tokens = %v", b["max_tokens"])
	}
}

func TestAnthropicMidstreamOverloaded(t *testing.T) {
	srv := providertest.NewServer(t, providertest.ReplaySSE(t, "anthropic-midstream-overloaded.sse"))
	p := providers.NewAnthropic("sk-ant", srv.URL, srv.Client())
	r := stream(t, p, "claude-sonnet-4-5", playground.Params{})
	if r.text != "Partial" {
		t.Fatalf("text = %q, want the text before the error", r.text)
	}
	wantProviderError(t, r.err, playground.RErrProviderError, true)
	wantInt(t, "prompt", r.usage.PromptTokens, 25) // reported before the failure
}

func TestAnthropicMidstreamErrorTypes(t *testing.T) {
	cases := map[string]struct {
		code      string
		retryable bool
	}{
		"api_error":             {playground.RErrProviderError, true},
		"rate_limit_error":      {playground.RErrRateLimited, true},
		"invalid_request_error": {playground.RErrProviderError, false},
		"authentication_error":  {playground.RErrAuthFailed, false},
	}
	for typ, want := range cases {
		t.Run(typ, func(t *testing.T) {
			srv := providertest.NewServer(t, providertest.SSEBytes(
				[]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"c\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"),
				[]byte(fmt.Sprintf("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":%q,\"message\":\"boom\"}}\n\n", typ))))
			p := providers.NewAnthropic("sk-ant", srv.URL, srv.Client())
			r := stream(t, p, "claude-haiku-4-5", playground.Params{})
			wantProviderError(t, r.err, want.code, want.retryable)
		})
	}
}

func TestAnthropicHTTPErrors(t *testing.T) {
	testHTTPErrors(t, "claude-haiku-4-5", func(t *testing.T, srv *providertest.Server) playground.Provider {
		return providers.NewAnthropic("sk-ant", srv.URL, srv.Client())
	}, []httpErrorCase{
		{429, "7", `{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}`, playground.RErrRateLimited, true, 7 * time.Second},
		{401, "", `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, playground.RErrAuthFailed, false, 0},
		{400, "", `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}`, playground.RErrInsufficientCredits, false, 0},
		{404, "", `{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}`, playground.RErrModelNotFound, false, 0},
		{500, "", `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, playground.RErrProviderError, true, 0},
	})
}
