package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/playground-dev/playground"
)

// followup posts a follow-up of sessionID and returns the new turn.
func (e *restEnv) followup(u testUser, sessionID string, body map[string]any) *playground.Session {
	e.t.Helper()
	var out struct {
		Session *playground.Session `json:"session"`
	}
	e.want(restReq{method: "POST", path: "/sessions/" + sessionID + "/followup", token: u.Token, body: body}, http.StatusCreated, &out)
	return out.Session
}

// sent is the thread the runner was asked to send for a response.
func (e *restEnv) sent(sessionID string, i int) []playground.Exchange {
	e.t.Helper()
	live, ok := e.runner.Live(sessionID)
	if !ok {
		e.t.Fatalf("session %s is not running", sessionID)
	}
	return live.Responses[i].History
}

func wantHistory(t *testing.T, what string, got []playground.Exchange, want ...string) {
	t.Helper()
	var flat []string
	for _, x := range got {
		flat = append(flat, x.Prompt, x.Answer)
	}
	if strings.Join(flat, "|") != strings.Join(want, "|") {
		t.Errorf("%s sent %q, want %q", what, flat, want)
	}
}

// Without from, each column carries on its own thread: each model is sent
// its own earlier answers, never another column's.
func TestFollowup_EachColumnItsOwnThread(t *testing.T) {
	t.Parallel()
	eachUser(t, "talk@example.com", func(t *testing.T, e *restEnv, u testUser) {
		first := e.createSession(u, "demo/fast", "openai/gpt-4o-mini")
		e.finish(first.ID, "fast one", "mini one")

		second := e.followup(u, first.ID, map[string]any{"prompt": "And then?"})
		if second.Kind != playground.KindFollowup || second.ParentID == nil || *second.ParentID != first.ID || second.RootID != first.ID || second.Prompt != "And then?" {
			t.Fatalf("second turn: kind %q parent %v root %q prompt %q", second.Kind, second.ParentID, second.RootID, second.Prompt)
		}
		for i, r := range second.Responses {
			if r.Continues == nil || *r.Continues != first.Responses[i].ID || r.Model != first.Responses[i].Model || r.Label != playground.Label(i) {
				t.Errorf("second turn response %d: model %q label %q continues %v", i, r.Model, r.Label, r.Continues)
			}
		}
		wantHistory(t, "column A", e.sent(second.ID, 0), "Explain CRDTs", "fast one")
		wantHistory(t, "column B", e.sent(second.ID, 1), "Explain CRDTs", "mini one")
		e.finish(second.ID, "fast two", "mini two")

		// A third turn to one column only, named by its model.
		third := e.followup(u, second.ID, map[string]any{"prompt": "Last one.", "models": []string{"openai/gpt-4o-mini"}})
		if len(third.Responses) != 1 || *third.Responses[0].Continues != second.Responses[1].ID {
			t.Fatalf("third turn responses %+v", third.Responses)
		}
		wantHistory(t, "the third turn", e.sent(third.ID, 0), "Explain CRDTs", "mini one", "And then?", "mini two")

		// The thread lists the three turns, oldest first; the list one conversation.
		var th struct {
			Sessions []*playground.Session `json:"sessions"`
		}
		decodeBody(t, e.do(restReq{method: "GET", path: "/sessions/" + third.ID + "/thread", token: u.Token}), &th)
		if len(th.Sessions) != 3 || th.Sessions[0].ID != first.ID || th.Sessions[1].ID != second.ID || th.Sessions[2].ID != third.ID ||
			th.Sessions[1].Responses[0].Text != "fast two" {
			t.Fatalf("thread = %+v", th.Sessions)
		}
		var list struct {
			Sessions []map[string]any `json:"sessions"`
		}
		decodeBody(t, e.do(restReq{method: "GET", path: "/sessions", token: u.Token}), &list)
		if len(list.Sessions) != 1 || list.Sessions[0]["turns"] != float64(3) {
			t.Errorf("list = %v", list.Sessions)
		}
		// One unit per model each turn: 5 - 2 - 2 - 1.
		e.wantRemaining(u, 0, "after three turns")
		w := e.do(restReq{method: "POST", path: "/sessions/" + third.ID + "/followup", token: u.Token, body: map[string]any{"prompt": "more"}})
		if w.Code != http.StatusBadRequest { // the third turn has not ended: nothing completed to follow
			t.Errorf("follow-up of a running turn: %d %s", w.Code, w.Body)
		}
		e.finish(third.ID, "mini three")
		wantError(t, e.do(restReq{method: "POST", path: "/sessions/" + third.ID + "/followup", token: u.Token, body: map[string]any{"prompt": "more"}}),
			http.StatusPaymentRequired, playground.EQuotaExceeded)
	})
}

