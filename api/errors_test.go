package api

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/playground-dev/playground"
)

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, u testUser) {
		post := func(body string) *httptest.ResponseRecorder {
			return e.do(restReq{method: "POST", path: "/sessions", token: u.Token, body: body})
		}
		cases := []struct {
			name, body, field string
		}{
			{"malformed", `{"prompt": "x",`, ""},
			{"not json", `hello`, ""},
			{"empty", ``, ""},
			{"array body", `[]`, ""},
			{"wrong type", `{"prompt": 5, "models": ["demo/fast"]}`, "prompt"},
			{"wrong nested type", `{"prompt": "x", "models": ["demo/fast"], "params": {"temperature": "hot"}}`, "params.temperature"},
			{"wrong element type", `{"prompt": "x", "models": [1]}`, "models"},
			{"unknown field", `{"prompt": "x", "models": ["demo/fast"], "colour": "red"}`, "colour"},
			{"unknown nested field", `{"prompt": "x", "models": ["demo/fast"], "params": {"temprature": 1}}`, "params.temprature"},
			{"case-folded field", `{"Prompt": "x", "models": ["demo/fast"]}`, "Prompt"},
			{"trailing garbage", `{"prompt": "x", "models": ["demo/fast"]} {}`, ""},
			{"trailing text", `{"prompt": "x", "models": ["demo/fast"]}x`, ""},
			{"out of range", `{"prompt": "x", "models": ["demo/fast"], "params": {"temperature": 2.5}}`, "params.temperature"},
			{"topP zero", `{"prompt": "x", "models": ["demo/fast"], "params": {"topP": 0}}`, "params.topP"},
			{"maxTokens", `{"prompt": "x", "models": ["demo/fast"], "params": {"maxTokens": 40000}}`, "params.maxTokens"},
			{"missing prompt", `{"models": ["demo/fast"]}`, "prompt"},
			{"no models", `{"prompt": "x", "models": []}`, "models"},
			{"duplicate models", `{"prompt": "x", "models": ["demo/fast", "demo/fast"]}`, "models[1]"},
			{"prompt too long", `{"prompt": "` + strings.Repeat("é", playground.MaxPromptChars+1) + `", "models": ["demo/fast"]}`, "prompt"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				w := post(c.body)
				d := wantError(t, w, http.StatusBadRequest, playground.EInvalid)
				if c.field == "" {
					if _, ok := d["field"]; ok {
						t.Errorf("details.field = %v, want none", d["field"])
					}
				} else if d["field"] != c.field {
					t.Errorf("details.field = %v, want %q", d["field"], c.field)
				}
			})
		}
		// A prompt of exactly the limit in multibyte characters is fine.
		w := post(`{"prompt": "` + strings.Repeat("é", playground.MaxPromptChars) + `", "models": ["demo/fast"]}`)
		if w.Code != http.StatusCreated {
			t.Errorf("prompt at the limit: %d %s", w.Code, w.Body)
		}
	})
}

func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, u testUser) {
		big := `{"prompt": "` + strings.Repeat("a", maxBodyBytes) + `", "models": ["demo/fast"]}`
		wantError(t, e.do(restReq{method: "POST", path: "/sessions", token: u.Token, body: big}), http.StatusRequestEntityTooLarge, playground.EPayloadTooLarge)
		// Credentials are checked first (docs/api.md's order).
		wantError(t, e.do(restReq{method: "POST", path: "/sessions", body: big}), http.StatusUnauthorized, playground.EUnauthorized)
	})
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *restEnv) {
		wantError(t, e.do(restReq{method: "POST", path: "/nope"}), http.StatusNotFound, playground.ENotFound)
		wantError(t, e.do(restReq{method: "DELETE", path: "/sessions/x/y/z"}), http.StatusNotFound, playground.ENotFound)
		w := e.do(restReq{method: "DELETE", path: "/sessions"})
		wantError(t, w, http.StatusMethodNotAllowed, playground.EInvalid)
		if allow := w.Header().Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
			t.Errorf("Allow = %q", allow)
		}
		// (GET /auth/login falls to the page's catch-all "GET /", not ours.)
		w = e.do(restReq{method: "PUT", path: "/auth/login"})
		wantError(t, w, http.StatusMethodNotAllowed, playground.EInvalid)
	})
}

func TestInternalErrorNotLeaked(t *testing.T) {
	t.Parallel()
	s := New(Options{Logger: discardLogger()})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/x", nil)
	s.writeError(w, r, errSecret)
	d := wantError(t, w, http.StatusInternalServerError, playground.EInternal)
	if strings.Contains(w.Body.String(), "hunter2") || len(d) != 0 {
		t.Errorf("leaked: %s", w.Body)
	}
	w = httptest.NewRecorder()
	s.writeError(w, r, unavailable(errSecret, "Down."))
	wantError(t, w, http.StatusServiceUnavailable, playground.EUnavailable)
	if strings.Contains(w.Body.String(), "hunter2") || w.Header().Get("Retry-After") == "" {
		t.Errorf("503: %s %v", w.Body, w.Header())
	}
}

var errSecret = errors.New("db: password=hunter2 connection refused")

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestUnknownMemberPath: an unknown member is named by its JSON path,
// through objects and arrays, the first in document order; names are
// matched exactly; a body with none gives "".
func TestUnknownMemberPath(t *testing.T) {
	t.Parallel()
	type entry struct {
		Model  string             `json:"model"`
		Params *playground.Params `json:"params"`
	}
	type request struct {
		Prompt string             `json:"prompt"`
		Params *playground.Params `json:"params"`
		Models []entry            `json:"models"`
		Grid   [][]entry          `json:"grid"`
	}
	typ := reflect.TypeOf(request{})
	for body, want := range map[string]string{
		`{"prompt": "x", "params": {"temperature": 1}}`:              "",
		`{"prompt": "x", "colour": "red"}`:                           "colour",
		`{"params": {"temprature": 1}}`:                              "params.temprature",
		`{"models": [{"model": "a"}, {"model": "b", "modle": "c"}]}`: "models[1].modle",
		`{"models": [{"model": "a", "params": {"topp": 1}}]}`:        "models[0].params.topp",
		`{"grid": [[], [{"model": "a"}, {"x": 1}]]}`:                 "grid[1][1].x",
		`{"Prompt": "x"}`:                           "Prompt",
		`{"zeta": 1, "alpha": 2}`:                   "zeta",
		`{"prompt": 5, "models": [{"model": "a"}]}`: "",
		`{"prompt": "x", "models": [{"model": "a"}], "params": {"maxTokens": 3}}`: "",
	} {
		if got := unknownMember([]byte(body), typ); got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}
