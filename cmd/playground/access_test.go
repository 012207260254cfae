package main

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/playground-dev/playground"
)

// TestSessionAccess holds every endpoint that names a session to the one
// rule of the contract: visible to its owner and to any holder of its
// live share token; no credentials and no share token 401; anyone else,
// or a dead share token, 404; share holders only watch (an action is
// 403); credentials that do not verify count as none beside a share token
// and are 401 without one. Each identity is tried with no share token, the
// live one and a dead one, on REST, export, diff, SSE and the WebSocket.
func TestSessionAccess(t *testing.T) {
	t.Parallel()
	const secret = "access-test-secret-access-test-secret"
	ts := startServer(t, "sqlite", map[string]string{"JWT_SECRET": secret}, nil)
	owner := ts.client(t).register()
	other := ts.client(t).register()
	s := owner.createSession("who may see this", "demo/fast", "demo/steady")
	if code := owner.do("POST", "/sessions/"+s.ID+"/cancel", nil, nil); code != 202 {
		t.Fatalf("owner's cancel: %d", code)
	}
	waitFor(t, "the session to end", func() bool { return owner.session(s.ID).Status != playground.SessionRunning })

	var sh struct {
		ShareToken string `json:"shareToken"`
	}
	owner.do("POST", "/sessions/"+s.ID+"/share", nil, &sh)
	dead := sh.ShareToken
	owner.do("DELETE", "/sessions/"+s.ID+"/share", nil, nil)
	owner.do("POST", "/sessions/"+s.ID+"/share", nil, &sh)
	live := sh.ShareToken
	if live == "" || live == dead {
		t.Fatalf("share tokens: live %q dead %q", live, dead)
	}

	sub := s.Responses[0].ID // any user id: the token is refused before it is looked up
	expired := jwt.MapClaims{"sub": sub, "jti": "j-expired", "iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()}
	forged := jwt.MapClaims{"sub": sub, "jti": "j-forged", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	expiredToken := signAccess(t, secret, expired)
	forgedToken := signAccess(t, "not-the-server-secret-not-the-server", forged)
	gone := ts.client(t).register()
	if code := gone.do("POST", "/auth/logout", nil, nil); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	revokedToken := gone.token

	type identity struct {
		name           string
		bearer, cookie string
		owner, account bool // the owner; an account that verifies
	}
	ids := []identity{
		{name: "owner", bearer: owner.token, owner: true, account: true},
		{name: "stranger", bearer: other.token, account: true},
		{name: "anonymous"},
		{name: "expired cookie", cookie: expiredToken},
		{name: "forged cookie", cookie: forgedToken},
		{name: "expired bearer", bearer: expiredToken},
		{name: "forged bearer", bearer: forgedToken},
		{name: "revoked bearer", bearer: revokedToken},
		{name: "revoked cookie", cookie: revokedToken},
	}
	shares := []struct{ name, token string }{{"no share", ""}, {"live share", live}, {"dead share", dead}}

	// want is the contract's answer, as an HTTP status.
	want := func(id identity, share string, act bool) int {
		switch {
		case id.owner:
			if act {
				return 202
			}
			return 200
		case share == live:
			if act {
				return 403
			}
			return 200
		case share == "" && !id.account:
			return 401
		default:
			return 404
		}
	}
	wsCode := map[int]string{401: playground.EUnauthorized, 403: playground.EForbidden, 404: playground.ENotFound}

	base := "/sessions/" + s.ID
	endpoints := []struct {
		method, path string
		act          bool
	}{
		{"GET", base, false},
		{"GET", base + "/export?format=json", false},
		{"GET", base + "/diff?a=" + s.Responses[0].ID + "&b=" + s.Responses[1].ID, false},
		{"GET", base + "/stream", false},
		{"POST", base + "/cancel", true},
	}
	for _, id := range ids {
		for _, sh := range shares {
			for _, ep := range endpoints {
				path := ep.path
				if sh.token != "" {
					path += sep(path) + "share=" + sh.token
				}
				got := rawStatus(t, ts.URL, ep.method, path, id.bearer, id.cookie)
				if w := want(id, sh.token, ep.act); got != w {
					t.Errorf("%s, %s: %s %s = %d, want %d", id.name, sh.name, ep.method, ep.path, got, w)
				}
			}

			// The WebSocket: the upgrade, then a subscribe and a cancel.
			header := http.Header{}
			if id.cookie != "" {
				header.Set("Cookie", "playground_token="+id.cookie)
			}
			v := ts.dialWS(t, id.bearer, header)
			v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0, "shareToken": sh.token})
			if got, w := wsAnswer(v, s.ID, playground.EventSubscribed), want(id, sh.token, false); got != wsExpect(w, wsCode) {
				t.Errorf("%s, %s: ws subscribe = %q, want %q", id.name, sh.name, got, wsExpect(w, wsCode))
			}
			// A cancel carries no share token: it is its subscription's, if
			// the subscribe was let in.
			subShare := sh.token
			if want(id, sh.token, false) != 200 {
				subShare = ""
			}
			v.send(map[string]any{"type": "cancel", "sessionId": s.ID})
			v.send(map[string]any{"type": "ping"})
			if got, w := wsAnswer(v, s.ID, playground.EventPong), want(id, subShare, true); got != wsExpect(w, wsCode) {
				t.Errorf("%s, %s: ws cancel = %q, want %q", id.name, sh.name, got, wsExpect(w, wsCode))
			}
			v.c.CloseNow()
		}
	}
}

// wsExpect is what the WebSocket answers where REST answers status: the
// awaited event ("ok") or an error event's code.
func wsExpect(status int, codes map[int]string) string {
	if status < 300 {
		return "ok"
	}
	return codes[status]
}

// wsAnswer reads until the awaited event ("ok") or an error event about
// the session (its code).
func wsAnswer(v *wsViewer, sessionID string, awaited playground.EventType) string {
	v.t.Helper()
	for {
		ev := v.next(5 * time.Second)
		switch {
		case ev.Type == awaited:
			return "ok"
		case ev.Type == playground.EventError && ev.SessionID == sessionID:
			return ev.Code
		}
	}
}

func signAccess(t *testing.T, key string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawStatus sends one request with exactly the given credentials and
// returns its status, having read the answer to its end.
func rawStatus(t *testing.T, base, method, path, bearer, cookie string) int {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "playground_token", Value: cookie})
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
