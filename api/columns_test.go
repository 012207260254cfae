package api

import (
	"net/http"
	"strings"
	"testing"
)

// A column may run the same model with its own params and system prompt:
// each response says what it ran with, and the session says where it
// stands in its conversation (a first turn, not blind).
func TestCreateSession_PerColumnParams(t *testing.T) {
	t.Parallel()
	eachUser(t, "cols@example.com", func(t *testing.T, e *restEnv, u testUser) {
		body := map[string]any{
			"prompt": "Explain CRDTs",
			"system": "Be brief.",
			"params": map[string]any{"temperature": 0.7, "maxTokens": 512},
			"models": []any{
				"openai/gpt-4o-mini",
				map[string]any{"model": "openai/gpt-4o-mini", "params": map[string]any{"temperature": 1.5, "reasoningEffort": "high"}, "system": "Be verbose."},
				map[string]any{"model": "demo/fast"},
			},
		}
		var created struct {
			Session map[string]any `json:"session"`
		}
		e.want(restReq{method: "POST", path: "/sessions", token: u.Token, body: body}, http.StatusCreated, &created)
		id := created.Session["id"].(string)

		// The answer and a later GET say the same.
		var got struct {
			Session map[string]any `json:"session"`
		}
		decodeBody(t, e.do(restReq{method: "GET", path: "/sessions/" + id, token: u.Token}), &got)
		for name, s := range map[string]map[string]any{"create": created.Session, "get": got.Session} {
			if s["kind"] != "new" || s["rootId"] != id || s["parentId"] != nil || s["blind"] != false || s["revealed"] != true {
				t.Errorf("%s: session kind %v rootId %v parentId %v blind %v revealed %v", name, s["kind"], s["rootId"], s["parentId"], s["blind"], s["revealed"])
			}
			rs := s["responses"].([]any)
			want := []struct {
				label, model, system string
				temperature          float64
				effort               any
			}{
				{"A", "openai/gpt-4o-mini", "Be brief.", 0.7, nil},
				{"B", "openai/gpt-4o-mini", "Be verbose.", 1.5, "high"},
				{"C", "demo/fast", "Be brief.", 0.7, nil},
			}
			if len(rs) != len(want) {
				t.Fatalf("%s: %d responses", name, len(rs))
			}
			for i, w := range want {
				r := rs[i].(map[string]any)
				p := r["params"].(map[string]any)
				if r["label"] != w.label || r["model"] != w.model || r["system"] != w.system || r["continues"] != nil || r["reasoning"] != "" {
					t.Errorf("%s: response %d = %v", name, i, r)
				}
				// Every setting is present: null where the provider's default applies.
				if p["temperature"] != w.temperature || p["maxTokens"] != float64(512) || p["topP"] != nil || p["reasoningEffort"] != w.effort {
					t.Errorf("%s: response %d params = %v", name, i, p)
				}
				for _, k := range []string{"temperature", "maxTokens", "topP", "reasoningEffort"} {
					if _, ok := p[k]; !ok {
						t.Errorf("%s: response %d params lack %q: %v", name, i, k, p)
					}
				}
			}
		}
		// The runner is handed each column's own settings.
		live, ok := e.runner.Live(id)
		if !ok {
			t.Fatal("runner not started")
		}
		if b := live.Responses[1]; b.System == nil || *b.System != "Be verbose." || b.Params.Temperature == nil || *b.Params.Temperature != 1.5 {
			t.Errorf("runner got column B with system %v params %+v", b.System, b.Params)
		}
		// Three columns, three units: 5 - 3.
		e.wantRemaining(u, 2, "after the session")
	})
}

