package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// revocations is a token store in memory that counts its lookups and can
// hold one until released.
type revocations struct {
	mu      sync.Mutex
	revoked map[string]bool
	lookups int
	fail    error
	hold    chan struct{} // set: the next lookup reads its answer, then waits here
	held    chan struct{} // closed when that lookup has read its answer
}

func (r *revocations) RevokeToken(_ context.Context, jti string, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked[jti] = true
	return nil
}

func (r *revocations) IsTokenRevoked(_ context.Context, jti, _ string) (bool, error) {
	r.mu.Lock()
	r.lookups++
	revoked, err, hold, held := r.revoked[jti], r.fail, r.hold, r.held
	r.hold = nil
	r.mu.Unlock()
	if hold != nil {
		close(held)
		<-hold
	}
	return revoked, err
}

func (r *revocations) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups
}

// TestTokenCacheReusesNotRevoked: one lookup per token per TTL; a
// revocation through the cache or announced to it is seen by the very
// next check; revoked answers and errors are asked again each time.
func TestTokenCacheReusesNotRevoked(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store := &revocations{revoked: map[string]bool{}}
	c := NewTokenCache(store, 5*time.Second, func() time.Time { return now })
	check := func(jti string, want bool) {
		t.Helper()
		revoked, err := c.IsTokenRevoked(ctx, jti, "u1")
		if err != nil || revoked != want {
			t.Fatalf("%s: revoked=%v err=%v, want %v", jti, revoked, err, want)
		}
	}
	for range 10 {
		check("a", false)
	}
	if n := store.count(); n != 1 {
		t.Fatalf("10 checks within the TTL: %d lookups, want 1", n)
	}
	now = now.Add(5 * time.Second)
	check("a", false)
	if n := store.count(); n != 2 {
		t.Fatalf("a check after the TTL: %d lookups, want 2", n)
	}

	// A logout through this instance: refused on the very next request.
	if err := c.RevokeToken(ctx, "a", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	check("a", true)
	check("a", true)
	if n := store.count(); n != 4 {
		t.Fatalf("revoked answers: %d lookups, want 4 (never cached)", n)
	}

	// Another instance's logout, announced: refused at once.
	check("b", false)
	store.RevokeToken(ctx, "b", now.Add(time.Hour)) // written by the other instance
	check("b", false)                               // not announced yet: the cached answer
	c.Forget("b")
	check("b", true)

	// Errors are not cached.
	store.fail = errors.New("database down")
	if _, err := c.IsTokenRevoked(ctx, "c", "u1"); err == nil {
		t.Fatal("an error of the store was not reported")
	}
	store.fail = nil
	before := store.count()
	check("c", false)
	if store.count() != before+1 {
		t.Fatal("an error was cached")
	}

	// Expired answers are swept.
	now = now.Add(time.Minute)
	check("d", false)
	if n := c.size(); n != 1 {
		t.Fatalf("after a sweep: %d cached answers, want 1", n)
	}
}

// TestTokenCacheLookupRacingRevocation: a lookup that read "not revoked"
// before a revocation and returns after it does not store its answer,
// so the next check asks the store (and sees the revocation).
func TestTokenCacheLookupRacingRevocation(t *testing.T) {
	ctx := context.Background()
	store := &revocations{revoked: map[string]bool{}, hold: make(chan struct{}), held: make(chan struct{})}
	c := NewTokenCache(store, time.Hour, nil)
	hold, held := store.hold, store.held
	done := make(chan bool)
	go func() {
		revoked, _ := c.IsTokenRevoked(ctx, "a", "u1")
		done <- revoked
	}()
	<-held // the lookup has read "not revoked"
	if err := c.RevokeToken(ctx, "a", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	close(hold)
	if <-done {
		t.Fatal("the lookup begun before the revocation read it")
	}
	if revoked, err := c.IsTokenRevoked(ctx, "a", "u1"); err != nil || !revoked {
		t.Fatalf("the check after the revocation: revoked=%v err=%v, want revoked", revoked, err)
	}
}
