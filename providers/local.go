package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/playground-dev/playground"
)

// Local is the provider for a local OpenAI-compatible server (Ollama, vLLM,
// llama.cpp) at OLLAMA_BASE_URL: the OpenAI code, without a key, plus model
// discovery.
type Local struct {
	*OpenAICompat
	baseURL string
	hc      *http.Client
}

// NewLocal returns the local provider for baseURL (with its /v1, e.g.
// http://localhost:11434/v1). No Authorization header is sent.
func NewLocal(baseURL string, hc *http.Client) *Local {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Local{
		OpenAICompat: newOpenAICompat(playground.ProviderLocal, "", baseURL, hc),
		baseURL:      strings.TrimRight(baseURL, "/"),
		hc:           hc,
	}
}

// DiscoverModels asks the server for its models, `GET {base}/models` in the
// OpenAI list format ({"data": [{"id": …}, …]}), and returns their ids in
// the order given.
func (l *Local) DiscoverModels(ctx context.Context) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.baseURL+"/models", nil)
	if err != nil {
		return nil, fmt.Errorf("local: list models: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := l.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("local: list models: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return nil, fmt.Errorf("local: list models: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("local: list models: %w", ClassifyHTTP(playground.ProviderLocal, resp.StatusCode, resp.Header, body))
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("local: list models: not an OpenAI model list: %w", err)
	}
	ids := make([]string, 0, len(list.Data))
	seen := map[string]bool{}
	for _, m := range list.Data {
		if id := strings.TrimSpace(m.ID); id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}
