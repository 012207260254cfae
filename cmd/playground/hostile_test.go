package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db/dbtest"
)

// TestNULBytes: a NUL byte, which PostgreSQL text cannot hold, is never a
// 500. An id that cannot exist is 404 before any database call; a text
// field holding one is 400 naming the field.
func TestNULBytes(t *testing.T) {
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			ts := startServer(t, dialect, nil, nil)
			owner := ts.client(t).register()
			anon := ts.client(t)
			s := owner.createSession("hello", "demo/fast")
			var share struct {
				ShareToken string `json:"shareToken"`
			}
			if code := owner.do("POST", "/sessions/"+s.ID+"/share", nil, &share); code != 200 {
				t.Fatalf("share: %d", code)
			}

			wantCode := func(c *client, method, path string, body any, status int, code, field string) {
				t.Helper()
				var out struct {
					Error struct {
						Code    string         `json:"code"`
						Details map[string]any `json:"details"`
					} `json:"error"`
				}
				got := c.do(method, path, body, &out)
				if got != status || out.Error.Code != code {
					t.Errorf("%s %s: %d %q, want %d %q", method, path, got, out.Error.Code, status, code)
				}
				if field != "" && out.Error.Details["field"] != field {
					t.Errorf("%s %s: details.field %v, want %q", method, path, out.Error.Details["field"], field)
				}
			}
			for _, path := range []string{"/share/a%00b", "/share/" + url.PathEscape(share.ShareToken+"\x00")} {
				wantCode(anon, "GET", path, nil, 404, "not_found", "")
			}
			for _, path := range []string{"/sessions/a%00b", "/sessions/s_%00", "/sessions/" + url.PathEscape(s.ID+"\x00"),
				"/sessions/a%00b/stream", "/sessions/a%00b/export", "/sessions/a%00b/diff?a=r_1&b=r_2"} {
				wantCode(owner, "GET", path, nil, 404, "not_found", "")
				wantCode(anon, "GET", path+sep(path)+"share="+share.ShareToken, nil, 404, "not_found", "")
			}
			wantCode(owner, "POST", "/sessions/a%00b/cancel", nil, 404, "not_found", "")
			// Credentials still come first: no token and no share is 401.
			wantCode(anon, "GET", "/sessions/a%00b", nil, 401, "unauthorized", "")

			wantCode(owner, "POST", "/sessions", map[string]any{"prompt": "a\x00b", "models": []string{"demo/fast"}}, 400, "invalid_request", "prompt")
			wantCode(owner, "POST", "/sessions", map[string]any{"prompt": "ok", "system": "be\x00brief", "models": []string{"demo/fast"}}, 400, "invalid_request", "system")
			wantCode(owner, "POST", "/sessions/estimate", map[string]any{"prompt": "a\x00b", "models": []string{"demo/fast"}}, 400, "invalid_request", "prompt")
			wantCode(owner, "POST", "/sessions/"+s.ID+"/rerun", map[string]any{"models": []string{"demo/fast\x00"}}, 400, "unknown_model", "")
			wantCode(anon, "POST", "/auth/login", map[string]any{"email": "a\x00@example.com", "password": "password123"}, 400, "invalid_request", "email")
			wantCode(anon, "POST", "/auth/register", map[string]any{"email": "a\x00@example.com", "password": "password123"}, 400, "invalid_request", "email")
			wantCode(owner, "GET", "/sessions?cursor="+url.QueryEscape("\x00"), nil, 400, "invalid_request", "cursor")

			// The same over the WebSocket, with and without an account.
			for _, who := range []*client{owner, anon} {
				v := ts.dialWS(t, who.token, nil)
				v.send(map[string]any{"type": "subscribe", "sessionId": "s_\x00", "since": 0, "shareToken": share.ShareToken})
				if ev := v.next(5 * time.Second); ev.Type != playground.EventError || ev.Code != "not_found" {
					t.Errorf("subscribe to s_\\x00: %+v", ev)
				}
				v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0, "shareToken": share.ShareToken + "\x00"})
				if ev := v.next(5 * time.Second); who == anon && (ev.Type != playground.EventError || ev.Code != "not_found") {
					t.Errorf("subscribe with a NUL in the share token: %+v", ev)
				}
			}
			// The server is still whole: the session streams to its end.
			if code := owner.do("GET", "/sessions/"+s.ID, nil, nil); code != 200 {
				t.Fatalf("session after the NULs: %d", code)
			}
		})
	}
}

// sep is the separator before a query parameter added to path.
func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}
