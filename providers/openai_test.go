package providers_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/providers"
	"github.com/playground-dev/playground/providers/providertest"
)

const openAIText = "CRDTs merge without a café ☕ or 調整."

// setOpenAIEnv sets every variable openai-go's DefaultClientOptions reads
// to a wrong value: none may reach a request.
func setOpenAIEnv(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-from-environment")
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
	t.Setenv("OPENAI_ORG_ID", "org-from-environment")
	t.Setenv("OPENAI_PROJECT_ID", "proj-from-environment")
	t.Setenv("OPENAI_CUSTOM_HEADERS", "X-Leaked: yes")
}

func TestOpenAIStreamUsage(t *testing.T) {
	setOpenAIEnv(t)
	srv := providertest.NewServer(t, providertest.ReplaySSE(t, "openai-stream-usage.sse"))
	p := providers.NewOpenAI("sk-configured", srv.URL+"/v1", srv.Client())

	r := stream(t, p, "gpt-4o-mini", playground.Params{MaxTokens: intp(64), Temperature: floatp(0.5)})
	wantAnswer(t, r, openAIText)
	wantInt(t, "prompt", r.usage.PromptTokens, 14)
	wantInt(t, "completion", r.usage.CompletionTokens, 11)
	wantInt(t, "reasoning", r.usage.ReasoningTokens, 0) // reported 0 is 0
	wantInt(t, "cached", r.usage.CachedTokens, 0)
	wantNil(t, "cost", r.usage.CostUSD)

	req := srv.LastRequest(t)
	if len(srv.Requests()) != 1 || req.Path != "/v1/chat/completions" {
		t.Fatalf("requests = %d, last path %s", len(srv.Requests()), req.Path)
	}
	if got := req.Header.Get("Authorization"); got != "Bearer sk-configured" {
		t.Fatalf("Authorization = %q: the environment's key leaked in", got)
	}
	for _, h := range []string{"OpenAI-Organization", "OpenAI-Project", "X-Leaked"} {
		if v := req.Header.Get(h); v != "" {
			t.Fatalf("header %s = %q came from the environment", h, v)
		}
	}
	b := body(t, req)
	if b["stream"] != true || b["model"] != "gpt-4o-mini" {
		t.Fatalf("body = %v", b)
	}
	if so, _ := b["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Fatalf("stream_options = %v, want include_usage true", b["stream_options"])
	}
	if b["max_completion_tokens"] != float64(64) || b["temperature"] != 0.5 {
		t.Fatalf("params not sent: %v", b)
	}
	msgs, _ := b["messages"].([]any)
	if len(msgs) != 2 {
		t.Fatalf("messages = %v, want system and user", msgs)
	}
}

// A JSON string cannot carry half a character (a decoder turns a lone byte
// into U+FFFD), so no provider splits one across SSE events; the network
// can split it across reads at any byte. This replays the fixture in
// pieces of every small size, cutting ☕ and 調整 mid-character.
func TestOpenAIStreamSplitAcrossReads(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 7, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			srv := providertest.NewServer(t, providertest.ReplaySSESplit(t, "openai-stream-usage.sse", n))
			p := providers.NewOpenAI("sk", srv.URL+"/v1", srv.Client())
			r := stream(t, p, "gpt-4o-mini", playground.Params{})
			if r.err != nil || r.text != openAIText {
				t.Fatalf("text = %q, err = %v", r.text, r.err)
			}
			wantInt(t, "completion", r.usage.CompletionTokens, 11)
		})
	}
}

