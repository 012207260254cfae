package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/playground-dev/playground"
)

// blindModels are a blind session's models; hiddenWords are what no
// payload may hold before the reveal: their ids, names and providers.
var (
	blindModels = []string{"openai/gpt-4o-mini", "openrouter/meta-llama/llama-3.1-8b-instruct", "demo/fast"}
	hiddenWords = []string{"openai", "gpt-4o-mini", "GPT-4o mini", "openrouter", "meta-llama", "llama-3.1", "Llama 3.1 8B", "demo/fast", "Demo fast", "demo"}
)

// noModelIn fails if body names any hidden word (case-insensitively).
func noModelIn(t *testing.T, what string, body []byte) {
	t.Helper()
	low := bytes.ToLower(body)
	for _, w := range hiddenWords {
		if bytes.Contains(low, []byte(strings.ToLower(w))) {
			t.Errorf("%s names %q before the reveal: %s", what, w, body)
		}
	}
}

func (e *restEnv) createBlind(u testUser, models ...string) *playground.Session {
	e.t.Helper()
	w := e.want(restReq{method: "POST", path: "/sessions", token: u.Token, body: map[string]any{"prompt": "Explain CRDTs", "models": models, "blind": true}}, http.StatusCreated, nil)
	noModelIn(e.t, "POST /sessions", w.Body.Bytes())
	var out struct {
		Session *playground.Session `json:"session"`
	}
	decodeBody(e.t, w, &out)
	return out.Session
}

func (e *restEnv) share(u testUser, id string) string {
	e.t.Helper()
	var sh struct {
		ShareToken string `json:"shareToken"`
	}
	decodeBody(e.t, e.do(restReq{method: "POST", path: "/sessions/" + id + "/share", token: u.Token}), &sh)
	return sh.ShareToken
}

func TestBlindSessionHidesModelsEverywhere(t *testing.T) {
	t.Parallel()
	eachUser(t, "blind@example.com", func(t *testing.T, e *restEnv, u testUser) {
		s := e.createBlind(u, blindModels...)
		if !s.Blind || s.Revealed || len(s.Responses) != 3 {
			t.Fatalf("created: %+v", s)
		}
		for i, r := range s.Responses {
			if r.Model != "" || r.Label != playground.Label(i) {
				t.Errorf("response %d: model %q label %q", i, r.Model, r.Label)
			}
		}
		e.finish(s.ID, "one answer", "another answer", "a third")
		if _, err := e.db.Sessions().FindSession(bg, s.ID); err != nil {
			t.Fatal(err)
		}
		a, b := s.Responses[0].ID, s.Responses[1].ID
		paths := []string{
			"/sessions/" + s.ID, "/sessions", "/sessions/" + s.ID + "/thread",
			"/sessions/" + s.ID + "/export?format=json", "/sessions/" + s.ID + "/export?format=md",
			"/sessions/" + s.ID + "/export?format=csv", "/sessions/" + s.ID + "/diff?a=" + a + "&b=" + b,
			"/stats/models",
		}
		for _, p := range paths {
			w := e.do(restReq{method: "GET", path: p, token: u.Token})
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", p, w.Code, w.Body)
			}
			noModelIn(t, "GET "+p, w.Body.Bytes())
		}
		w := e.do(restReq{method: "GET", path: "/sessions/" + s.ID, token: u.Token})
		if !bytes.Contains(w.Body.Bytes(), []byte(`"model":null`)) || !bytes.Contains(w.Body.Bytes(), []byte(`"costUsd":null`)) {
			t.Errorf("model and costUsd are not null: %s", w.Body)
		}
		csv := e.do(restReq{method: "GET", path: "/sessions/" + s.ID + "/export?format=csv", token: u.Token}).Body.String()
		if !strings.Contains(csv, "\nColumn A,complete") {
			t.Errorf("csv does not name columns by label: %s", csv)
		}
		rated := e.do(restReq{method: "PUT", path: "/sessions/" + s.ID + "/responses/" + a + "/rating", token: u.Token, body: map[string]int{"score": 1}})
		if rated.Code != http.StatusOK {
			t.Fatalf("rate: %d %s", rated.Code, rated.Body)
		}
		noModelIn(t, "PUT rating", rated.Body.Bytes())

		// No follow-up and no rerun before the reveal.
		wantError(t, e.do(restReq{method: "POST", path: "/sessions/" + s.ID + "/followup", token: u.Token, body: map[string]any{"prompt": "more"}}), http.StatusConflict, playground.EConflict)
		wantError(t, e.do(restReq{method: "POST", path: "/sessions/" + s.ID + "/rerun", token: u.Token, body: map[string]any{"models": []string{"demo/fast"}}}), http.StatusConflict, playground.EConflict)

		// The reveal shows everything.
		w = e.do(restReq{method: "POST", path: "/sessions/" + s.ID + "/reveal", token: u.Token})
		var out struct {
			Session *playground.Session `json:"session"`
		}
		decodeBody(t, w, &out)
		if w.Code != http.StatusOK || !out.Session.Revealed {
			t.Fatalf("reveal: %d %s", w.Code, w.Body)
		}
		got := map[string]bool{}
		for _, r := range out.Session.Responses {
			got[r.Model] = true
			if r.Metrics == nil || r.Metrics.CostUSD == nil {
				t.Errorf("revealed response without cost: %+v", r)
			}
		}
		for _, m := range blindModels {
			if !got[m] {
				t.Errorf("revealed session lacks %s: %s", m, w.Body)
			}
		}
		// Revealing twice changes nothing; the follow-up is open.
		if w := e.do(restReq{method: "POST", path: "/sessions/" + s.ID + "/reveal", token: u.Token}); w.Code != http.StatusOK {
			t.Errorf("second reveal: %d %s", w.Code, w.Body)
		}
		if w := e.do(restReq{method: "POST", path: "/sessions/" + s.ID + "/followup", token: u.Token, body: map[string]any{"prompt": "more", "models": []string{s.Responses[1].ID}}}); w.Code != http.StatusCreated {
			t.Errorf("follow-up after the reveal: %d %s", w.Code, w.Body)
		}
	})
}

