package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/playground-dev/playground"
)

func TestModels(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *restEnv) {
		w := e.do(restReq{method: "GET", path: "/models"})
		var out struct {
			Models []map[string]any `json:"models"`
		}
		decodeBody(t, w, &out)
		if w.Code != http.StatusOK || len(out.Models) != 4 {
			t.Fatalf("models: %d %s", w.Code, w.Body)
		}
		m := out.Models[0]
		for _, k := range []string{"id", "provider", "name", "available", "unavailableReason", "pricing"} {
			if _, ok := m[k]; !ok {
				t.Errorf("model lacks %q: %v", k, m)
			}
		}
	})
}

func TestCreateSession(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, u testUser) {
		body := map[string]any{
			"prompt": "Explain CRDTs in two sentences",
			"models": []string{"openai/gpt-4o-mini", "openrouter/meta-llama/llama-3.1-8b-instruct"},
			"system": "Be brief.",
			"params": map[string]any{"temperature": 0.7, "maxTokens": 512, "topP": 1},
		}
		var raw struct {
			Session map[string]any `json:"session"`
		}
		w := e.want(restReq{method: "POST", path: "/sessions", token: u.Token, body: body}, http.StatusCreated, &raw)
		s := raw.Session
		if !strings.HasPrefix(s["id"].(string), "s_") || s["status"] != "running" || s["shared"] != false || s["parentId"] != nil || s["system"] != "Be brief." {
			t.Errorf("session = %v", s)
		}
		if _, ok := s["userId"]; ok {
			t.Error("internal fields leaked")
		}
		params := s["params"].(map[string]any)
		if params["temperature"] != 0.7 || params["maxTokens"] != float64(512) || params["topP"] != float64(1) {
			t.Errorf("params = %v", params)
		}
		rs := s["responses"].([]any)
		if len(rs) != 2 {
			t.Fatalf("responses = %v", rs)
		}
		for i, model := range body["models"].([]string) {
			r := rs[i].(map[string]any)
			if r["model"] != model || r["status"] != "pending" || r["text"] != "" || r["error"] != nil || r["metrics"] != nil || r["rating"] != float64(0) ||
				!strings.HasPrefix(r["id"].(string), "r_") {
				t.Errorf("response %d = %v", i, r)
			}
		}
		if _, ok := e.runner.Live(s["id"].(string)); !ok {
			t.Error("runner not started")
		}
		// Charged: 5 - 2.
		e.wantRemaining(u, 3, "after a session of two models")

		// No params: every setting null (the provider's default); an empty
		// system prompt is null.
		w = e.do(restReq{method: "POST", path: "/sessions", token: u.Token, body: map[string]any{"prompt": "x", "system": "", "models": []string{"demo/fast"}}})
		unset := `"params":{"temperature":null,"maxTokens":null,"topP":null,"reasoningEffort":null}`
		if w.Code != http.StatusCreated || !strings.Contains(w.Body.String(), unset) || !strings.Contains(w.Body.String(), `"system":null`) {
			t.Errorf("defaults: %d %s", w.Code, w.Body)
		}
	})
}

func TestCreateSessionErrors(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, u testUser) {
		post := func(body any) *httptest.ResponseRecorder {
			return e.do(restReq{method: "POST", path: "/sessions", token: u.Token, body: body})
		}
		d := wantError(t, post(map[string]any{"prompt": "x", "models": []string{"demo/fast", "nope/model"}}), http.StatusBadRequest, playground.EUnknownModel)
		if d["model"] != "nope/model" {
			t.Errorf("details = %v", d)
		}
		d = wantError(t, post(map[string]any{"prompt": "x", "models": []string{"anthropic/claude-3-5-haiku"}}), http.StatusBadRequest, playground.EModelUnavailable)
		if d["model"] != "anthropic/claude-3-5-haiku" {
			t.Errorf("details = %v", d)
		}
		// Fields are checked before models.
		wantField(t, post(map[string]any{"prompt": "", "models": []string{"nope/model"}}), "prompt")
		// Nothing was charged by the refusals.
		w := post(map[string]any{"prompt": "x", "models": []string{"demo/fast", "openai/gpt-4o-mini", "openrouter/meta-llama/llama-3.1-8b-instruct"}})
		if w.Code != http.StatusCreated {
			t.Fatalf("create: %d %s", w.Code, w.Body)
		}
		// 2 left; 3 asked: 402 with details, nothing started.
		started := len(e.runner.live)
		d = wantError(t, (post(map[string]any{"prompt": "x", "models": []string{"demo/fast", "openai/gpt-4o-mini", "openrouter/meta-llama/llama-3.1-8b-instruct"}})), http.StatusPaymentRequired, playground.EQuotaExceeded)
		if d["remaining"] != float64(2) || d["required"] != float64(3) || d["resetsAt"] == nil {
			t.Errorf("402 details = %v", d)
		}
		if len(e.runner.live) != started {
			t.Error("a session started despite 402")
		}
		// A runner that cannot start: 503, and the quota is given back.
		e.runner.failStart = true
		wantError(t, (post(map[string]any{"prompt": "x", "models": []string{"demo/fast"}})), http.StatusServiceUnavailable, playground.EUnavailable)
		e.runner.failStart = false
		e.wantRemaining(u, 2, "after a start that failed")
	})
}

