package playground

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestHiddenSessionMarshalsWithoutModels(t *testing.T) {
	cost := 0.01
	s := &Session{ID: "s_1", Blind: true, Responses: []*Response{
		{ID: "r_1", Model: "anthropic/claude-3-5-haiku", Label: "A", Status: StatusError,
			Error:   &ResponseError{Code: RErrProviderError, Message: "Anthropic answered 500: overloaded"},
			Metrics: &Metrics{CostUSD: &cost, DurationMs: 5}},
	}}
	for _, v := range []any{s, *s, SnapshotEvent{Session: s}, s.Responses[0].Redacted(), s.ViewOf(s.Responses[0])} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		low := strings.ToLower(string(b))
		for _, w := range []string{"anthropic", "claude", "0.01"} {
			if strings.Contains(low, w) {
				t.Errorf("%T names %q: %s", v, w, b)
			}
		}
		if !strings.Contains(string(b), `"model":null`) {
			t.Errorf("%T: model is not null: %s", v, b)
		}
	}
	if s.Responses[0].Model == "" || s.Responses[0].Error.Message == "" {
		t.Error("redaction changed the session itself")
	}
	s.Revealed = true
	b, _ := json.Marshal(s)
	if !strings.Contains(string(b), `"model":"anthropic/claude-3-5-haiku"`) || !strings.Contains(string(b), "overloaded") {
		t.Errorf("revealed session is still hidden: %s", b)
	}
}
