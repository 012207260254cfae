package providers_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/providers"
)

func demoRun(t *testing.T, model, prompt string, params playground.Params) result {
	t.Helper()
	p := providers.NewDemo(providers.DemoOptions{Speed: 1000})
	s, err := p.Stream(context.Background(), playground.ProviderRequest{Model: model, Prompt: prompt, System: "Be brief.", Params: params})
	if err != nil {
		return result{err: err}
	}
	return drain(t, s)
}

func TestDemoStream(t *testing.T) {
	prompt := "Explain CRDTs and vector clocks in two sentences"
	r := demoRun(t, "fast", prompt, playground.Params{})
	if r.err != nil {
		t.Fatal(r.err)
	}
	words := len(strings.Fields(r.text))
	if words < 60 || words > 140 {
		t.Fatalf("demo/fast wrote %d words, want about 60 to 120", words)
	}
	if !strings.Contains(r.text, "CRDTs") && !strings.Contains(r.text, "vector") && !strings.Contains(r.text, "clocks") {
		t.Fatalf("text does not mention the prompt: %q", r.text)
	}
	if r.finish != playground.FinishStop {
		t.Fatalf("finish = %q", r.finish)
	}
	wantInt(t, "prompt", r.usage.PromptTokens, int64(len(strings.Fields(prompt))+2))
	wantInt(t, "completion", r.usage.CompletionTokens, int64(words))
	if r.deltas < 20 {
		t.Fatalf("%d deltas: the text should come a few words at a time", r.deltas)
	}

	if again := demoRun(t, "fast", prompt, playground.Params{}); again.text != r.text {
		t.Fatal("the same model and prompt gave a different text")
	}
	if other := demoRun(t, "steady", prompt, playground.Params{}); other.text == r.text {
		t.Fatal("two models gave the same text")
	}
	if other := demoRun(t, "fast", "Why is the sky blue?", playground.Params{}); other.text == r.text {
		t.Fatal("two prompts gave the same text")
	}
}

func TestDemoMaxTokens(t *testing.T) {
	r := demoRun(t, "steady", "Tell me about gardens", playground.Params{MaxTokens: intp(7)})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if n := len(strings.Fields(r.text)); n != 7 {
		t.Fatalf("%d words, want 7", n)
	}
	if r.finish != playground.FinishLength {
		t.Fatalf("finish = %q, want length", r.finish)
	}
	wantInt(t, "completion", r.usage.CompletionTokens, 7)
}

func TestDemoError(t *testing.T) {
	r := demoRun(t, "error", "anything", playground.Params{})
	pe := wantProviderError(t, r.err, playground.RErrProviderError, false)
	if pe.Message != providers.DemoErrorMessage {
		t.Fatalf("message = %q", pe.Message)
	}
}

func TestDemoPaceAndCancel(t *testing.T) {
	p := providers.NewDemo(providers.DemoOptions{Speed: 10}) // slow: ~40 ms to the first chunk
	ctx, cancel := context.WithCancel(context.Background())
	s, err := p.Stream(ctx, playground.ProviderRequest{Model: "slow", Prompt: "hello there"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Fatalf("first chunk after %v, want the start delay (~40 ms at speed 10)", waited)
	}
	cancel()
	if _, err := s.Recv(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv after cancel = %v, want context.Canceled", err)
	}

	// Close wakes a Recv that is waiting for its next chunk.
	s2, err := providers.NewDemo(providers.DemoOptions{Speed: 0.01}).Stream(context.Background(),
		playground.ProviderRequest{Model: "slow", Prompt: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { _, err := s2.Recv(); done <- err }()
	s2.Close()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv after Close = %v", err)
	}
	s2.Close()
}

func FuzzDemoText(f *testing.F) {
	f.Add("Explain CRDTs in two sentences", uint64(1), 80)
	f.Add("", uint64(2), 5)
	f.Add("日本語のプロンプト、説明してください", uint64(3), 30)
	f.Add("\xff\xfe broken utf8 ßßß", uint64(4), 1)
	f.Fuzz(func(t *testing.T, prompt string, seed uint64, n int) {
		n = max(0, min(n, 500))
		words := providers.DemoText(rand.New(rand.NewPCG(seed, seed)), prompt, n)
		if len(words) < n {
			t.Fatalf("%d words, want at least %d", len(words), n)
		}
		text := strings.Join(words, "")
		if len(strings.Fields(text)) != len(words) {
			t.Fatalf("tokens do not join into %d words: %q", len(words), text)
		}
		if utf8.ValidString(prompt) && !utf8.ValidString(text) {
			t.Fatalf("invalid UTF-8 from a valid prompt: %q", text)
		}
	})
}

// With reasoningEffort set, a demo model thinks first (more at higher
// efforts), then gives the answer it gives without thinking; off thinks
// not at all.
func TestDemoThinking(t *testing.T) {
	prompt := "Explain CRDTs in two sentences"
	plain := demoRun(t, "fast", prompt, playground.Params{})
	least := 0
	for _, effort := range []string{"off", "low", "medium", "high"} {
		r := demoRun(t, "fast", prompt, playground.Params{ReasoningEffort: &effort})
		if r.err != nil {
			t.Fatal(r.err)
		}
		words := len(strings.Fields(r.reasoning))
		if (effort == "off") != (words == 0) || (effort != "off" && words <= least) {
			t.Fatalf("%s: %d words of thinking, after %d at the effort below: %q", effort, words, least, r.reasoning)
		}
		least = words
		if r.text != plain.text {
			t.Fatalf("%s: the thinking changed the answer", effort)
		}
		wantInt(t, "completion", r.usage.CompletionTokens, int64(len(strings.Fields(plain.text))+words))
		if words == 0 {
			wantNil(t, "reasoning tokens", r.usage.ReasoningTokens)
		} else {
			wantInt(t, "reasoning tokens", r.usage.ReasoningTokens, int64(words))
		}
	}
}