// Every malformed column is a 400 naming it, and nothing is charged.
func TestCreateSession_ColumnErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 32001)
	cases := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"same model twice", map[string]any{"models": []any{"demo/fast", "demo/fast"}}, "models[1]"},
		{"an entry that restates the session's params", map[string]any{
			"params": map[string]any{"temperature": 0.5},
			"models": []any{"demo/fast", "openai/gpt-4o-mini", map[string]any{"model": "demo/fast", "params": map[string]any{"temperature": 0.5}}}}, "models[2]"},
		{"an entry that restates the session's system", map[string]any{
			"system": "Be brief.",
			"models": []any{"demo/fast", map[string]any{"model": "demo/fast", "system": "Be brief."}}}, "models[1]"},
		{"an entry without a model", map[string]any{"models": []any{map[string]any{"params": map[string]any{"topP": 0.5}}}}, "models[0].model"},
		{"an entry's temperature out of range", map[string]any{"models": []any{"demo/fast", map[string]any{"model": "demo/fast", "params": map[string]any{"temperature": 3}}}}, "models[1].params.temperature"},
		{"an entry's system too long", map[string]any{"models": []any{map[string]any{"model": "demo/fast", "system": long}}}, "models[0].system"},
		{"an unknown reasoning effort", map[string]any{"models": []any{"demo/fast"}, "params": map[string]any{"reasoningEffort": "extreme"}}, "params.reasoningEffort"},
		{"nine columns", map[string]any{"models": []any{"demo/fast",
			map[string]any{"model": "demo/fast", "params": map[string]any{"temperature": 0.1}},
			map[string]any{"model": "demo/fast", "params": map[string]any{"temperature": 0.2}},
			map[string]any{"model": "demo/fast", "params": map[string]any{"temperature": 0.3}},
			map[string]any{"model": "demo/fast", "params": map[string]any{"temperature": 0.4}},
			map[string]any{"model": "demo/fast", "params": map[string]any{"temperature": 0.5}},
			map[string]any{"model": "demo/fast", "params": map[string]any{"temperature": 0.6}},
			map[string]any{"model": "demo/fast", "params": map[string]any{"temperature": 0.7}},
			map[string]any{"model": "demo/fast", "params": map[string]any{"temperature": 0.8}}}}, "models"},
	}
	eachUser(t, "colerr@example.com", func(t *testing.T, e *restEnv, u testUser) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tc.body["prompt"] = "Hi"
				wantField(t, e.do(restReq{method: "POST", path: "/sessions", token: u.Token, body: tc.body}), tc.field)
				wantField(t, e.do(restReq{method: "POST", path: "/sessions/estimate", token: u.Token, body: tc.body}), tc.field)
			})
		}
		e.wantRemaining(u, 5, "after refused requests")
	})
}

// A rerun is a later turn of the same conversation: the list shows the
// conversation once, by its first turn, with how many turns it holds.
func TestRerun_ConversationTurns(t *testing.T) {
	t.Parallel()
	eachUser(t, "turns@example.com", func(t *testing.T, e *restEnv, u testUser) {
		first := e.createSession(u, "demo/fast")
		e.finish(first.ID, "one")
		var rerun struct {
			Session map[string]any `json:"session"`
		}
		e.want(restReq{method: "POST", path: "/sessions/" + first.ID + "/rerun", token: u.Token,
			body: map[string]any{"models": []any{"demo/fast", map[string]any{"model": "demo/fast", "params": map[string]any{"temperature": 1}}}}}, http.StatusCreated, &rerun)
		s := rerun.Session
		if s["kind"] != "rerun" || s["rootId"] != first.ID || s["parentId"] != first.ID {
			t.Errorf("rerun kind %v rootId %v parentId %v, want rerun of %s", s["kind"], s["rootId"], s["parentId"], first.ID)
		}
		if rs := s["responses"].([]any); len(rs) != 2 || rs[1].(map[string]any)["label"] != "B" {
			t.Errorf("rerun responses = %v", rs)
		}
		var list struct {
			Sessions []map[string]any `json:"sessions"`
		}
		decodeBody(t, e.do(restReq{method: "GET", path: "/sessions", token: u.Token}), &list)
		if len(list.Sessions) != 1 {
			t.Fatalf("list has %d items, want the one conversation: %v", len(list.Sessions), list.Sessions)
		}
		item := list.Sessions[0]
		if item["id"] != first.ID || item["kind"] != "new" || item["turns"] != float64(2) || item["rootId"] != first.ID {
			t.Errorf("list item id %v kind %v turns %v rootId %v", item["id"], item["kind"], item["turns"], item["rootId"])
		}
		r := item["responses"].([]any)[0].(map[string]any)
		for _, k := range []string{"text", "reasoning"} {
			if _, ok := r[k]; ok {
				t.Errorf("list item response has %q", k)
			}
		}
		for _, k := range []string{"label", "params", "system", "continues"} {
			if _, ok := r[k]; !ok {
				t.Errorf("list item response lacks %q", k)
			}
		}
	})
}