func TestBlindRequestRules(t *testing.T) {
	t.Parallel()
	eachUser(t, "rules@example.com", func(t *testing.T, e *restEnv, u testUser) {
		before := e.remaining(u)
		w := e.do(restReq{method: "POST", path: "/sessions", token: u.Token, body: map[string]any{"prompt": "x", "models": []string{"demo/fast"}, "blind": true}})
		wantField(t, w, "models")
		w = e.do(restReq{method: "POST", path: "/sessions/estimate", token: u.Token, body: map[string]any{"prompt": "x", "models": []string{"demo/fast", "openai/gpt-4o-mini"}, "blind": true}})
		if w.Code != http.StatusOK {
			t.Errorf("estimate with blind: %d %s", w.Code, w.Body)
		}
		if got := e.remaining(u); got != before {
			t.Errorf("quota %d after refused requests, want %d", got, before)
		}
	})
}

func TestBlindShuffleMovesTheFirstModel(t *testing.T) {
	t.Parallel()
	eachUser(t, "shuffle@example.com", func(t *testing.T, e *restEnv, u testUser) {
		if _, err := e.db.Users().AddQuota(bg, u.ID, 100); err != nil {
			t.Fatal(err)
		}
		// Over 16 sessions of two models, the first model asked lands in
		// column A every time with probability 2^-16.
		seen := map[string]bool{}
		for range 16 {
			s := e.createBlind(u, "demo/fast", "openai/gpt-4o-mini")
			e.finish(s.ID)
			row, err := e.db.Sessions().FindSession(bg, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			seen[row.Responses[0].Model] = true
		}
		if len(seen) != 2 {
			t.Errorf("column A was always %v", seen)
		}
	})
}

func TestVotes(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *restEnv) {
		owner, viewer := e.register("owner@example.com"), e.register("viewer@example.com")
		if _, err := e.db.Users().AddQuota(bg, owner.ID, 20); err != nil {
			t.Fatal(err)
		}
		s := e.createBlind(owner, "demo/fast", "openai/gpt-4o-mini")
		tok := e.share(owner, s.ID)
		vote := func(token, share string, choice any) *httptest.ResponseRecorder {
			p := "/sessions/" + s.ID + "/vote"
			if share != "" {
				p += "?share=" + share
			}
			return e.do(restReq{method: "PUT", path: p, token: token, body: map[string]any{"choice": choice}})
		}
		// From the first chunk on, while the session runs.
		e.runner.setText(s.ID, s.Responses[0].ID, "First words")
		w := vote(owner.Token, "", s.Responses[0].ID)
		var got struct {
			Vote struct {
				Choice       string    `json:"choice"`
				At           time.Time `json:"at"`
				IdentityLeak bool      `json:"identityLeak"`
			} `json:"vote"`
		}
		decodeBody(t, w, &got)
		if w.Code != http.StatusOK || got.Vote.Choice != s.Responses[0].ID || got.Vote.At.IsZero() || got.Vote.IdentityLeak {
			t.Fatalf("owner's vote: %d %s", w.Code, w.Body)
		}
		// A shared session waits for the reveal.
		if row, _ := e.db.Sessions().FindSession(bg, s.ID); row.Revealed {
			t.Fatal("a shared session was revealed by the owner's vote")
		}
		if w := vote(viewer.Token, tok, playground.ChoiceTie); w.Code != http.StatusOK {
			t.Fatalf("signed-in viewer: %d %s", w.Code, w.Body)
		}
		// A second vote replaces the first.
		if w := vote(viewer.Token, tok, playground.ChoiceAllBad); w.Code != http.StatusOK {
			t.Fatalf("revote: %d %s", w.Code, w.Body)
		}
		// Everyone sees how many voted, not for what.
		for _, w := range []*httptest.ResponseRecorder{
			e.do(restReq{method: "GET", path: "/sessions/" + s.ID + "?share=" + tok}),
			e.do(restReq{method: "GET", path: "/sessions", token: owner.Token}),
		} {
			if !strings.Contains(w.Body.String(), `"votes":2`) {
				t.Errorf("vote count missing: %s", w.Body)
			}
		}
		wantError(t, vote("", tok, playground.ChoiceTie), http.StatusUnauthorized, playground.EUnauthorized)
		wantError(t, vote(viewer.Token, "", playground.ChoiceTie), http.StatusNotFound, playground.ENotFound)
		wantField(t, vote(owner.Token, "", "r_not-of-this-session"), "choice")
		wantField(t, vote(owner.Token, "", "best"), "choice")
		wantField(t, vote(owner.Token, "", 3), "choice")

		tally, err := e.db.Votes().Tally(bg, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if tally[s.Responses[0].ID] != 1 || tally[playground.ChoiceAllBad] != 1 || tally[playground.ChoiceTie] != 0 {
			t.Errorf("tally %v", tally)
		}
		// Only the owner reveals.
		wantError(t, e.do(restReq{method: "POST", path: "/sessions/" + s.ID + "/reveal?share=" + tok, token: viewer.Token}), http.StatusForbidden, playground.EForbidden)
		if w := e.do(restReq{method: "POST", path: "/sessions/" + s.ID + "/reveal", token: owner.Token}); w.Code != http.StatusOK {
			t.Fatalf("reveal: %d %s", w.Code, w.Body)
		}
		wantError(t, vote(viewer.Token, tok, playground.ChoiceTie), http.StatusConflict, playground.EConflict)
		wantError(t, vote(owner.Token, "", playground.ChoiceTie), http.StatusConflict, playground.EConflict)

		// Not blind: 400 on choice.
		plain := e.createSession(owner, "demo/fast", "openai/gpt-4o-mini")
		w = e.do(restReq{method: "PUT", path: "/sessions/" + plain.ID + "/vote", token: owner.Token, body: map[string]any{"choice": "tie"}})
		wantField(t, w, "choice")

		// A session not shared is revealed by its owner's vote at once.
		solo := e.createBlind(owner, "demo/fast", "openai/gpt-4o-mini")
		if w := e.do(restReq{method: "PUT", path: "/sessions/" + solo.ID + "/vote", token: owner.Token, body: map[string]any{"choice": "tie"}}); w.Code != http.StatusOK {
			t.Fatalf("solo vote: %d %s", w.Code, w.Body)
		}
		if row, _ := e.db.Sessions().FindSession(bg, solo.ID); !row.Revealed {
			t.Error("a session not shared was not revealed by its owner's vote")
		}
	})
}

