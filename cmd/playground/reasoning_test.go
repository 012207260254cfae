package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/providers/providertest"
)

// thinkFor is how long the fake upstream thinks before it answers.
const thinkFor = time.Second

// fakeThinker is a local OpenAI-compatible server replaying
// local-reasoning-content.sse once the gate opens: its reasoning_content
// events at once, its answer thinkFor later. Each request's body goes to
// bodies.
func fakeThinker(t *testing.T, gate <-chan struct{}, bodies chan<- []byte) *httptest.Server {
	events := bytes.SplitAfter(providertest.Fixture(t, "local-reasoning-content.sse"), []byte("\n\n"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			providertest.ModelList("deepseek-reasoner").ServeHTTP(w, r)
			return
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		bodies <- b.Bytes()
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		thought := false
		for _, ev := range events {
			if !thought && bytes.Contains(ev, []byte(`"content":"Water`)) {
				thought = true
				select {
				case <-time.After(thinkFor):
				case <-r.Context().Done():
					return
				}
			}
			_, _ = w.Write(ev)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestReasoningLive: a local model that thinks, then answers. Over
// WebSocket and SSE alike the response streams status streaming, its
// reasoning events (index 0, 1, …), its chunks, metrics, status complete,
// then done; the stored reasoning is the reasoning events in order, the
// text the chunks; ttftMs counts to the answer, not the thinking; and
// reasoningEffort reached the upstream as reasoning_effort.
func TestReasoningLive(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dialect string) {
		gate := make(chan struct{})
		bodies := make(chan []byte, 1)
		up := fakeThinker(t, gate, bodies)
		const model = "local/deepseek-reasoner"
		ts := startServer(t, dialect, map[string]string{"OLLAMA_BASE_URL": up.URL + "/v1", "MODELS": model}, nil)
		owner := ts.client(t).register()
		var created struct {
			Session *playground.Session `json:"session"`
		}
		if code := owner.do("POST", "/sessions", map[string]any{"prompt": "When does water boil?", "models": []string{model},
			"params": map[string]any{"reasoningEffort": "high"}}, &created); code != 201 {
			t.Fatalf("create session: %d", code)
		}
		s := created.Session
		if r := s.Responses[0]; r.Reasoning != "" || r.Text != "" {
			t.Fatalf("new response %+v", r)
		}
		var req struct {
			ReasoningEffort string `json:"reasoning_effort"`
		}
		if err := json.Unmarshal(<-bodies, &req); err != nil || req.ReasoningEffort != "high" {
			t.Fatalf("upstream request reasoning_effort %q (%v)", req.ReasoningEffort, err)
		}

		ws := ts.dialWS(t, owner.token, nil)
		ws.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
		sseOut := make(chan []sseEvent, 1)
		go func() {
			evs, _ := owner.readSSE("/sessions/"+s.ID+"/stream?since=0", nil, 0)
			sseOut <- evs
		}()
		waitFor(t, "two viewers", func() bool { return viewerCount(ws) == 2 })
		close(gate)

		var viaWS, viaSSE []playground.WireEvent
		for _, ev := range ws.untilDone(s.ID, 30*time.Second) {
			if ev.Type != playground.EventSubscribed && ev.Type != playground.EventSnapshot {
				viaWS = append(viaWS, ev)
			}
		}
		for _, e := range <-sseOut {
			if e.Event == string(playground.EventPresence) || e.Event == string(playground.EventSnapshot) {
				continue
			}
			if e.ID != strconv.FormatInt(e.Data.Seq, 10) || e.Event != string(e.Data.Type) {
				t.Errorf("SSE id %q / event %q do not match the data %+v", e.ID, e.Event, e.Data)
			}
			viaSSE = append(viaSSE, e.Data)
		}
		if !sameEvents(viaWS, viaSSE) {
			t.Fatalf("WebSocket and SSE differ:\nws  %v\nsse %v", types(viaWS), types(viaSSE))
		}
		checkLog(t, viaWS)

		want := "[status reasoning reasoning chunk chunk metrics status done]"
		if got := fmt.Sprint(types(viaWS)); got != want {
			t.Fatalf("events %s, want %s", got, want)
		}
		if viaWS[0].Status != playground.StatusStreaming || viaWS[6].Status != playground.StatusComplete {
			t.Fatalf("statuses %q then %q", viaWS[0].Status, viaWS[6].Status)
		}
		var reasoning, text string
		for i, ev := range viaWS[1:3] {
			if ev.Index != i || ev.ResponseID != s.Responses[0].ID || ev.Model != model {
				t.Fatalf("reasoning event %d: %+v", i, ev)
			}
			reasoning += ev.Text
		}
		for _, ev := range viaWS[3:5] {
			text += ev.Text
		}

		final := owner.session(s.ID).Responses[0]
		if final.Reasoning != reasoning || reasoning != "Boiling point at 1 atm: 100 °C." {
			t.Errorf("stored reasoning %q, events %q", final.Reasoning, reasoning)
		}
		if final.Text != text || text != "Water boils at 100 °C at sea level." {
			t.Errorf("stored text %q, chunks %q", final.Text, text)
		}
		m := final.Metrics
		if m == nil || m.TTFTMs == nil {
			t.Fatalf("metrics %+v without ttftMs", m)
		}
		if *m.TTFTMs < thinkFor.Milliseconds() {
			t.Fatalf("ttftMs %d: it is measured to the answer's first chunk, after %v of thinking", *m.TTFTMs, thinkFor)
		}
		if m.ReasoningTokens == nil || *m.ReasoningTokens != 17 {
			t.Errorf("reasoningTokens %v, want 17", m.ReasoningTokens)
		}

		// A late joiner's snapshot carries the reasoning too.
		late := ts.dialWS(t, owner.token, nil)
		late.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
		for _, ev := range late.untilDone(s.ID, 5*time.Second) {
			if ev.Type == playground.EventSnapshot && ev.Session.Responses[0].Reasoning != reasoning {
				t.Errorf("late snapshot reasoning %q", ev.Session.Responses[0].Reasoning)
			}
		}
	})
}

// TestReasoningAcrossInstances: a viewer who joins on another instance
// while the model thinks gets a snapshot rebuilt from the database's
// checkpoint and the Redis stream's tail; with the reasoning events after
// it, the thinking adds up to the stored reasoning exactly once.
func TestReasoningAcrossInstances(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	gate := make(chan struct{})
	bodies := make(chan []byte, 1)
	up := fakeThinker(t, gate, bodies)
	const model = "local/deepseek-reasoner"
	cl := newCluster(t, url, map[string]string{"OLLAMA_BASE_URL": up.URL + "/v1", "MODELS": model})
	a, b := cl.start(t, "a"), cl.start(t, "b")
	owner := a.client(t).register()
	s := owner.createSession("When does water boil?", model)
	<-bodies
	close(gate)
	// The thinking has streamed; the answer is thinkFor away.
	waitFor(t, "the thinking on A", func() bool { return owner.session(s.ID).Responses[0].Reasoning != "" })

	v := b.dialWS(t, owner.token, nil)
	v.send(map[string]any{"type": "subscribe", "sessionId": s.ID})
	var reasoning, text string
	var snapshots int
	for _, ev := range v.untilDone(s.ID, 30*time.Second) {
		switch ev.Type {
		case playground.EventSnapshot:
			snapshots++
			reasoning, text = ev.Session.Responses[0].Reasoning, ev.Session.Responses[0].Text
		case playground.EventReasoning:
			reasoning += ev.Text
		case playground.EventChunk:
			text += ev.Text
		}
	}
	stored := owner.session(s.ID).Responses[0]
	if snapshots == 0 || reasoning != stored.Reasoning || stored.Reasoning != "Boiling point at 1 atm: 100 °C." {
		t.Fatalf("B's viewer (%d snapshots) has reasoning %q, stored %q", snapshots, reasoning, stored.Reasoning)
	}
	if text != stored.Text || text == "" {
		t.Fatalf("B's viewer has text %q, stored %q", text, stored.Text)
	}
}
