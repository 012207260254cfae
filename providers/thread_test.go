package providers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/providers"
	"github.com/playground-dev/playground/providers/providertest"
)

var updateThreads = flag.Bool("update-threads", false, "rewrite testdata/thread-*.json from the requests sent")

// threadRequest is the third turn of a conversation: two earlier
// exchanges, then the new prompt, under one system prompt.
var threadRequest = playground.ProviderRequest{
	System: "Answer in one sentence.",
	History: []playground.Exchange{
		{Prompt: "What is a CRDT?", Answer: "A data type that replicas update independently and merge without conflicts."},
		{Prompt: "Name one.", Answer: "A grow-only counter."},
	},
	Prompt: "How does it merge?",
	Params: playground.Params{Temperature: floatp(0.3), MaxTokens: intp(128)},
}

// Each provider sends a three-turn thread in its own multi-turn format,
// byte for byte the body in testdata/thread-<provider>.json (compared as
// JSON): OpenAI, OpenRouter and local servers as Chat Completions
// messages (system, then user and assistant in turn); Anthropic as
// messages with the system prompt apart; Gemini as contents with roles
// user and model and the system prompt as systemInstruction.
func TestThreadRequestBodies(t *testing.T) {
	cases := []struct {
		name    string
		model   string
		fixture string // the stream the fake upstream answers with
		make    func(t *testing.T, srv *providertest.Server) playground.Provider
	}{
		{"openai", "gpt-4o-mini", "openai-stream-usage.sse", func(t *testing.T, srv *providertest.Server) playground.Provider {
			return providers.NewOpenAI("sk", srv.URL+"/v1", srv.Client())
		}},
		{"openrouter", "meta-llama/llama-3.1-8b-instruct", "openrouter-stream-cost.sse", func(t *testing.T, srv *providertest.Server) playground.Provider {
			return providers.NewOpenRouter("sk-or", srv.URL+"/api/v1", srv.Client())
		}},
		{"local", "llama3.2", "openai-stream-usage.sse", func(t *testing.T, srv *providertest.Server) playground.Provider {
			return providers.NewLocal(srv.URL+"/v1", srv.Client())
		}},
		{"anthropic", "claude-3-5-haiku-latest", "anthropic-stream.sse", func(t *testing.T, srv *providertest.Server) playground.Provider {
			return providers.NewAnthropic("sk-ant", srv.URL, srv.Client())
		}},
		{"gemini", "gemini-2.5-flash", "gemini-stream.sse", func(t *testing.T, srv *providertest.Server) playground.Provider {
			return newGemini(t, srv)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := providertest.NewServer(t, providertest.ReplaySSE(t, tc.fixture))
			p := tc.make(t, srv)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req := threadRequest
			req.Model = tc.model
			s, err := p.Stream(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if r := drain(t, s); r.err != nil {
				t.Fatal(r.err)
			}
			got := srv.LastRequest(t)
			if got.Method != http.MethodPost {
				t.Fatalf("method %s", got.Method)
			}
			golden := filepath.Join(providertest.FixtureDir(t), "thread-"+tc.name+".json")
			if *updateThreads {
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, got.Body, "", "  "); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, append(pretty.Bytes(), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("the expected body: %v", err)
			}
			var w, g any
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatalf("%s: %v", golden, err)
			}
			if err := json.Unmarshal(got.Body, &g); err != nil {
				t.Fatalf("request body is not JSON: %v\n%s", err, got.Body)
			}
			if !jsonEqual(w, g) {
				t.Fatalf("request body\n%s\nwant (%s)\n%s", got.Body, golden, want)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
