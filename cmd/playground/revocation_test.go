package main

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground/auth"
)

// TestLogoutRefusedOnTheNextRequest: however busy a token was just
// before (its checks answered from memory), the request after its logout
// is refused, over REST and for a live stream.
func TestLogoutRefusedOnTheNextRequest(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "sqlite", nil, nil)
	c := ts.client(t).register()
	for range 5 {
		if code := c.do("GET", "/auth/me", nil, nil); code != 200 {
			t.Fatalf("me before logout: %d", code)
		}
	}
	if code := c.do("POST", "/auth/logout", nil, nil); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	if code := c.do("GET", "/auth/me", nil, nil); code != 401 {
		t.Fatalf("me right after logout: %d, want 401", code)
	}
	if code := c.do("POST", "/sessions", map[string]any{"prompt": "hi", "models": []string{"demo/fast"}}, nil); code != 401 {
		t.Fatalf("a session right after logout: %d, want 401", code)
	}
}

// TestRevocationReachesOtherInstances: with two instances on one Redis, a
// token B has just been answering for is refused by B
//   - at once after a logout on A (Redis holds the revocation);
//   - well within the cache's TTL when Redis lost its record of it (B
//     hears A's announcement);
//   - within the TTL when only the database has it, unannounced (as when
//     Redis was down at the logout).
func TestRevocationReachesOtherInstances(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	cl := newCluster(t, url, nil)
	a, b := cl.start(t, "a"), cl.start(t, "b")
	rdb := redis.NewClient(mustParseRedisURL(t, url))
	defer rdb.Close()
	// refusedWithin makes a token busy on B, revokes it, and reports
	// whether B refused it on the next request, failing past limit.
	refusedWithin := func(what string, limit time.Duration, revoke func(onA *client)) bool {
		t.Helper()
		onA := a.client(t).register()
		onB := b.client(t)
		onB.token = onA.token
		for range 3 {
			if code := onB.do("GET", "/auth/me", nil, nil); code != 200 {
				t.Fatalf("%s: me on B before: %d", what, code)
			}
		}
		revoke(onA)
		start := time.Now()
		if onB.do("GET", "/auth/me", nil, nil) == 401 {
			return true
		}
		waitForLong(t, limit, what+": B refusing the token", func() bool { return onB.do("GET", "/auth/me", nil, nil) == 401 })
		t.Logf("%s: B refused the token after %v", what, time.Since(start))
		return false
	}
	logout := func(onA *client) {
		if code := onA.do("POST", "/auth/logout", nil, nil); code != 204 {
			t.Fatalf("logout on A: %d", code)
		}
	}
	if !refusedWithin("logout on A", time.Second, logout) {
		t.Error("B answered for the token after its logout on A")
	}
	refusedWithin("logout on A, Redis's record lost", auth.RevocationCacheTTL/2, func(onA *client) {
		jti := jtiOf(t, onA.token)
		logout(onA)
		if err := rdb.Del(t.Context(), cl.prefix+"revoked:"+jti).Err(); err != nil {
			t.Fatal(err)
		}
	})
	refusedWithin("revoked in the database only", auth.RevocationCacheTTL+time.Second, func(onA *client) {
		if err := a.app.DB.RevokeToken(t.Context(), jtiOf(t, onA.token), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	})
}