func TestOpenAIErrors(t *testing.T) {
	raw := func(status int, header map[string]string, body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		})
	}
	cases := []struct {
		name       string
		handler    func(t *testing.T) http.Handler
		code       string
		retryable  bool
		retryAfter time.Duration
	}{
		{"429 fixture", func(t *testing.T) http.Handler { return providertest.ReplayHTTP(t, "openai-429.http") },
			playground.RErrRateLimited, true, 2 * time.Second},
		{"insufficient quota fixture", func(t *testing.T) http.Handler { return providertest.ReplayHTTP(t, "openai-insufficient-quota.http") },
			playground.RErrInsufficientCredits, false, 0},
		{"429 retry-after-ms", func(*testing.T) http.Handler {
			return raw(429, map[string]string{"retry-after-ms": "1500"}, `{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`)
		}, playground.RErrRateLimited, true, 1500 * time.Millisecond},
		{"401", func(*testing.T) http.Handler {
			return raw(401, nil, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`)
		}, playground.RErrAuthFailed, false, 0},
		{"403", func(*testing.T) http.Handler { return raw(403, nil, `{"error":{"message":"Country not supported"}}`) },
			playground.RErrAuthFailed, false, 0},
		{"404", func(*testing.T) http.Handler {
			return raw(404, nil, `{"error":{"message":"The model gpt-9 does not exist","type":"invalid_request_error","code":"model_not_found"}}`)
		}, playground.RErrModelNotFound, false, 0},
		{"400", func(*testing.T) http.Handler {
			return raw(400, nil, `{"error":{"message":"Unsupported value: 'temperature'","type":"invalid_request_error","param":"temperature","code":"unsupported_value"}}`)
		}, playground.RErrProviderError, false, 0},
		{"408", func(*testing.T) http.Handler { return raw(408, nil, ``) }, playground.RErrTimeout, true, 0},
		{"500 html", func(*testing.T) http.Handler {
			return raw(500, map[string]string{"Content-Type": "text/html"}, `<html>oops</html>`)
		},
			playground.RErrProviderError, true, 0},
		{"503 retry-after", func(*testing.T) http.Handler { return raw(503, map[string]string{"Retry-After": "3"}, `{}`) },
			playground.RErrProviderError, true, 3 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("OPENAI_API_KEY", "sk-from-environment")
			srv := providertest.NewServer(t, c.handler(t))
			p := providers.NewOpenAI("sk", srv.URL+"/v1", srv.Client())
			_, err := p.Stream(context.Background(), playground.ProviderRequest{Model: "gpt-4o-mini", Prompt: "hi"})
			pe := wantProviderError(t, err, c.code, c.retryable)
			if pe.RetryAfter != c.retryAfter {
				t.Fatalf("RetryAfter = %v, want %v", pe.RetryAfter, c.retryAfter)
			}
			if pe.Raw == "" || pe.Status == 0 {
				t.Fatalf("Raw = %q, Status = %d: the upstream's answer is lost for the log", pe.Raw, pe.Status)
			}
			if n := len(srv.Requests()); n != 1 {
				t.Fatalf("%d upstream requests, want exactly 1 (SDK retries must be off)", n)
			}
		})
	}
}

func TestOpenAIConnectionRefused(t *testing.T) {
	srv := providertest.NewServer(t, nil)
	url, client := srv.URL, srv.Client()
	srv.Close()
	p := providers.NewOpenAI("sk", url+"/v1", client)
	_, err := p.Stream(context.Background(), playground.ProviderRequest{Model: "gpt-4o-mini", Prompt: "hi"})
	wantProviderError(t, err, playground.RErrProviderError, true)
}

func TestOpenAIContextPassesThrough(t *testing.T) {
	t.Run("cancelled before headers", func(t *testing.T) {
		started := make(chan struct{})
		srv := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			<-r.Context().Done()
		}))
		p := providers.NewOpenAI("sk", srv.URL+"/v1", srv.Client())
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-started; cancel() }()
		_, err := p.Stream(ctx, playground.ProviderRequest{Model: "m", Prompt: "hi"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if _, ok := playground.AsProviderError(err); ok {
			t.Fatal("a cancellation became a ProviderError")
		}
	})
	t.Run("deadline while streaming", func(t *testing.T) {
		srv := providertest.NewServer(t, providertest.Hang())
		p := providers.NewOpenAI("sk", srv.URL+"/v1", srv.Client())
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		s, err := p.Stream(ctx, playground.ProviderRequest{Model: "m", Prompt: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = s.Recv()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("close while receiving", func(t *testing.T) {
		srv := providertest.NewServer(t, providertest.Hang())
		p := providers.NewOpenAI("sk", srv.URL+"/v1", srv.Client())
		s, err := p.Stream(context.Background(), playground.ProviderRequest{Model: "m", Prompt: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { _, err := s.Recv(); done <- err }()
		s.Close()
		if err := <-done; err == nil {
			t.Fatal("Recv returned no error after Close")
		}
		s.Close() // twice is fine
	})
}

func TestOpenAITruncatedStream(t *testing.T) {
	srv := providertest.NewServer(t, providertest.SSEBytes(
		[]byte(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Half"},"finish_reason":null}]}`+"\n\n")))
	p := providers.NewOpenAI("sk", srv.URL+"/v1", srv.Client())
	r := stream(t, p, "m", playground.Params{})
	if r.text != "Half" {
		t.Fatalf("text = %q", r.text)
	}
	wantProviderError(t, r.err, playground.RErrProviderError, true)
}

