package api

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/playground-dev/playground"
)

func TestEstimate(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, u testUser) {
		prompt := strings.Repeat("a", 400) // 100 tokens by the 4-characters rule
		body := map[string]any{"prompt": prompt, "models": []string{"openai/gpt-4o-mini", "demo/fast"}, "params": map[string]any{"maxTokens": 1000}}
		var out struct {
			QuotaRequired  int `json:"quotaRequired"`
			QuotaRemaining int `json:"quotaRemaining"`
			Models         []struct {
				Model            string   `json:"model"`
				EstimatedCostUSD *float64 `json:"estimatedCostUsd"`
			} `json:"models"`
		}
		w := e.want(restReq{method: "POST", path: "/sessions/estimate", token: u.Token, body: body}, http.StatusOK, &out)
		if out.QuotaRequired != 2 || out.QuotaRemaining != 5 || len(out.Models) != 2 {
			t.Fatalf("estimate = %s", w.Body)
		}
		// At least the cost of 100 prompt and 1000 completion tokens.
		known := (100*0.15 + 1000*0.60) / 1e6
		if c := out.Models[0].EstimatedCostUSD; out.Models[0].Model != "openai/gpt-4o-mini" || c == nil || *c < known || *c > known*1.1 {
			t.Errorf("gpt-4o-mini estimate = %v, want ≥ %v", c, known)
		}
		if out.Models[1].EstimatedCostUSD != nil || !strings.Contains(w.Body.String(), `"estimatedCostUsd":null`) {
			t.Errorf("no pricing must be null: %s", w.Body)
		}
		// Charges nothing.
		for i := 0; i < 10; i++ {
			e.do(restReq{method: "POST", path: "/sessions/estimate", token: u.Token, body: body})
		}
		remaining := e.remaining(u)
		if remaining != 5 || len(e.runner.live) != 0 {
			t.Errorf("estimate charged or started: remaining %d, live %d", remaining, len(e.runner.live))
		}
		// Same checks as create.
		wantError(t, e.do(restReq{method: "POST", path: "/sessions/estimate", token: u.Token, body: map[string]any{"prompt": "x", "models": []string{"x/y"}}}), http.StatusBadRequest, playground.EUnknownModel)
		wantField(t, e.do(restReq{method: "POST", path: "/sessions/estimate", token: u.Token, body: map[string]any{"prompt": "x", "models": []string{"demo/fast"}, "params": map[string]any{"topP": 2}}}), "params.topP")
		wantError(t, e.do(restReq{method: "POST", path: "/sessions/estimate", body: body}), http.StatusUnauthorized, playground.EUnauthorized)
	})
}

func TestEstimateTokensDefault(t *testing.T) {
	t.Parallel()
	sys := "abcde" // 5 characters
	p, c := estimateTokens("abc", playground.Column{System: &sys})
	// ceil(8/4) + 2 messages × 4.
	if p != 2+2*tokensPerMessage || c != defaultCompletionTokens {
		t.Errorf("estimate = %d, %d", p, c)
	}
	// A thread adds its prompts and answers, two messages a turn.
	max := 10
	p, c = estimateTokens("abc", playground.Column{System: &sys, Params: playground.Params{MaxTokens: &max},
		History: []playground.Exchange{{Prompt: "12345678", Answer: "1234"}}})
	// ceil(20/4) + 4 messages × 4.
	if p != 5+4*tokensPerMessage || c != 10 {
		t.Errorf("estimate with a thread = %d, %d", p, c)
	}
}