// With from, every model of the new turn carries on the winner's thread,
// whatever model wrote it, with the winner's system prompt.
func TestFollowup_CarryOnWithTheWinner(t *testing.T) {
	t.Parallel()
	eachUser(t, "winner@example.com", func(t *testing.T, e *restEnv, u testUser) {
		if _, err := e.db.AddQuota(bg, u.ID, 10); err != nil {
			t.Fatal(err)
		}
		var created struct {
			Session *playground.Session `json:"session"`
		}
		e.want(restReq{method: "POST", path: "/sessions", token: u.Token, body: map[string]any{
			"prompt": "Name a CRDT", "models": []any{"demo/fast", map[string]any{"model": "openai/gpt-4o-mini", "system": "Be terse.", "params": map[string]any{"temperature": 0.2}}}}}, http.StatusCreated, &created)
		first := created.Session
		e.finish(first.ID, "a counter", "a set")
		winner := first.Responses[1]

		// By default the winner's own model takes it up.
		solo := e.followup(u, first.ID, map[string]any{"prompt": "Why?", "from": winner.ID})
		if len(solo.Responses) != 1 || solo.Responses[0].Model != winner.Model {
			t.Fatalf("default model of from: %+v", solo.Responses)
		}
		e.finish(solo.ID, "because")

		// Any model may take it up: each is sent the winner's thread.
		both := e.followup(u, first.ID, map[string]any{"prompt": "How?", "from": winner.ID, "models": []string{"demo/fast", "openrouter/meta-llama/llama-3.1-8b-instruct"}})
		for i, r := range both.Responses {
			if r.Continues == nil || *r.Continues != winner.ID || r.System == nil || *r.System != "Be terse." ||
				r.Params.Temperature == nil || *r.Params.Temperature != 0.2 {
				t.Errorf("column %d: continues %v system %v params %+v", i, r.Continues, r.System, r.Params)
			}
			wantHistory(t, fmt.Sprintf("column %d", i), e.sent(both.ID, i), "Name a CRDT", "a set")
		}
		// params given apply to every column, over the winner's.
		e.finish(both.ID, "x", "y")
		hot := e.followup(u, first.ID, map[string]any{"prompt": "Again", "from": winner.ID, "params": map[string]any{"temperature": 1.5}})
		if p := hot.Responses[0].Params; p.Temperature == nil || *p.Temperature != 1.5 {
			t.Errorf("params over the winner's: %+v", p)
		}
	})
}