func TestOpenRouterStreamCost(t *testing.T) {
	srv := providertest.NewServer(t, providertest.ReplaySSE(t, "openrouter-stream-cost.sse"))
	p := providers.NewOpenRouter("sk-or", srv.URL+"/api/v1", srv.Client())
	r := stream(t, p, "meta-llama/llama-3.1-8b-instruct", playground.Params{MaxTokens: intp(100)})
	wantAnswer(t, r, "Conflict-free replicated data types converge.")
	wantInt(t, "prompt", r.usage.PromptTokens, 21)
	wantInt(t, "completion", r.usage.CompletionTokens, 8)
	wantInt(t, "reasoning", r.usage.ReasoningTokens, 0)
	wantInt(t, "cached", r.usage.CachedTokens, 0)
	if r.usage.CostUSD == nil || *r.usage.CostUSD != 0.00000174 {
		t.Fatalf("cost = %v, want 0.00000174", r.usage.CostUSD)
	}
	req := srv.LastRequest(t)
	if req.Path != "/api/v1/chat/completions" || req.Header.Get("Authorization") != "Bearer sk-or" {
		t.Fatalf("path %s, auth %q", req.Path, req.Header.Get("Authorization"))
	}
	b := body(t, req)
	if u, _ := b["usage"].(map[string]any); u["include"] != true {
		t.Fatalf("usage = %v, want include true", b["usage"])
	}
	if so, _ := b["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Fatalf("stream_options = %v", b["stream_options"])
	}
	if b["max_tokens"] != float64(100) {
		t.Fatalf("max_tokens = %v", b["max_tokens"])
	}
}

func TestOpenRouterMidstreamError(t *testing.T) {
	srv := providertest.NewServer(t, providertest.ReplaySSE(t, "openrouter-midstream-error.sse"))
	p := providers.NewOpenRouter("sk-or", srv.URL+"/api/v1", srv.Client())
	r := stream(t, p, "meta-llama/llama-3.1-8b-instruct", playground.Params{})
	if r.text != "Partial answer" {
		t.Fatalf("text = %q, want the text before the error", r.text)
	}
	pe := wantProviderError(t, r.err, playground.RErrProviderError, true)
	if pe.Raw == "" {
		t.Fatal("Raw is empty")
	}
}

func TestOpenRouter402(t *testing.T) {
	srv := providertest.NewServer(t, providertest.ReplayHTTP(t, "openrouter-402.http"))
	p := providers.NewOpenRouter("sk-or", srv.URL+"/api/v1", srv.Client())
	r := stream(t, p, "meta-llama/llama-3.1-8b-instruct", playground.Params{})
	wantProviderError(t, r.err, playground.RErrInsufficientCredits, false)
}

func TestLocalStreamAndDiscovery(t *testing.T) {
	setOpenAIEnv(t)
	mux := http.NewServeMux()
	mux.Handle("GET /v1/models", providertest.ModelList("llama3.2:3b", "qwen2.5:7b"))
	mux.Handle("POST /v1/chat/completions", providertest.ReplaySSE(t, "openai-stream-usage.sse"))
	srv := providertest.NewServer(t, mux)
	p := providers.NewLocal(srv.URL+"/v1", srv.Client())

	ids, err := p.DiscoverModels(context.Background())
	if err != nil || len(ids) != 2 || ids[0] != "llama3.2:3b" || ids[1] != "qwen2.5:7b" {
		t.Fatalf("DiscoverModels = %v, %v", ids, err)
	}
	r := stream(t, p, "llama3.2:3b", playground.Params{MaxTokens: intp(10)})
	if r.err != nil || r.text != openAIText {
		t.Fatalf("text = %q, err = %v", r.text, r.err)
	}
	req := srv.LastRequest(t)
	if a := req.Header.Get("Authorization"); a != "" {
		t.Fatalf("Authorization = %q, want none for a local server", a)
	}
	if b := body(t, req); b["max_tokens"] != float64(10) {
		t.Fatalf("max_tokens = %v", b["max_tokens"])
	}
}