func TestRerun(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, a testUser) {
		b := e.register("b@example.com")
		w := e.do(restReq{method: "POST", path: "/sessions", token: a.Token, body: map[string]any{
			"prompt": "Explain CRDTs", "system": "Be brief.", "models": []string{"demo/fast"}, "params": map[string]any{"temperature": 0.3}}})
		var created struct {
			Session *playground.Session `json:"session"`
		}
		decodeBody(t, w, &created)
		parent := created.Session
		path := "/sessions/" + parent.ID + "/rerun"

		var out struct {
			Session *playground.Session `json:"session"`
		}
		w = e.want(restReq{method: "POST", path: path, token: a.Token, body: map[string]any{"models": []string{"openai/gpt-4o-mini", "demo/fast"}}}, http.StatusCreated, &out)
		s := out.Session
		if s.ID == parent.ID || s.ParentID == nil || *s.ParentID != parent.ID || s.Prompt != "Explain CRDTs" || s.System == nil || *s.System != "Be brief." ||
			s.Params.Temperature == nil || *s.Params.Temperature != 0.3 || len(s.Responses) != 2 || s.Responses[0].Model != "openai/gpt-4o-mini" {
			t.Errorf("rerun session = %s", w.Body)
		}
		// Params from the body replace the parent's.
		w = e.do(restReq{method: "POST", path: path, token: a.Token, body: map[string]any{"models": []string{"demo/fast"}, "params": map[string]any{"maxTokens": 10}}})
		out.Session = nil
		decodeBody(t, w, &out)
		if w.Code != http.StatusCreated || out.Session.Params.Temperature != nil || *out.Session.Params.MaxTokens != 10 {
			t.Errorf("rerun params: %s", w.Body)
		}
		// Quota: 5 - 1 - 2 - 1 = 1 left; 2 models is a 402.
		d := wantError(t, e.do(restReq{method: "POST", path: path, token: a.Token, body: map[string]any{"models": []string{"openai/gpt-4o-mini", "demo/fast"}}}), http.StatusPaymentRequired, playground.EQuotaExceeded)
		if d["required"] != float64(2) {
			t.Errorf("402 details = %v", d)
		}
		wantError(t, e.do(restReq{method: "POST", path: path, token: b.Token, body: map[string]any{"models": []string{"demo/fast"}}}), http.StatusNotFound, playground.ENotFound)
		wantField(t, e.do(restReq{method: "POST", path: path, token: a.Token, body: map[string]any{"models": []string{}}}), "models")
		wantField(t, e.do(restReq{method: "POST", path: path, token: a.Token, body: map[string]any{"models": []string{"demo/fast"}, "prompt": "x"}}), "prompt")
		wantError(t, e.do(restReq{method: "POST", path: path, token: a.Token, body: map[string]any{"models": []string{"x/y"}}}), http.StatusBadRequest, playground.EUnknownModel)
		wantError(t, e.do(restReq{method: "POST", path: path, body: map[string]any{"models": []string{"demo/fast"}}}), http.StatusUnauthorized, playground.EUnauthorized)
	})
}

func TestRating(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, a testUser) {
		b := e.register("b@example.com")
		s := e.createSession(a, "demo/fast", "openai/gpt-4o-mini")
		path := "/sessions/" + s.ID + "/responses/" + s.Responses[0].ID + "/rating"
		// Still running: 400.
		wantError(t, e.do(restReq{method: "PUT", path: path, token: a.Token, body: map[string]int{"score": 1}}), http.StatusBadRequest, playground.EInvalid)
		e.finish(s.ID, "first", "second")
		var out struct {
			Response playground.Response `json:"response"`
		}
		w := e.want(restReq{method: "PUT", path: path, token: a.Token, body: map[string]int{"score": 1}}, http.StatusOK, &out)
		if out.Response.Rating != 1 || out.Response.Text != "first" || out.Response.ID != s.Responses[0].ID {
			t.Errorf("rating answer %s", w.Body)
		}
		w = e.do(restReq{method: "GET", path: "/sessions/" + s.ID, token: a.Token})
		if !strings.Contains(w.Body.String(), `"rating":1`) {
			t.Errorf("rating not shown: %s", w.Body)
		}
		for _, bad := range []string{`{"score": 2}`, `{"score": -2}`, `{}`, `{"score": "1"}`, `{"score": 0.5}`} {
			wantField(t, e.do(restReq{method: "PUT", path: path, token: a.Token, body: bad}), "score")
		}
		wantError(t, e.do(restReq{method: "PUT", path: path, token: b.Token, body: map[string]int{"score": 1}}), http.StatusNotFound, playground.ENotFound)
		wantError(t, e.do(restReq{method: "PUT", path: "/sessions/" + s.ID + "/responses/r_nope/rating", token: a.Token, body: map[string]int{"score": 1}}), http.StatusNotFound, playground.ENotFound)
		// A share holder: 403.
		var sh struct {
			ShareToken string `json:"shareToken"`
		}
		decodeBody(t, e.do(restReq{method: "POST", path: "/sessions/" + s.ID + "/share", token: a.Token}), &sh)
		wantError(t, e.do(restReq{method: "PUT", path: path + "?share=" + sh.ShareToken, body: map[string]int{"score": -1}}), http.StatusForbidden, playground.EForbidden)
		wantError(t, e.do(restReq{method: "PUT", path: path + "?share=" + sh.ShareToken, token: b.Token, body: map[string]int{"score": -1}}), http.StatusForbidden, playground.EForbidden)

		// Stats count it as a win.
		w = e.do(restReq{method: "GET", path: "/stats/models", token: a.Token})
		var st struct {
			Models []playground.ModelStats `json:"models"`
		}
		decodeBody(t, w, &st)
		if w.Code != http.StatusOK || len(st.Models) != 2 {
			t.Fatalf("stats: %d %s", w.Code, w.Body)
		}
		wins := 0
		for _, m := range st.Models {
			wins += m.Wins
		}
		if wins != 1 {
			t.Errorf("wins = %d: %s", wins, w.Body)
		}
		w = e.do(restReq{method: "GET", path: "/stats/models", token: b.Token})
		if w.Code != http.StatusOK || w.Body.String() != "{\"models\":[]}\n" {
			t.Errorf("stats of b: %s", w.Body)
		}
	})
}