// Every 400 the contract names for follow-ups, each with details.field,
// and the owner-only and state rules; nothing is charged by a refusal.
func TestFollowup_Refusals(t *testing.T) {
	t.Parallel()
	eachUser(t, "owner@example.com", func(t *testing.T, e *restEnv, u testUser) {
		other := e.register("other@example.com")
		if _, err := e.db.AddQuota(bg, u.ID, 50); err != nil {
			t.Fatal(err)
		}
		twice := func() *playground.Session {
			w := e.do(restReq{method: "POST", path: "/sessions", token: u.Token, body: map[string]any{
				"prompt": "Hi", "models": []any{"demo/fast", map[string]any{"model": "demo/fast", "params": map[string]any{"temperature": 1}}, "openai/gpt-4o-mini"}}})
			var out struct {
				Session *playground.Session `json:"session"`
			}
			decodeBody(t, w, &out)
			return out.Session
		}()
		e.finish(twice.ID, "a", "b", "c")
		// The third column failed.
		if _, err := e.db.Bun().ExecContext(bg, "UPDATE responses SET status = 'error' WHERE id = ?", twice.Responses[2].ID); err != nil {
			t.Fatal(err)
		}
		path := "/sessions/" + twice.ID + "/followup"
		cases := []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"no prompt", map[string]any{}, "prompt"},
			{"a prompt too long", map[string]any{"prompt": strings.Repeat("x", 32001)}, "prompt"},
			{"bad params", map[string]any{"prompt": "x", "params": map[string]any{"temperature": 5}}, "params.temperature"},
			{"no models", map[string]any{"prompt": "x", "models": []string{}}, "models"},
			{"a model of no column", map[string]any{"prompt": "x", "models": []string{"openrouter/meta-llama/llama-3.1-8b-instruct"}}, "models[0]"},
			{"a model that answered twice", map[string]any{"prompt": "x", "models": []string{"demo/fast"}}, "models[0]"},
			{"an answer that failed", map[string]any{"prompt": "x", "models": []string{twice.Responses[0].ID, twice.Responses[2].ID}}, "models[1]"},
			{"the same answer twice", map[string]any{"prompt": "x", "models": []string{twice.Responses[0].ID, twice.Responses[0].ID}}, "models[1]"},
			{"from another session", map[string]any{"prompt": "x", "from": "r_nope"}, "from"},
			{"from an answer that failed", map[string]any{"prompt": "x", "from": twice.Responses[2].ID}, "from"},
			{"an unknown field", map[string]any{"prompt": "x", "blind": true}, "blind"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				wantField(t, e.do(restReq{method: "POST", path: path, token: u.Token, body: tc.body}), tc.field)
			})
		}
		// Two columns of one model are named by response id.
		ok := e.followup(u, twice.ID, map[string]any{"prompt": "x", "models": []string{twice.Responses[1].ID}})
		if *ok.Responses[0].Continues != twice.Responses[1].ID {
			t.Errorf("named by response id: continues %v", ok.Responses[0].Continues)
		}
		e.finish(ok.ID, "d")
		wantError(t, e.do(restReq{method: "POST", path: path, token: u.Token, body: map[string]any{"prompt": "x", "from": twice.Responses[0].ID, "models": []string{"x/unknown"}}}),
			http.StatusBadRequest, playground.EUnknownModel)
		wantError(t, e.do(restReq{method: "POST", path: path, body: map[string]any{"prompt": "x"}}), http.StatusUnauthorized, playground.EUnauthorized)
		wantError(t, e.do(restReq{method: "POST", path: path, token: other.Token, body: map[string]any{"prompt": "x"}}), http.StatusNotFound, playground.ENotFound)

		// A share holder watches but does not follow up.
		var sh struct {
			ShareToken string `json:"shareToken"`
		}
		decodeBody(t, e.do(restReq{method: "POST", path: "/sessions/" + twice.ID + "/share", token: u.Token}), &sh)
		wantError(t, e.do(restReq{method: "POST", path: path + "?share=" + sh.ShareToken, body: map[string]any{"prompt": "x"}}), http.StatusForbidden, playground.EForbidden)

		// A thread that would send more than 400,000 characters.
		long := strings.Repeat("word ", 6000) // 30,000 characters
		prev := ok
		for i := 0; i < 7; i++ {
			next := e.followup(u, prev.ID, map[string]any{"prompt": long})
			e.finish(next.ID, long)
			prev = next
		}
		wantField(t, e.do(restReq{method: "POST", path: "/sessions/" + prev.ID + "/followup", token: u.Token, body: map[string]any{"prompt": long}}), "prompt")
	})
}

// A conversation holds at most 100 turns: the next follow-up is 409.
func TestFollowup_TurnLimit(t *testing.T) {
	t.Parallel()
	eachUser(t, "long@example.com", func(t *testing.T, e *restEnv, u testUser) {
		if _, err := e.db.AddQuota(bg, u.ID, 200); err != nil {
			t.Fatal(err)
		}
		first := e.createSession(u, "demo/fast")
		e.finish(first.ID, "a")
		prev := first
		for i := 1; i < maxTurns; i++ {
			s := &playground.Session{UserID: u.ID, Prompt: "p", Kind: playground.KindFollowup, ParentID: &prev.ID, RootID: first.ID,
				Status: playground.SessionComplete, Responses: []*playground.Response{{Model: "demo/fast", Status: playground.StatusComplete, Text: "t"}}}
			if err := e.db.CreateSession(bg, s); err != nil {
				t.Fatal(err)
			}
			prev = s
		}
		wantError(t, e.do(restReq{method: "POST", path: "/sessions/" + prev.ID + "/followup", token: u.Token, body: map[string]any{"prompt": "one more"}}),
			http.StatusConflict, playground.EConflict)
	})
}

// The estimate of a follow-up counts each column's thread and charges nothing.
func TestFollowup_Estimate(t *testing.T) {
	t.Parallel()
	eachUser(t, "est@example.com", func(t *testing.T, e *restEnv, u testUser) {
		first := e.createSession(u, "openai/gpt-4o-mini")
		e.finish(first.ID, strings.Repeat("long answer ", 500))
		estimate := func(path string, body map[string]any) float64 {
			t.Helper()
			w := e.do(restReq{method: "POST", path: path, token: u.Token, body: body})
			var out estimateAnswer
			decodeBody(t, w, &out)
			if w.Code != http.StatusOK || len(out.Models) != 1 || out.Models[0].EstimatedCostUSD == nil || out.QuotaRequired != 1 {
				t.Fatalf("estimate %s: %d %s", path, w.Code, w.Body)
			}
			return *out.Models[0].EstimatedCostUSD
		}
		alone := estimate("/sessions/estimate", map[string]any{"prompt": "Why?", "models": []string{"openai/gpt-4o-mini"}})
		inThread := estimate("/sessions/"+first.ID+"/followup?estimate=1", map[string]any{"prompt": "Why?"})
		// 6,000 more characters: about 1,500 prompt tokens at $0.15 per million.
		if d := inThread - alone; d < 1400*0.15/1e6 || d > 1600*0.15/1e6 {
			t.Errorf("the thread adds $%g to the estimate, want about 1,500 prompt tokens' worth", d)
		}
		e.wantRemaining(u, 4, "after estimates, which charge nothing")
	})
}