func TestIdentityLeakIsFlaggedOnTheVote(t *testing.T) {
	t.Parallel()
	eachUser(t, "leak@example.com", func(t *testing.T, e *restEnv, u testUser) {
		s := e.createBlind(u, "demo/fast", "openai/gpt-4o-mini")
		e.finish(s.ID, "CRDTs merge.", "As an AI made by OpenAI, I can say CRDTs merge.")
		w := e.do(restReq{method: "PUT", path: "/sessions/" + s.ID + "/vote", token: u.Token, body: map[string]any{"choice": s.Responses[0].ID}})
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"identityLeak":true`) {
			t.Fatalf("vote on a leaking session: %d %s", w.Code, w.Body)
		}
	})
}

// leaderboard polls GET /leaderboard until it has been computed since
// after, as a client would; the first request starts the computation.
func (e *restEnv) leaderboard(u testUser, query string, after time.Time) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out map[string]any
		w := e.want(restReq{method: "GET", path: "/leaderboard?" + query, token: u.Token}, http.StatusOK, &out)
		if at, ok := out["updatedAt"].(string); ok {
			if ts, err := time.Parse(time.RFC3339Nano, at); err == nil && !ts.Before(after) {
				return out
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("leaderboard never computed: %s", w.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLeaderboardCountsRevealedVotes(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *restEnv) {
		alice, bob := e.register("alice@example.com"), e.register("bob@example.com")
		for _, u := range []testUser{alice, bob} {
			if _, err := e.db.Users().AddQuota(bg, u.ID, 50); err != nil {
				t.Fatal(err)
			}
		}
		wantField(t, e.do(restReq{method: "GET", path: "/leaderboard?scope=everyone", token: alice.Token}), "scope")
		wantError(t, e.do(restReq{method: "GET", path: "/leaderboard?scope=all"}), http.StatusUnauthorized, playground.EUnauthorized)
		start := time.Now().Add(-time.Second)
		empty := e.leaderboard(alice, "scope=all", start)
		if ms := empty["models"].([]any); len(ms) != 0 || empty["votes"].(float64) != 0 {
			t.Fatalf("empty board: %v", empty)
		}

		// Alice votes gpt over fast three times; Bob once a tie, and once
		// for fast in a session whose other answer leaks its maker.
		vote := func(u testUser, texts []string, pick func(s *playground.Session) string) {
			s := e.createBlind(u, "demo/fast", "openai/gpt-4o-mini")
			e.finish(s.ID, texts...)
			row, err := e.db.Sessions().FindSession(bg, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			e.want(restReq{method: "PUT", path: "/sessions/" + s.ID + "/vote", token: u.Token, body: map[string]any{"choice": pick(row)}}, http.StatusOK, nil)
		}
		byModel := func(m string) func(s *playground.Session) string {
			return func(s *playground.Session) string {
				for _, r := range s.Responses {
					if r.Model == m {
						return r.ID
					}
				}
				return ""
			}
		}
		for range 3 {
			vote(alice, []string{"one", "two"}, byModel("openai/gpt-4o-mini"))
		}
		vote(bob, []string{"one", "two"}, func(*playground.Session) string { return playground.ChoiceTie })
		vote(bob, []string{"I am GPT-4o mini.", "CRDTs merge."}, byModel("demo/fast"))
		// A hidden session's vote does not count until its reveal.
		hidden := e.createBlind(bob, "demo/fast", "openai/gpt-4o-mini")
		e.share(bob, hidden.ID)
		e.finish(hidden.ID, "a", "b")
		e.do(restReq{method: "PUT", path: "/sessions/" + hidden.ID + "/vote", token: bob.Token, body: map[string]any{"choice": "tie"}})

		// The board computed before the votes is served until it is a
		// minute old: move the clock on.
		e.srv.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
		after := time.Now().Add(time.Minute)
		all := e.leaderboard(alice, "scope=all", after)
		if all["votes"].(float64) != 4 {
			t.Errorf("all: votes %v, want 4 (the leaking vote left out): %v", all["votes"], all)
		}
		ms := all["models"].([]any)
		if len(ms) != 2 || ms[0].(map[string]any)["model"] != "openai/gpt-4o-mini" {
			t.Fatalf("all: %v", all)
		}
		top := ms[0].(map[string]any)
		if top["wins"].(float64) != 3 || top["ties"].(float64) != 1 || top["losses"].(float64) != 0 || top["battles"].(float64) != 4 {
			t.Errorf("top: %v", top)
		}
		var sum float64
		for _, m := range ms {
			mm := m.(map[string]any)
			r := mm["rating"].(float64)
			ci := mm["ci95"].([]any)
			if ci[0].(float64) > r || ci[1].(float64) < r {
				t.Errorf("%v: interval does not hold the rating", mm)
			}
			sum += r
		}
		if sum/2 < 999.999 || sum/2 > 1000.001 {
			t.Errorf("mean rating %v, want 1000", sum/2)
		}
		with := e.leaderboard(alice, "scope=all&leaks=include", after)
		if with["votes"].(float64) != 5 {
			t.Errorf("leaks=include: votes %v, want 5", with["votes"])
		}
		mine := e.leaderboard(bob, "scope=me", after)
		if mine["votes"].(float64) != 1 {
			t.Errorf("bob's board: votes %v, want 1 (his tie)", mine["votes"])
		}
	})
}
