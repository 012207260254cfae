package auth

import (
	"context"
	"sync"
	"time"

	"github.com/playground-dev/playground"
)

// RevocationCacheTTL is how long a "not revoked" answer of the database
// is reused for the same token. A revocation made through this instance,
// or announced by another one (the broker's revoke message), ends the
// reuse at once; the TTL bounds only what nobody announces: a revocation
// another instance wrote to the database while Redis could take neither
// the revocation nor the announcement, or an account removed from the
// database by hand.
const RevocationCacheTTL = 5 * time.Second

// TokenCache answers IsTokenRevoked from memory for a token the store
// called not revoked less than RevocationCacheTTL ago, so that a client
// making many requests with one token costs one lookup per TTL instead
// of one per request. Revoked answers and errors are never cached: a
// revoked token stays revoked in the store, and an error must be asked
// again. It implements playground.TokenService.
//
// A "not revoked" can never outlive a revocation made through the cache
// (RevokeToken) or announced to it (Forget): both drop the token's entry
// after the store has taken the revocation, and an answer read before
// that (a lookup still in flight) is not stored, because every
// revocation moves the cache to a new epoch.
type TokenCache struct {
	store playground.TokenService
	ttl   time.Duration
	now   func() time.Time

	mu        sync.Mutex
	epoch     uint64
	ok        map[string]cachedToken // jti → not revoked until
	nextSweep time.Time
}

type cachedToken struct {
	userID string
	until  time.Time
}

// NewTokenCache caches store's answers for ttl (RevocationCacheTTL when
// zero); now is the clock (time.Now when nil).
func NewTokenCache(store playground.TokenService, ttl time.Duration, now func() time.Time) *TokenCache {
	if ttl <= 0 {
		ttl = RevocationCacheTTL
	}
	if now == nil {
		now = time.Now
	}
	return &TokenCache{store: store, ttl: ttl, now: now, ok: map[string]cachedToken{}}
}

// IsTokenRevoked implements playground.TokenService.
func (c *TokenCache) IsTokenRevoked(ctx context.Context, jti, userID string) (bool, error) {
	c.mu.Lock()
	now := c.now()
	if e, hit := c.ok[jti]; hit && e.userID == userID && now.Before(e.until) {
		c.mu.Unlock()
		return false, nil
	}
	epoch := c.epoch
	c.mu.Unlock()

	revoked, err := c.store.IsTokenRevoked(ctx, jti, userID)
	if err != nil || revoked {
		return revoked, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == epoch { // no revocation since the lookup began
		c.ok[jti] = cachedToken{userID: userID, until: now.Add(c.ttl)}
		c.sweep(now)
	}
	return false, nil
}

// holds reports whether the cache has a "not revoked" answer for jti and
// userID that no revocation has dropped and whose TTL has not run out.
func (c *TokenCache) holds(jti, userID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, hit := c.ok[jti]
	return hit && e.userID == userID && c.now().Before(e.until)
}

// RevokeToken implements playground.TokenService: the store records the
// revocation, then the cache forgets the token, whatever the store said
// (a revocation it refused may still have reached another store).
func (c *TokenCache) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	err := c.store.RevokeToken(ctx, jti, expiresAt)
	c.Forget(jti)
	return err
}

// Forget drops what the cache knows of jti: another instance revoked it.
func (c *TokenCache) Forget(jti string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	delete(c.ok, jti)
}

// sweep drops expired entries, at most once per TTL, so the map holds
// about the tokens used within the last two TTLs. Called with mu held.
func (c *TokenCache) sweep(now time.Time) {
	if now.Before(c.nextSweep) {
		return
	}
	c.nextSweep = now.Add(c.ttl)
	for jti, e := range c.ok {
		if !now.Before(e.until) {
			delete(c.ok, jti)
		}
	}
}

// size is the number of cached answers (for tests).
func (c *TokenCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ok)
}