// One share token covers the whole conversation, present and future
// turns; asked from any turn it is the same; unshared from any turn it
// stops working for all.
func TestShare_CoversTheConversation(t *testing.T) {
	t.Parallel()
	eachUser(t, "sharer@example.com", func(t *testing.T, e *restEnv, u testUser) {
		stranger := e.register("stranger@example.com")
		first := e.createSession(u, "demo/fast")
		e.finish(first.ID, "a")
		second := e.followup(u, first.ID, map[string]any{"prompt": "more"})
		share := func(id string) string {
			var sh struct {
				ShareToken string `json:"shareToken"`
			}
			decodeBody(t, e.do(restReq{method: "POST", path: "/sessions/" + id + "/share", token: u.Token}), &sh)
			return sh.ShareToken
		}
		tok := share(second.ID)
		if again := share(first.ID); again != tok {
			t.Fatalf("share from the first turn gave %q, from the second %q", again, tok)
		}
		e.finish(second.ID, "b")
		third := e.followup(u, second.ID, map[string]any{"prompt": "even more"})
		for _, id := range []string{first.ID, second.ID, third.ID} {
			if w := e.do(restReq{method: "GET", path: "/sessions/" + id + "?share=" + tok}); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"shared":true`) {
				t.Errorf("turn %s with the token: %d %s", id, w.Code, w.Body)
			}
			wantError(t, e.do(restReq{method: "GET", path: "/sessions/" + id, token: stranger.Token}), http.StatusNotFound, playground.ENotFound)
			wantError(t, e.do(restReq{method: "GET", path: "/sessions/" + id + "/thread", token: stranger.Token}), http.StatusNotFound, playground.ENotFound)
			wantError(t, e.do(restReq{method: "GET", path: "/sessions/" + id + "/thread"}), http.StatusUnauthorized, playground.EUnauthorized)
		}
		// The link opens the first turn, from which the thread is found.
		var opened struct {
			Session *playground.Session `json:"session"`
		}
		decodeBody(t, e.do(restReq{method: "GET", path: "/share/" + tok}), &opened)
		if opened.Session == nil || opened.Session.ID != first.ID {
			t.Fatalf("/share opened %+v, want the first turn", opened.Session)
		}
		var th struct {
			Sessions []*playground.Session `json:"sessions"`
		}
		decodeBody(t, e.do(restReq{method: "GET", path: "/sessions/" + first.ID + "/thread?share=" + tok}), &th)
		if len(th.Sessions) != 3 {
			t.Fatalf("a share holder's thread has %d turns, want 3", len(th.Sessions))
		}
		// The ended turns' streams, with the token alone or beside another
		// account.
		for _, id := range []string{first.ID, second.ID} {
			for _, token := range []string{"", stranger.Token} {
				if w := e.do(restReq{method: "GET", path: "/sessions/" + id + "/stream?share=" + tok, token: token}); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "event: done") {
					t.Errorf("the stream of turn %s with the token: %d %s", id, w.Code, w.Body)
				}
			}
		}

		if w := e.do(restReq{method: "DELETE", path: "/sessions/" + third.ID + "/share", token: u.Token}); w.Code != http.StatusNoContent {
			t.Fatalf("unshare: %d %s", w.Code, w.Body)
		}
		// Viewers of every turn who came with the token are cut off.
		for _, id := range []string{first.ID, second.ID, third.ID} {
			if !slices.Contains(e.runner.unshares, id+"/"+tok) {
				t.Errorf("the viewers of turn %s were not cut off: %v", id, e.runner.unshares)
			}
		}
		for _, id := range []string{first.ID, second.ID, third.ID} {
			wantError(t, e.do(restReq{method: "GET", path: "/sessions/" + id + "?share=" + tok}), http.StatusNotFound, playground.ENotFound)
			wantError(t, e.do(restReq{method: "GET", path: "/sessions/" + id + "/stream?share=" + tok}), http.StatusNotFound, playground.ENotFound)
		}
		wantError(t, e.do(restReq{method: "GET", path: "/share/" + tok}), http.StatusNotFound, playground.ENotFound)
	}, withHub)
}
