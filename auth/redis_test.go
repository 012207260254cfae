package auth

import (
	"context"
	"testing"
	"time"

	"github.com/playground-dev/playground/internal/redistest"
)

// TestRecheckAnsweredFromMemory: a check made right after a token was
// found not revoked costs no Redis round trip while the cache holds that
// answer; once a revocation is heard of (this instance's logout, or
// another's announced) or the answer is older than the TTL, the check
// asks Redis again, and a revocation Redis holds is seen.
func TestRecheckAnsweredFromMemory(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t, redistest.URL(t))
	var trips redistest.RoundTrips
	rdb.AddHook(&trips)
	now := time.Now()
	store := &revocations{revoked: map[string]bool{}}
	cache := NewTokenCache(store, 5*time.Second, func() time.Time { return now })
	prefix := redistest.Prefix()
	tokens := NewRedisTokens(cache, rdb, prefix, nil)
	defer tokens.Close()

	check := func(what string, f func(context.Context, string, string) (bool, error), jti string, wantRevoked bool, wantTrips int64) {
		t.Helper()
		trips.Reset()
		revoked, err := f(ctx, jti, "u1")
		if err != nil || revoked != wantRevoked {
			t.Fatalf("%s: revoked=%v err=%v, want %v", what, revoked, err, wantRevoked)
		}
		if n := trips.Count(); n != wantTrips {
			t.Errorf("%s: %d Redis round trips, want %d", what, n, wantTrips)
		}
	}
	check("authentication", tokens.IsTokenRevoked, "a", false, 1)
	check("the check after the watch", tokens.RecheckToken, "a", false, 0)

	// Another instance's logout: Redis holds it, and its announcement
	// drops the cached answer.
	if err := rdb.Set(ctx, prefix+"revoked:a", 1, 10*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	cache.Forget("a")
	check("the check after an announced logout", tokens.RecheckToken, "a", true, 1)

	// This instance's logout.
	check("authentication", tokens.IsTokenRevoked, "b", false, 1)
	if err := tokens.RevokeToken(ctx, "b", time.Now().Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	check("the check after a logout here", tokens.RecheckToken, "b", true, 1)

	// An answer past its TTL is asked again.
	check("authentication", tokens.IsTokenRevoked, "c", false, 1)
	now = now.Add(5 * time.Second)
	check("the check past the TTL", tokens.RecheckToken, "c", false, 1)
}