func TestExport(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, a testUser) {
		b := e.register("b@example.com")
		s := e.createSession(a, "demo/fast", "openai/gpt-4o-mini")
		tricky := "line one\nline \"two\", with comma\r\nüñî 日本語 🎉"
		e.finish(s.ID, tricky, "")
		base := "/sessions/" + s.ID + "/export"

		// CSV: RFC 4180, round trip through encoding/csv.
		w := e.do(restReq{method: "GET", path: base + "?format=csv", token: a.Token})
		if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv") {
			t.Fatalf("csv: %d %v", w.Code, w.Header())
		}
		if cd := w.Header().Get("Content-Disposition"); cd != `attachment; filename="playground-`+s.ID+`.csv"` {
			t.Errorf("Content-Disposition = %q", cd)
		}
		rows, err := csv.NewReader(bytes.NewReader(w.Body.Bytes())).ReadAll()
		if err != nil {
			t.Fatalf("csv: %v\n%s", err, w.Body)
		}
		if len(rows) != 3 || !reflect.DeepEqual(rows[0], csvHeader) {
			t.Fatalf("rows = %q", rows)
		}
		// encoding/csv reads \r\n inside a quoted field as \n.
		wantText := strings.ReplaceAll(tricky, "\r\n", "\n")
		if got := rows[1]; got[0] != "demo/fast" || got[1] != "complete" || got[2] != "100" || got[3] != "2000" || got[4] != "14" ||
			got[5] != "96" || got[6] != "0.0000597" || got[7] != "stop" || got[8] != wantText {
			t.Errorf("row 1 = %q", got)
		}

		// Null metrics are empty cells.
		s2 := e.createSession(a, "demo/fast")
		w = e.do(restReq{method: "GET", path: "/sessions/" + s2.ID + "/export?format=csv", token: a.Token})
		rows, _ = csv.NewReader(bytes.NewReader(w.Body.Bytes())).ReadAll()
		if len(rows) != 2 || rows[1][1] != "pending" || strings.Join(rows[1][2:8], "") != "" {
			t.Errorf("pending row = %q", rows)
		}

		// JSON: the Session itself.
		w = e.do(restReq{method: "GET", path: base + "?format=json", token: a.Token})
		var got playground.Session
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.ID != s.ID || got.Responses[0].Text != tricky {
			t.Errorf("json export: %v %s", err, w.Body)
		}
		if cd := w.Header().Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.HasSuffix(cd, `.json"`) {
			t.Errorf("Content-Disposition = %q", cd)
		}

		// Markdown: a heading per model with its text and metrics.
		w = e.do(restReq{method: "GET", path: base + "?format=md", token: a.Token})
		md := w.Body.String()
		for _, want := range []string{"Explain CRDTs", "## demo/fast", "## openai/gpt-4o-mini", "Finish reason: stop", "日本語"} {
			if !strings.Contains(md, want) {
				t.Errorf("markdown lacks %q:\n%s", want, md)
			}
		}

		// Share holders may export; others may not see it; bad format is 400.
		var sh struct {
			ShareToken string `json:"shareToken"`
		}
		decodeBody(t, e.do(restReq{method: "POST", path: "/sessions/" + s.ID + "/share", token: a.Token}), &sh)
		if w := e.do(restReq{method: "GET", path: base + "?format=md&share=" + sh.ShareToken}); w.Code != http.StatusOK {
			t.Errorf("share holder export: %d", w.Code)
		}
		wantError(t, e.do(restReq{method: "GET", path: base + "?format=csv", token: b.Token}), http.StatusNotFound, playground.ENotFound)
		wantField(t, e.do(restReq{method: "GET", path: base + "?format=xml", token: a.Token}), "format")
		wantError(t, e.do(restReq{method: "GET", path: base + "?format=csv"}), http.StatusUnauthorized, playground.EUnauthorized)
	})
}