func TestGetSessionVisibility(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, a testUser) {
		b := e.register("b@example.com")
		s := e.createSession(a, "demo/fast")
		path := "/sessions/" + s.ID

		// The owner sees the text so far (from the live copy).
		e.runner.setText(s.ID, s.Responses[0].ID, "Hello so far")
		w := e.do(restReq{method: "GET", path: path, token: a.Token})
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Hello so far") {
			t.Fatalf("owner: %d %s", w.Code, w.Body)
		}
		wantError(t, e.do(restReq{method: "GET", path: path}), http.StatusUnauthorized, playground.EUnauthorized)
		wantError(t, e.do(restReq{method: "GET", path: path, token: b.Token}), http.StatusNotFound, playground.ENotFound)
		wantError(t, e.do(restReq{method: "GET", path: "/sessions/s_nope", token: a.Token}), http.StatusNotFound, playground.ENotFound)
		wantError(t, e.do(restReq{method: "GET", path: path + "?share=guess"}), http.StatusNotFound, playground.ENotFound)

		// Shared: anyone with the token, without an account or with another one.
		var sh struct {
			ShareToken string `json:"shareToken"`
		}
		w = e.do(restReq{method: "POST", path: path + "/share", token: a.Token})
		decodeBody(t, w, &sh)
		if w.Code != http.StatusOK || len(sh.ShareToken) < 22 {
			t.Fatalf("share: %d %s", w.Code, w.Body)
		}
		w = e.do(restReq{method: "POST", path: path + "/share", token: a.Token})
		if !strings.Contains(w.Body.String(), sh.ShareToken) {
			t.Errorf("asked again: a new token %s", w.Body)
		}
		for _, r := range []restReq{{}, {token: b.Token}, {token: "expired-garbage"}} {
			r.method, r.path = "GET", path+"?share="+sh.ShareToken
			w := e.do(r)
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"shared":true`) {
				t.Errorf("share holder %q: %d %s", r.token, w.Code, w.Body)
			}
		}
		w = e.do(restReq{method: "GET", path: "/share/" + sh.ShareToken})
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), s.ID) || !strings.Contains(w.Body.String(), "Hello so far") {
			t.Errorf("GET /share: %d %s", w.Code, w.Body)
		}
		// Share holders only watch.
		wantError(t, e.do(restReq{method: "POST", path: path + "/cancel?share=" + sh.ShareToken}), http.StatusForbidden, playground.EForbidden)
		wantError(t, e.do(restReq{method: "POST", path: path + "/cancel?share=" + sh.ShareToken, token: b.Token}), http.StatusForbidden, playground.EForbidden)
		wantError(t, e.do(restReq{method: "DELETE", path: path + "/share?share=" + sh.ShareToken}), http.StatusForbidden, playground.EForbidden)

		// Unshare: 204, the token is dead and its viewers are cut off.
		if w := e.do(restReq{method: "DELETE", path: path + "/share", token: a.Token}); w.Code != http.StatusNoContent {
			t.Fatalf("unshare: %d %s", w.Code, w.Body)
		}
		if len(e.runner.unshares) != 1 || e.runner.unshares[0] != s.ID+"/"+sh.ShareToken {
			t.Errorf("Runner.Unshare calls = %v", e.runner.unshares)
		}
		wantError(t, e.do(restReq{method: "GET", path: path + "?share=" + sh.ShareToken}), http.StatusNotFound, playground.ENotFound)
		wantError(t, e.do(restReq{method: "GET", path: "/share/" + sh.ShareToken}), http.StatusNotFound, playground.ENotFound)
		if w := e.do(restReq{method: "DELETE", path: path + "/share", token: a.Token}); w.Code != http.StatusNoContent {
			t.Errorf("unshare again: %d", w.Code)
		}
		// Another user's session: 404 for share and cancel too.
		wantError(t, e.do(restReq{method: "POST", path: path + "/share", token: b.Token}), http.StatusNotFound, playground.ENotFound)
		wantError(t, e.do(restReq{method: "POST", path: path + "/cancel", token: b.Token}), http.StatusNotFound, playground.ENotFound)
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, a testUser) {
		s := e.createSession(a, "demo/fast", "openai/gpt-4o-mini")
		path := "/sessions/" + s.ID
		w := e.do(restReq{method: "POST", path: path + "/responses/" + s.Responses[1].ID + "/cancel", token: a.Token})
		if w.Code != http.StatusAccepted || w.Body.Len() != 0 {
			t.Fatalf("cancel response: %d %q", w.Code, w.Body)
		}
		wantError(t, e.do(restReq{method: "POST", path: path + "/responses/r_nope/cancel", token: a.Token}), http.StatusNotFound, playground.ENotFound)
		if w := e.do(restReq{method: "POST", path: path + "/cancel", token: a.Token}); w.Code != http.StatusAccepted || w.Body.Len() != 0 {
			t.Fatalf("cancel: %d %q", w.Code, w.Body)
		}
		want := []string{s.ID + "/" + s.Responses[1].ID, s.ID + "/"}
		if strings.Join(e.runner.cancels, ",") != strings.Join(want, ",") {
			t.Errorf("cancels = %v, want %v", e.runner.cancels, want)
		}
		// An ended session: 202, nothing changes.
		e.finish(s.ID, "a", "b")
		if w := e.do(restReq{method: "POST", path: path + "/cancel", token: a.Token}); w.Code != http.StatusAccepted {
			t.Errorf("cancel ended: %d", w.Code)
		}
		if len(e.runner.cancels) != 2 {
			t.Errorf("an ended session was cancelled again: %v", e.runner.cancels)
		}
	})
}

func TestListSessions(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, a testUser) {
		b := e.register("b@example.com")
		var ids []string
		for i := 0; i < 3; i++ {
			s := e.createSession(a, "demo/fast")
			ids = append(ids, s.ID)
		}
		e.finish(ids[0], "some text")
		e.createSession(b, "demo/fast")

		type page struct {
			Sessions   []map[string]any `json:"sessions"`
			NextCursor *string          `json:"nextCursor"`
		}
		var p1, p2 page
		w := e.do(restReq{method: "GET", path: "/sessions?limit=2", token: a.Token})
		decodeBody(t, w, &p1)
		if w.Code != http.StatusOK || len(p1.Sessions) != 2 || p1.NextCursor == nil {
			t.Fatalf("page 1: %d %s", w.Code, w.Body)
		}
		if p1.Sessions[0]["id"] != ids[2] || p1.Sessions[1]["id"] != ids[1] {
			t.Errorf("not newest first: %s", w.Body)
		}
		w = e.do(restReq{method: "GET", path: "/sessions?limit=2&cursor=" + *p1.NextCursor, token: a.Token})
		decodeBody(t, w, &p2)
		if len(p2.Sessions) != 1 || p2.Sessions[0]["id"] != ids[0] || p2.NextCursor != nil || !strings.Contains(w.Body.String(), `"nextCursor":null`) {
			t.Fatalf("page 2: %s", w.Body)
		}
		// List items omit text.
		r := p2.Sessions[0]["responses"].([]any)[0].(map[string]any)
		if _, ok := r["text"]; ok || r["status"] != "complete" || r["metrics"] == nil {
			t.Errorf("list item response = %v", r)
		}
		for _, bad := range []string{"0", "101", "x", "-1", ""} {
			wantField(t, e.do(restReq{method: "GET", path: "/sessions?limit=" + bad, token: a.Token}), "limit")
		}
		var all page
		decodeBody(t, e.do(restReq{method: "GET", path: "/sessions", token: a.Token}), &all)
		if len(all.Sessions) != 3 {
			t.Errorf("default page holds %d", len(all.Sessions))
		}
		wantError(t, e.do(restReq{method: "GET", path: "/sessions"}), http.StatusUnauthorized, playground.EUnauthorized)
	})
}
