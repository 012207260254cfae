package actors

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/playground-dev/playground"
)

// Thinking that reached viewers (subscribed before it starts, 200 ms in) is not streamed again: a failure after it
// ends the response like a failure after text, keeping the reasoning, with
// streaming announced before the first reasoning event.
func TestNoRetryAfterThinking(t *testing.T) {
	r := newRig(t, fastPolicy(), nil)
	boom := &playground.ProviderError{Code: playground.RErrProviderError, Retryable: true, Message: "upstream broke"}
	r.prov.scripts["a"] = []script{{steps: []step{{reasoning: "Let me ", wait: 200 * time.Millisecond}, {reasoning: "think."}, {err: boom}}}}
	s, q := r.start("a")
	frames, stored := r.wait(s, q)
	resp := stored.Responses[0]
	if resp.Status != playground.StatusError || resp.Reasoning != "Let me think." || resp.Text != "" || resp.Metrics.Attempts != 1 {
		t.Fatalf("response %+v metrics %+v", resp, resp.Metrics)
	}
	if resp.Metrics.TTFTMs != nil {
		t.Fatalf("ttftMs %d without an answer", *resp.Metrics.TTFTMs)
	}
	var got []string
	for _, f := range frames {
		var ev playground.WireEvent
		if err := json.Unmarshal(f.Data, &ev); err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case playground.EventStatus:
			got = append(got, "status "+ev.Status)
		case playground.EventReasoning:
			got = append(got, "reasoning "+string(rune('0'+ev.Index))+" "+ev.Text)
		case playground.EventSnapshot, playground.EventSubscribed, playground.EventPresence:
		default:
			got = append(got, string(ev.Type))
		}
	}
	want := []string{"status streaming", "reasoning 0 Let me ", "reasoning 1 think.", "metrics", "status error", "done"}
	if len(got) != len(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %q, want %q", got, want)
		}
	}
}
