package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeOpenAI is a local OpenAI-compatible upstream speaking the Chat
// Completions streaming format (as in shared/fixtures/providers). Every
// stream waits for the gate, then sends chunks words of text, delay
// apart, a finish chunk, the usage chunk and [DONE].
type fakeOpenAI struct {
	srv      *httptest.Server
	gate     chan struct{}
	chunks   int
	delay    time.Duration
	size     int // extra bytes per chunk, to make big streams
	requests atomic.Int64
}

func newFakeOpenAI(t *testing.T, chunks int, delay time.Duration) *fakeOpenAI {
	f := &fakeOpenAI{gate: make(chan struct{}), chunks: chunks, delay: delay}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// open lets every waiting and future stream start.
func (f *fakeOpenAI) open() { close(f.gate) }

// env points the openai provider at this upstream, offering models.
func (f *fakeOpenAI) env(models ...string) map[string]string {
	return map[string]string{"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f.srv.URL + "/v1", "MODELS": strings.Join(models, ",")}
}

// wordFor is the i-th piece of a model's answer, so every column differs
// and a doubled or missing piece shows.
func wordFor(model string, i int) string {
	return fmt.Sprintf("%s-%d ", strings.TrimPrefix(model, "gpt-"), i)
}

// expectedText is what the upstream sends for a model in all.
func (f *fakeOpenAI) expectedText(model string) string {
	var b strings.Builder
	for i := range f.chunks {
		b.WriteString(wordFor(model, i))
		b.WriteString(strings.Repeat("x", f.size))
	}
	return b.String()
}

func (f *fakeOpenAI) serve(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	var req struct {
		Model string `json:"model"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.URL.Path != "/v1/chat/completions" {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	select {
	case <-f.gate:
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	send := func(payload string) bool {
		if _, err := fmt.Fprintf(w, "data: %s\n\n", payload); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	chunk := func(delta map[string]any, finish any) string {
		b, _ := json.Marshal(map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1764100800,
			"model": req.Model, "choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}, "usage": nil})
		return string(b)
	}
	send(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	for i := range f.chunks {
		if f.delay > 0 {
			select {
			case <-time.After(f.delay):
			case <-r.Context().Done():
				return
			}
		}
		if !send(chunk(map[string]any{"content": wordFor(req.Model, i) + strings.Repeat("x", f.size)}, nil)) {
			return
		}
	}
	send(chunk(map[string]any{}, "stop"))
	usage, _ := json.Marshal(map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1764100800,
		"model": req.Model, "choices": []any{}, "usage": map[string]any{"prompt_tokens": 14, "completion_tokens": f.chunks, "total_tokens": 14 + f.chunks}})
	send(string(usage))
	send("[DONE]")
}
