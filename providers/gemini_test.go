package providers_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/providers"
	"github.com/playground-dev/playground/providers/providertest"
)

func newGemini(t *testing.T, srv *providertest.Server) *providers.Gemini {
	t.Helper()
	p, err := providers.NewGemini("gemini-configured", srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGeminiStream(t *testing.T) {
	t.Setenv("GEMINI_API_KEY", "from-environment")
	t.Setenv("GOOGLE_API_KEY", "from-environment-too")
	t.Setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:1")
	t.Setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")

	srv := providertest.NewServer(t, providertest.ReplaySSE(t, "gemini-stream.sse"))
	p := newGemini(t, srv)
	r := stream(t, p, "gemini-2.5-flash", playground.Params{MaxTokens: intp(200), TopP: floatp(0.9)})
	wantAnswer(t, r, "CRDTs are data structures that replicas can update independently.")
	wantInt(t, "prompt", r.usage.PromptTokens, 9)
	wantInt(t, "completion", r.usage.CompletionTokens, 12)
	wantNil(t, "reasoning", r.usage.ReasoningTokens)
	wantNil(t, "cached", r.usage.CachedTokens)

	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("%d upstream requests, want 1", n)
	}
	req := srv.LastRequest(t)
	if req.Path != "/v1beta/models/gemini-2.5-flash:streamGenerateContent" || req.Query != "alt=sse" {
		t.Fatalf("request = %s?%s", req.Path, req.Query)
	}
	if k := req.Header.Get("X-Goog-Api-Key"); k != "gemini-configured" {
		t.Fatalf("x-goog-api-key = %q: the environment's key leaked in", k)
	}
	b := body(t, req)
	gc, _ := b["generationConfig"].(map[string]any)
	if gc["maxOutputTokens"] != float64(200) || gc["topP"] == nil {
		t.Fatalf("generationConfig = %v", b["generationConfig"])
	}
	if b["systemInstruction"] == nil {
		t.Fatalf("systemInstruction missing: %v", b)
	}
}

func TestGeminiStreamSplitAcrossReads(t *testing.T) {
	srv := providertest.NewServer(t, providertest.ReplaySSESplit(t, "gemini-stream.sse", 5))
	r := stream(t, newGemini(t, srv), "gemini-2.5-flash", playground.Params{})
	if r.err != nil || r.text != "CRDTs are data structures that replicas can update independently." {
		t.Fatalf("text = %q, err = %v", r.text, r.err)
	}
}

func TestGeminiErrors(t *testing.T) {
	// One request each: genai's own retries must be off.
	testHTTPErrors(t, "gemini-2.5-flash", func(t *testing.T, srv *providertest.Server) playground.Provider { return newGemini(t, srv) }, []httpErrorCase{
		{429, "", `{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"13s"}]}}`,
			playground.RErrRateLimited, true, 13 * time.Second},
		{400, "", `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`,
			playground.RErrAuthFailed, false, 0},
		{404, "", `{"error":{"code":404,"message":"models/gemini-9 is not found","status":"NOT_FOUND"}}`, playground.RErrModelNotFound, false, 0},
		{503, "", `{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`, playground.RErrProviderError, true, 0},
	})
}

func TestGeminiMidstreamError(t *testing.T) {
	srv := providertest.NewServer(t, providertest.SSEBytes(
		[]byte(`data: {"candidates": [{"content": {"parts": [{"text": "Half"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 4}}`+"\n\n"),
		[]byte(`data: {"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}}`+"\n\n")))
	r := stream(t, newGemini(t, srv), "gemini-2.5-flash", playground.Params{})
	if r.text != "Half" {
		t.Fatalf("text = %q", r.text)
	}
	wantProviderError(t, r.err, playground.RErrProviderError, true)
	wantInt(t, "prompt", r.usage.PromptTokens, 4)
	wantNil(t, "completion", r.usage.CompletionTokens)
	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("%d upstream requests, want 1 (automatic continuation must be off)", n)
	}
}

func TestGeminiFinishReasons(t *testing.T) {
	for reason, want := range map[string]string{
		"MAX_TOKENS": playground.FinishLength, "SAFETY": playground.FinishContentFilter,
		"PROHIBITED_CONTENT": playground.FinishContentFilter, "BLOCKLIST": playground.FinishContentFilter,
		"RECITATION": playground.FinishContentFilter, "STOP": playground.FinishStop,
	} {
		t.Run(reason, func(t *testing.T) {
			srv := providertest.NewServer(t, providertest.SSEBytes([]byte(
				`data: {"candidates": [{"content": {"parts": [{"text": "x"}],"role": "model"},"finishReason": "`+reason+`","index": 0}],"usageMetadata": {"promptTokenCount": 3,"candidatesTokenCount": 1,"thoughtsTokenCount": 5,"cachedContentTokenCount": 2}}`+"\n\n")))
			r := stream(t, newGemini(t, srv), "gemini-2.5-pro", playground.Params{})
			if r.err != nil || r.finish != want {
				t.Fatalf("finish = %q (err %v), want %q", r.finish, r.err, want)
			}
			wantInt(t, "completion", r.usage.CompletionTokens, 6) // candidates + thoughts
			wantInt(t, "reasoning", r.usage.ReasoningTokens, 5)
			wantInt(t, "cached", r.usage.CachedTokens, 2)
		})
	}
}

// Stream must not return before the upstream answered, and a cancelled
// context must come back as itself, with the iterator's goroutine gone.
func TestGeminiCancelAndClose(t *testing.T) {
	t.Run("cancel before first event", func(t *testing.T) {
		srv := providertest.NewServer(t, providertest.Hang())
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := newGemini(t, srv).Stream(ctx, playground.ProviderRequest{Model: "gemini-2.5-flash", Prompt: "hi"})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("close while receiving", func(t *testing.T) {
		first := []byte(`data: {"candidates": [{"content": {"parts": [{"text": "Hi"}],"role": "model"},"index": 0}]}` + "\n\n")
		srv := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			providertest.SSEBytes(first).ServeHTTP(w, r)
			<-r.Context().Done()
		}))
		s, err := newGemini(t, srv).Stream(context.Background(), playground.ProviderRequest{Model: "gemini-2.5-flash", Prompt: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		if d, err := s.Recv(); err != nil || d.Text != "Hi" {
			t.Fatalf("first Recv = %q, %v", d.Text, err)
		}
		done := make(chan error)
		go func() { _, err := s.Recv(); done <- err }()
		s.Close()
		if err := <-done; err == nil {
			t.Fatal("Recv returned no error after Close")
		}
		s.Close()
	})
	t.Run("close without reading", func(t *testing.T) {
		srv := providertest.NewServer(t, providertest.ReplaySSE(t, "gemini-stream.sse"))
		s, err := newGemini(t, srv).Stream(context.Background(), playground.ProviderRequest{Model: "gemini-2.5-flash", Prompt: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	})
}

func TestGeminiErrorAsFirstEvent(t *testing.T) {
	srv := providertest.NewServer(t, providertest.SSEBytes(
		[]byte(`data: {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}`+"\n\n")))
	r := stream(t, newGemini(t, srv), "gemini-2.5-flash", playground.Params{})
	wantProviderError(t, r.err, playground.RErrProviderError, true)
}