func TestDiffEndpoint(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, a testUser) {
		b := e.register("b@example.com")
		s := e.createSession(a, "demo/fast", "openai/gpt-4o-mini")
		e.finish(s.ID, "the quick brown fox", "the slow brown dog")
		ra, rb := s.Responses[0].ID, s.Responses[1].ID
		var out struct {
			A, B string
			Ops  []diffOp `json:"ops"`
		}
		w := e.want(restReq{method: "GET", path: "/sessions/" + s.ID + "/diff?a=" + ra + "&b=" + rb, token: a.Token}, http.StatusOK, &out)
		want := []diffOp{{"equal", "the "}, {"delete", "quick"}, {"insert", "slow"}, {"equal", " brown "}, {"delete", "fox"}, {"insert", "dog"}}
		if out.A != ra || out.B != rb || !reflect.DeepEqual(out.Ops, want) {
			t.Errorf("diff = %s", w.Body)
		}
		wantField(t, e.do(restReq{method: "GET", path: "/sessions/" + s.ID + "/diff?a=" + ra, token: a.Token}), "b")
		wantField(t, e.do(restReq{method: "GET", path: "/sessions/" + s.ID + "/diff?b=" + rb, token: a.Token}), "a")
		wantError(t, e.do(restReq{method: "GET", path: "/sessions/" + s.ID + "/diff?a=" + ra + "&b=r_nope", token: a.Token}), http.StatusNotFound, playground.ENotFound)
		wantError(t, e.do(restReq{method: "GET", path: "/sessions/" + s.ID + "/diff?a=" + ra + "&b=" + rb, token: b.Token}), http.StatusNotFound, playground.ENotFound)
	})
}

func TestWordDiffProperty(t *testing.T) {
	t.Parallel()
	texts := []string{
		"", "a", "hello world", "hello  world\n", "the quick brown fox jumps over the lazy dog",
		"The quick, brown fox!\n\nJumps over — the lazy dog.", "日本語 の テキスト 🎉 emoji", "  leading and trailing  ",
		"repeat repeat repeat", "tabs\tand\tnewlines\nmixed \t\n end",
	}
	for _, a := range texts {
		for _, b := range texts {
			ops := wordDiff(a, b)
			var ga, gb strings.Builder
			for _, o := range ops {
				switch o.Op {
				case opEqual:
					ga.WriteString(o.Text)
					gb.WriteString(o.Text)
				case opDelete:
					ga.WriteString(o.Text)
				case opInsert:
					gb.WriteString(o.Text)
				default:
					t.Fatalf("op %q", o.Op)
				}
				if o.Text == "" {
					t.Errorf("empty op in diff(%q, %q)", a, b)
				}
			}
			if ga.String() != a || gb.String() != b {
				t.Errorf("diff(%q, %q) = %v: rebuilt %q, %q", a, b, ops, ga.String(), gb.String())
			}
		}
	}
	if ops := wordDiff("same text", "same text"); len(ops) != 1 || ops[0].Op != opEqual {
		t.Errorf("equal texts: %v", ops)
	}
}

func TestTokenRuneSkipsSurrogates(t *testing.T) {
	t.Parallel()
	for _, i := range []int{0, 1, 0xD7FE, 0xD7FF, 0xD800, 0x10000, 0x10F7FE} {
		r, ok := tokenRune(i)
		if !ok || (r >= 0xD800 && r < 0xE000) || runeToken(r) != i || string(r) == "\uFFFD" {
			t.Errorf("tokenRune(%d) = %U, %v", i, r, ok)
		}
	}
	if _, ok := tokenRune(0x10F800); ok {
		t.Error("past the last rune")
	}
	_ = math.MaxInt
}
