package providers_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/config"
	"github.com/playground-dev/playground/providers"
	"github.com/playground-dev/playground/providers/providertest"
)

func newRegistry(t *testing.T, cfg *config.Config, opts providers.RegistryOptions) *providers.Registry {
	t.Helper()
	if opts.Demo.Speed == 0 {
		opts.Demo.Speed = 1000
	}
	r, err := providers.NewRegistry(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func findModel(t *testing.T, models []playground.Model, id string) playground.Model {
	t.Helper()
	for _, m := range models {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("model %s not listed", id)
	return playground.Model{}
}

func wantCode(t *testing.T, err error, code, model string) {
	t.Helper()
	var e *playground.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	if e.Details["model"] != model {
		t.Fatalf("details = %v, want model %s", e.Details, model)
	}
}

func TestRegistryNoKeys(t *testing.T) {
	r := newRegistry(t, &config.Config{}, providers.RegistryOptions{})
	models := r.Models()

	m := findModel(t, models, "openai/gpt-4o-mini")
	if m.Available || m.UnavailableReason == nil || *m.UnavailableReason != playground.UnavailableNoKey {
		t.Fatalf("openai without a key: %+v", m)
	}
	if m.Name != "GPT-4o mini" || m.Provider != "openai" || m.Pricing == nil || m.Pricing.InputPerMillionUSD != 0.15 || m.Pricing.OutputPerMillionUSD != 0.60 {
		t.Fatalf("catalogue entry: %+v", m)
	}
	for _, id := range []string{"demo/fast", "demo/steady", "demo/slow", "demo/error"} {
		d := findModel(t, models, id)
		if !d.Available || d.UnavailableReason != nil || d.Pricing != nil || d.Provider != "demo" {
			t.Fatalf("%s: %+v", id, d)
		}
	}
	for _, m := range models {
		if m.Provider == playground.ProviderLocal {
			t.Fatalf("local model %s listed without OLLAMA_BASE_URL", m.ID)
		}
	}

	_, _, err := r.Lookup("openai/gpt-4o-mini")
	wantCode(t, err, playground.EModelUnavailable, "openai/gpt-4o-mini")
	_, _, err = r.Lookup("openai/gpt-nonexistent")
	wantCode(t, err, playground.EUnknownModel, "openai/gpt-nonexistent")

	m, p, err := r.Lookup("demo/steady")
	if err != nil || p == nil || p.Name() != "demo" || m.ID != "demo/steady" {
		t.Fatalf("Lookup(demo/steady) = %+v, %v, %v", m, p, err)
	}
	s, err := p.Stream(context.Background(), playground.ProviderRequest{Model: "steady", Prompt: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if res := drain(t, s); res.err != nil || res.text == "" {
		t.Fatalf("demo through the registry: %+v", res)
	}
}

// TestRegistryDemoSpeed: DEMO_SPEED sets the demo models' pace. A lower
// bound, so a busy machine cannot make it pass: demo/fast's first chunk
// comes 60 ms after the start at its own pace, 600 ms at a tenth of it.
func TestRegistryDemoSpeed(t *testing.T) {
	r, err := providers.NewRegistry(&config.Config{DemoSpeed: 0.1}, providers.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	_, p, err := r.Lookup("demo/fast")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, err := p.Stream(t.Context(), playground.ProviderRequest{Model: "fast", Prompt: "Pace"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 500*time.Millisecond {
		t.Fatalf("the first chunk came after %v, want about 600 ms at DEMO_SPEED=0.1", waited)
	}
}

func TestRegistryKeysAndCooling(t *testing.T) {
	var cooling sync.Map
	cfg := &config.Config{
		OpenAIKey: "sk", OpenAIBaseURL: "http://127.0.0.1:1/v1",
		OpenRouterKey: "sk-or", OpenRouterBaseURL: "http://127.0.0.1:1/api/v1",
		AnthropicKey: "sk-ant", AnthropicBaseURL: "http://127.0.0.1:1",
		GeminiKey: "g", GeminiBaseURL: "http://127.0.0.1:1",
	}
	r := newRegistry(t, cfg, providers.RegistryOptions{Cooling: func(p string) bool {
		_, ok := cooling.Load(p)
		return ok
	}})
	for _, m := range r.Models() {
		if !m.Available {
			t.Fatalf("%s unavailable with every key set: %v", m.ID, *m.UnavailableReason)
		}
	}
	for id, name := range map[string]string{
		"openai/gpt-4o-mini": "openai", "openrouter/meta-llama/llama-3.1-8b-instruct": "openrouter",
		"anthropic/claude-sonnet-4-5": "anthropic", "gemini/gemini-2.5-flash": "gemini",
	} {
		_, p, err := r.Lookup(id)
		if err != nil || p.Name() != name {
			t.Fatalf("Lookup(%s) = %v, %v", id, p, err)
		}
	}

	cooling.Store("anthropic", true)
	m := findModel(t, r.Models(), "anthropic/claude-haiku-4-5")
	if m.Available || *m.UnavailableReason != playground.UnavailableCoolingDown {
		t.Fatalf("cooling provider: %+v", m)
	}
	_, _, err := r.Lookup("anthropic/claude-haiku-4-5")
	wantCode(t, err, playground.EModelUnavailable, "anthropic/claude-haiku-4-5")
	if !findModel(t, r.Models(), "openai/gpt-4o").Available {
		t.Fatal("another provider's cooling made openai unavailable")
	}
}

func TestRegistryModelsRestricts(t *testing.T) {
	in, out := 0.1, 0.4
	cfg := &config.Config{
		OpenAIKey: "sk", OpenAIBaseURL: "http://127.0.0.1:1/v1",
		Models: []string{"demo/fast", "openai/gpt-4.1-nano", "openai/gpt-5-preview", "local/llama3.2", "openai/gpt-4o-mini"},
		Catalog: []config.CatalogEntry{
			{ID: "openai/gpt-4.1-nano", Name: "Nano", InputPerMillionUSD: &in, OutputPerMillionUSD: &out},
			{ID: "openai/gpt-4o-mini", Name: "Mini (override)"},
		},
	}
	r := newRegistry(t, cfg, providers.RegistryOptions{})
	models := r.Models()
	var ids []string
	for _, m := range models {
		ids = append(ids, m.ID)
	}
	if !slices.Equal(ids, cfg.Models) {
		t.Fatalf("listed %v, want exactly %v", ids, cfg.Models)
	}
	if m := findModel(t, models, "openai/gpt-5-preview"); m.Name != "gpt-5-preview" || m.Pricing != nil || !m.Available {
		t.Fatalf("id outside the catalogue: %+v", m)
	}
	if m := findModel(t, models, "openai/gpt-4.1-nano"); m.Name != "Nano" || m.Pricing.InputPerMillionUSD != 0.1 {
		t.Fatalf("config catalogue entry: %+v", m)
	}
	if m := findModel(t, models, "openai/gpt-4o-mini"); m.Name != "Mini (override)" || m.Pricing.OutputPerMillionUSD != 0.60 {
		t.Fatalf("name override kept the price? %+v", m)
	}
	if m := findModel(t, models, "local/llama3.2"); m.Available || *m.UnavailableReason != playground.UnavailableNoKey {
		t.Fatalf("local without OLLAMA_BASE_URL: %+v", m)
	}
	if p := r.Pricing("openai/gpt-4o-mini"); p == nil || p.InputPerMillionUSD != 0.15 {
		t.Fatalf("Pricing = %+v", p)
	}
	if p := r.Pricing("demo/fast"); p != nil {
		t.Fatalf("demo pricing = %+v", p)
	}
	_, _, err := r.Lookup("openai/gpt-4o")
	wantCode(t, err, playground.EUnknownModel, "openai/gpt-4o") // in the catalogue, not in MODELS
}

func TestRegistryCatalogAdds(t *testing.T) {
	in, out := 1.0, 2.0
	r := newRegistry(t, &config.Config{Catalog: []config.CatalogEntry{
		{ID: "openai/gpt-4.1-nano-2025", Name: "Nano 2025", InputPerMillionUSD: &in, OutputPerMillionUSD: &out},
	}}, providers.RegistryOptions{})
	m := findModel(t, r.Models(), "openai/gpt-4.1-nano-2025")
	if m.Name != "Nano 2025" || m.Pricing == nil || m.Pricing.OutputPerMillionUSD != 2 {
		t.Fatalf("%+v", m)
	}
	findModel(t, r.Models(), "openai/gpt-4o") // the built-in list stays
}

// The fake server's third /models request proves the registry has stored
// the second one's answer: the refresh goroutine lists, stores, waits, lists.
func TestRegistryLocalDiscovery(t *testing.T) {
	var hits atomic.Int32
	third := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		switch hits.Add(1) {
		case 1:
			providertest.ModelList("llama3.2:3b").ServeHTTP(w, r)
		case 2:
			providertest.ModelList("llama3.2:3b", "qwen2.5:7b").ServeHTTP(w, r)
		case 3:
			close(third)
			fallthrough
		default:
			http.Error(w, "down", http.StatusServiceUnavailable) // keeps the last list
		}
	})
	mux.Handle("POST /v1/chat/completions", providertest.ReplaySSE(t, "openai-stream-usage.sse"))
	srv := providertest.NewServer(t, mux)

	r := newRegistry(t, &config.Config{OllamaBaseURL: srv.URL + "/v1"}, providers.RegistryOptions{
		HTTPClient: srv.Client(), LocalRefresh: 10 * time.Millisecond,
	})
	m := findModel(t, r.Models(), "local/llama3.2:3b") // discovered before NewRegistry returned
	if !m.Available || m.Name != "llama3.2:3b" || m.Pricing != nil {
		t.Fatalf("%+v", m)
	}
	_, p, err := r.Lookup("local/llama3.2:3b")
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Stream(context.Background(), playground.ProviderRequest{Model: "llama3.2:3b", Prompt: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if res := drain(t, s); res.text != openAIText {
		t.Fatalf("local stream through the registry: %+v", res)
	}

	select {
	case <-third:
	case <-time.After(5 * time.Second):
		t.Fatal("the registry did not refresh the local models")
	}
	findModel(t, r.Models(), "local/qwen2.5:7b")
	findModel(t, r.Models(), "local/llama3.2:3b") // a failed refresh keeps the list

	r.Close()
	r.Close() // twice is fine; goleak in TestMain checks the goroutine is gone
}

func TestRegistryLocalWithModelsDoesNotDiscover(t *testing.T) {
	srv := providertest.NewServer(t, providertest.ModelList("llama3.2:3b"))
	r := newRegistry(t, &config.Config{OllamaBaseURL: srv.URL + "/v1", Models: []string{"local/mistral"}},
		providers.RegistryOptions{HTTPClient: srv.Client()})
	if ms := r.Models(); len(ms) != 1 || ms[0].ID != "local/mistral" || !ms[0].Available {
		t.Fatalf("%+v", ms)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d discovery requests with MODELS set", n)
	}
}
