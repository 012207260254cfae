package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/playground-dev/playground"
)

const testFrontend = "https://app.example.com"

func withFrontend(o *Options) { o.FrontendURL = testFrontend }

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *restEnv) {
		w := e.want(restReq{method: "OPTIONS", path: "/sessions", header: map[string]string{
			"Origin": testFrontend, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization"}}, http.StatusNoContent, nil)
		h := w.Header()
		want := map[string]string{
			"Access-Control-Allow-Origin":      testFrontend,
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Allow-Methods":     "GET, POST, PUT, DELETE",
			"Access-Control-Allow-Headers":     "Content-Type, Authorization",
		}
		for k, v := range want {
			if h.Get(k) != v {
				t.Errorf("%s = %q, want %q", k, h.Get(k), v)
			}
		}
		if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
			t.Errorf("Vary = %v", h.Values("Vary"))
		}

		// An actual request from the testFrontend: headers echoed.
		w = e.do(restReq{method: "GET", path: "/models", header: map[string]string{"Origin": testFrontend}})
		if w.Code != http.StatusOK || w.Header().Get("Access-Control-Allow-Origin") != testFrontend || w.Header().Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("simple request: %d %v", w.Code, w.Header())
		}

		// Another origin gets no CORS headers, and its preflight is not answered.
		w = e.do(restReq{method: "OPTIONS", path: "/sessions", header: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}})
		if w.Header().Get("Access-Control-Allow-Origin") != "" || w.Code == http.StatusNoContent {
			t.Errorf("foreign preflight: %d %v", w.Code, w.Header())
		}
	}, withFrontend)
}

func TestCrossSiteForbidden(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, u testUser) {
		body := map[string]any{"prompt": "x", "models": []string{"demo/fast"}}
		// A foreign page's POST carrying the cookie: 403 before anything else
		// (even before the 413/400 checks).
		for _, h := range []map[string]string{
			{"Origin": "https://evil.example"},
			{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
			{"Sec-Fetch-Site": "cross-site"},
		} {
			w := e.do(restReq{method: "POST", path: "/sessions", cookie: u.Token, body: body, header: h})
			wantError(t, w, http.StatusForbidden, playground.EForbidden)
		}
		w := e.do(restReq{method: "POST", path: "/sessions", cookie: "garbage", body: "{", header: map[string]string{"Origin": "https://evil.example"}})
		wantError(t, w, http.StatusForbidden, playground.EForbidden)

		// A forged login is refused too.
		w = e.do(restReq{method: "POST", path: "/auth/login", body: map[string]string{"email": "a@example.com", "password": "password123"},
			header: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}})
		wantError(t, w, http.StatusForbidden, playground.EForbidden)

		// Allowed: same origin, FRONTEND_URL, a non-browser client, and a
		// bearer token without the cookie (no other site can send it).
		for _, r := range []restReq{
			{cookie: u.Token, header: map[string]string{"Origin": "http://example.com"}}, // httptest's Host
			{cookie: u.Token, header: map[string]string{"Sec-Fetch-Site": "same-origin"}},
			{cookie: u.Token, header: map[string]string{"Origin": testFrontend, "Sec-Fetch-Site": "same-site"}},
			{cookie: u.Token},
			{token: u.Token, header: map[string]string{"Origin": "https://tool.example"}},
		} {
			r.method, r.path, r.body = "POST", "/sessions", body
			if w := e.do(r); w.Code != http.StatusCreated {
				t.Errorf("%v: %d %s", r.header, w.Code, w.Body)
			}
		}
	}, withFrontend)
}

func TestPanicRecovery(t *testing.T) {
	t.Parallel()
	s := New(Options{Logger: discardLogger()})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("kaboom secret") })
	h := s.middleware(mux)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/boom", nil))
	wantError(t, w, http.StatusInternalServerError, playground.EInternal)
	if strings.Contains(w.Body.String(), "secret") {
		t.Errorf("panic value leaked: %s", w.Body)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *restEnv) {
		e.do(restReq{method: "GET", path: "/models"})
		e.do(restReq{method: "GET", path: "/sessions/abc"})
		w := e.do(restReq{method: "GET", path: "/metrics"})
		if w.Code != http.StatusOK {
			t.Fatalf("metrics: %d", w.Code)
		}
		body, _ := io.ReadAll(w.Body)
		for _, want := range []string{
			`playground_http_requests_total{method="GET",route="/models",status="200"} 1`,
			`playground_http_requests_total{method="GET",route="/sessions/{id}",status="401"} 1`,
			"playground_http_request_duration_seconds_bucket",
			"playground_sessions_started_total",
			"playground_live_viewers",
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
}
