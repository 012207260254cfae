package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/playground-dev/playground/hub"
)

// withHub gives the server a hub of its own, which a logout tells (no
// Revoked hook): the single instance's set-up.
func withHub(o *Options) {
	o.Hub = hub.New(hub.Options{Store: o.Sessions})
	o.Revoked = nil
}

// TestLogoutBeforeTheWatchEndsLiveViewers: a logout that lands after a
// live connection's request was authenticated, but before the connection
// watched its credentials (so the logout finds nothing to close), still
// ends it as a logout mid-stream does: the SSE stream ends, over HTTP/1.1
// and through net/http, and the WebSocket closes with 4401; with the
// revocations in the database, and in Redis beside it (where the check
// after the watch is answered from the revocation cache).
func TestLogoutBeforeTheWatchEndsLiveViewers(t *testing.T) {
	t.Parallel()
	t.Run("database", func(t *testing.T) { logoutBeforeTheWatch(t, withHub) })
	t.Run("redis", func(t *testing.T) { logoutBeforeTheWatch(t, withHub, withRedisTokens(t, nil)) })
}

func logoutBeforeTheWatch(t *testing.T, opts ...func(*Options)) {
	eachUser(t, "late@example.com", func(t *testing.T, e *restEnv, u testUser) {
		// Each viewer signs in afresh, and signs out in the window.
		var current atomic.Pointer[string]
		e.srv.beforeWatch = func(*Principal) {
			if w := e.do(restReq{method: "POST", path: "/auth/logout", token: *current.Load()}); w.Code != http.StatusNoContent {
				t.Errorf("logout: %d %s", w.Code, w.Body)
			}
		}
		signIn := func(t *testing.T) string {
			var out struct {
				AccessToken string `json:"accessToken"`
			}
			e.want(restReq{method: "POST", path: "/auth/login", body: map[string]string{"email": u.Email, "password": "password123"}}, http.StatusOK, &out)
			current.Store(&out.AccessToken)
			return out.AccessToken
		}
		ts := httptest.NewServer(e.srv)
		defer e.srv.CloseLive()
		defer ts.Close()
		s := e.createSession(u, "demo/fast")
		stream := "/sessions/" + s.ID + "/stream"
		// The bound only turns a stream that runs on into a failure.
		bounded := func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			t.Cleanup(cancel)
			return ctx
		}

		t.Run("sse over http/1.1", func(t *testing.T) {
			token := signIn(t)
			ctx := bounded(t)
			req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+stream, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("the stream of a token revoked as it opened still runs: %v (read so far %q)", err, body)
			}
			if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "event: done") {
				t.Errorf("stream: %d %q", resp.StatusCode, body)
			}
		})

		t.Run("sse through net/http", func(t *testing.T) {
			token := signIn(t)
			ctx := bounded(t)
			r := httptest.NewRequest("GET", stream, nil).WithContext(ctx)
			r.Header.Set("Authorization", "Bearer "+token)
			w := httptest.NewRecorder() // no Hijacker: the handler writes the stream
			e.srv.ServeHTTP(w, r)
			if ctx.Err() != nil {
				t.Fatalf("the stream of a token revoked as it opened ran until the client left: %q", w.Body)
			}
			if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "event: done") {
				t.Errorf("stream: %d %q", w.Code, w.Body)
			}
		})

		t.Run("websocket", func(t *testing.T) {
			token := signIn(t)
			ctx := bounded(t)
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", &websocket.DialOptions{
				HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			_, _, err = c.Read(ctx)
			if code := websocket.CloseStatus(err); code != closeUnauthorized {
				t.Errorf("the WebSocket of a token revoked as it opened: %v, want close %d", err, closeUnauthorized)
			}
		})
	}, opts...)
}

// TestLiveViewerWhoseTokenCannotBeCheckedAgain: when the revocations
// cannot be read as a live connection watches its credentials, the viewer
// gets the 503 of credentials that cannot be checked, never a stream that
// no logout would end, and nothing stays registered.
func TestLiveViewerWhoseTokenCannotBeCheckedAgain(t *testing.T) {
	t.Parallel()
	eachUser(t, "flaky@example.com", func(t *testing.T, e *restEnv, u testUser) {
		e.srv.beforeWatch = func(*Principal) { e.tokens.down.Store(true) }
		ts := httptest.NewServer(e.srv)
		defer e.srv.CloseLive()
		defer ts.Close()
		s := e.createSession(u, "demo/fast")

		w := e.do(restReq{method: "GET", path: "/sessions/" + s.ID + "/stream", token: u.Token})
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("stream: %d, Retry-After %q: %s", w.Code, w.Header().Get("Retry-After"), w.Body)
		}
		e.tokens.down.Store(false)

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", &websocket.DialOptions{
			HTTPHeader: http.Header{"Authorization": {"Bearer " + u.Token}},
		})
		if err == nil {
			c.CloseNow()
			t.Fatal("the WebSocket opened")
		}
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("WebSocket: %v, %v", resp, err)
		}
		if _, clients := e.srv.opts.Hub.Counts(); clients != 0 {
			t.Errorf("%d credentials watched after the refusals", clients)
		}
	}, withHub)
}

// TestWebSocketClosesWhenTheTokenExpires: a WebSocket whose credentials
// run out while it is open closes with 4401, saying so.
func TestWebSocketClosesWhenTheTokenExpires(t *testing.T) {
	t.Parallel()
	eachUser(t, "brief@example.com", func(t *testing.T, e *restEnv, u testUser) {
		ts := httptest.NewServer(e.srv)
		defer e.srv.CloseLive()
		defer ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", &websocket.DialOptions{
			HTTPHeader: http.Header{"Authorization": {"Bearer " + u.Token}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		_, _, err = c.Read(ctx)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != closeUnauthorized || ce.Reason != "credentials expired" {
			t.Errorf("at expiry: %v, want close %d credentials expired", err, closeUnauthorized)
		}
	}, withHub, func(o *Options) { o.JWTTTL = 3 * time.Second })
}
