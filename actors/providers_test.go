package actors

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/providers"
	"github.com/playground-dev/playground/providers/providertest"
)

// realCatalog serves "fake/<name>" through a real provider client.
type realCatalog struct{ p playground.Provider }

func (c realCatalog) Models() []playground.Model { return nil }

func (c realCatalog) Lookup(id string) (playground.Model, playground.Provider, error) {
	return playground.Model{ID: id, Provider: c.p.Name(), Pricing: &playground.Pricing{InputPerMillionUSD: 0.15, OutputPerMillionUSD: 0.6}}, c.p, nil
}

// sequence answers the n-th request with handlers[n] (the last repeats).
func sequence(handlers ...http.Handler) (http.Handler, *atomic.Int64) {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1) - 1
		handlers[min(int(i), len(handlers)-1)].ServeHTTP(w, r)
	}), &n
}

// realRig runs sessions through a real provider against a fake upstream.
func realRig(t *testing.T, policy Policy, provider func(srv *providertest.Server) playground.Provider, h http.Handler) *rig {
	srv := providertest.NewServer(t, h)
	r := newRig(t, policy, nil)
	r.engine.catalog = realCatalog{provider(srv)}
	return r
}

func openAIAt(srv *providertest.Server) playground.Provider {
	return providers.NewOpenAI("sk-test", srv.URL+"/v1", srv.Client())
}

// TestRetryAfterThroughTheSDK: a 429 with Retry-After: 1 is retried after
// at least a second and completes with attempts 2 and the fixture's text.
func TestRetryAfterThroughTheSDK(t *testing.T) {
	limited := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`))
	})
	h, calls := sequence(limited, providertest.ReplaySSE(t, "openai-stream-usage.sse"))
	r := realRig(t, DefaultPolicy(), openAIAt, h)
	start := time.Now()
	s, q := r.start("gpt-4o-mini")
	_, stored := r.wait(s, q)
	resp := stored.Responses[0]
	if took := time.Since(start); took < time.Second {
		t.Fatalf("retried after %v", took)
	}
	if resp.Status != playground.StatusComplete || resp.Metrics.Attempts != 2 || calls.Load() != 2 ||
		resp.Text != "CRDTs merge without a café ☕ or 調整." || *resp.Metrics.CompletionTokens != 11 {
		t.Fatalf("response %+v metrics %+v after %d calls", resp, resp.Metrics, calls.Load())
	}
}

// TestErrorFixturesThroughTheSDKs: each fixture's failure ends with the
// right code, retry decision and attempt count.
func TestErrorFixturesThroughTheSDKs(t *testing.T) {
	policy := fastPolicy()
	policy.Total = 3 * time.Second
	anthropicAt := func(srv *providertest.Server) playground.Provider {
		return providers.NewAnthropic("sk-ant", srv.URL, srv.Client())
	}
	openRouterAt := func(srv *providertest.Server) playground.Provider {
		return providers.NewOpenRouter("sk-or", srv.URL+"/api/v1", srv.Client())
	}
	for _, tc := range []struct {
		fixture   string
		provider  func(*providertest.Server) playground.Provider
		code      string
		retryable bool
		attempts  int
		text      string
	}{
		{"openai-insufficient-quota.http", openAIAt, playground.RErrInsufficientCredits, false, 1, ""},
		{"openrouter-402.http", openRouterAt, playground.RErrInsufficientCredits, false, 1, ""},
		{"anthropic-529.http", anthropicAt, playground.RErrProviderError, true, 3, ""},
		{"anthropic-midstream-overloaded.sse", anthropicAt, playground.RErrProviderError, true, 1, "Partial"},
		{"openrouter-midstream-error.sse", openRouterAt, playground.RErrProviderError, true, 1, "Partial answer"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			var h http.Handler
			if tc.fixture[len(tc.fixture)-4:] == ".sse" {
				h = providertest.ReplaySSE(t, tc.fixture)
			} else {
				h = providertest.ReplayHTTP(t, tc.fixture)
			}
			r := realRig(t, policy, tc.provider, h)
			s, q := r.start("some-model")
			_, stored := r.wait(s, q)
			resp := stored.Responses[0]
			if resp.Status != playground.StatusError || resp.Error.Code != tc.code || resp.Error.Retryable != tc.retryable ||
				resp.Metrics.Attempts != tc.attempts || resp.Text != tc.text {
				t.Fatalf("got %s %+v attempts %d text %q", resp.Status, resp.Error, resp.Metrics.Attempts, resp.Text)
			}
		})
	}
}

// TestSilentUpstreamTimesOut: a server that accepts the connection and
// says nothing ends in timeout within the configured limits.
func TestSilentUpstreamTimesOut(t *testing.T) {
	policy := fastPolicy()
	policy.FirstByte = 150 * time.Millisecond
	r := realRig(t, policy, openAIAt, providertest.Hang())
	start := time.Now()
	s, q := r.start("gpt-4o-mini")
	_, stored := r.wait(s, q)
	resp := stored.Responses[0]
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %v", took)
	}
	if resp.Status != playground.StatusError || resp.Error.Code != playground.RErrTimeout || resp.Metrics.Attempts != 3 {
		t.Fatalf("got %+v attempts %d", resp.Error, resp.Metrics.Attempts)
	}
}
