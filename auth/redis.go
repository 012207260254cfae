package auth

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/internal/backoff"
)

// RedisLimiter counts events per key in fixed windows shared by every
// instance (INCR with an expiry set on the window's first event), so
// login and registration throttles hold however many instances serve.
// It implements Limiter.
type RedisLimiter struct {
	rdb    redis.UniversalClient
	prefix string
	limit  int64
	window time.Duration
}

// NewRedisLimiter allows limit events per key per window.
func NewRedisLimiter(rdb redis.UniversalClient, prefix string, limit int, window time.Duration) *RedisLimiter {
	return &RedisLimiter{rdb: rdb, prefix: prefix, limit: int64(limit), window: window}
}

// Hit counts one event and reports whether key is within its limit.
func (l *RedisLimiter) Hit(ctx context.Context, key string) (bool, time.Duration, error) {
	k := l.prefix + key
	pipe := l.rdb.TxPipeline()
	incr := pipe.Incr(ctx, k)
	pipe.ExpireNX(ctx, k, l.window)
	ttl := pipe.PTTL(ctx, k)
	if _, err := pipe.Exec(ctx); err != nil {
		return false, 0, err
	}
	if incr.Val() > l.limit {
		return false, max(ttl.Val(), time.Second), nil
	}
	return true, 0, nil
}

// undoScript takes back one event, never below zero, and never creates
// a key (one whose window has ended stays gone).
var undoScript = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then return redis.call('DECR', KEYS[1]) end
return 0`)

// Undo takes back one event counted by Hit (a reservation not used).
func (l *RedisLimiter) Undo(ctx context.Context, key string) error {
	return undoScript.Run(ctx, l.rdb, []string{l.prefix + key}).Err()
}

// Reset forgets key's count.
func (l *RedisLimiter) Reset(ctx context.Context, key string) error {
	return l.rdb.Del(ctx, l.prefix+key).Err()
}

// RedisTokens records revocations in the database and in Redis, each
// with the token's remaining life, and a token is revoked if either says
// so: a logout made while one of them was down still holds once it is
// back. A revocation the database could not take waits in an outbox and
// is written there when it answers again, so it lasts after Redis forgets
// it. A check fails only when neither answers, and the request then gets
// 503, never a pass.
//
// Its goroutine (the outbox's flush loop) is started by the first
// revocation the database refuses and ends when the outbox is empty or at
// Close, which waits for it.
type RedisTokens struct {
	db     playground.TokenService
	rdb    redis.UniversalClient
	prefix string
	log    *slog.Logger

	mu      sync.Mutex
	pending map[string]time.Time // jti → expiry, not yet in the database
	running bool
	stop    chan struct{}
	closed  bool
	wg      sync.WaitGroup
}

// NewRedisTokens wraps the database's token service.
func NewRedisTokens(db playground.TokenService, rdb redis.UniversalClient, prefix string, log *slog.Logger) *RedisTokens {
	if log == nil {
		log = slog.Default()
	}
	return &RedisTokens{db: db, rdb: rdb, prefix: prefix + "revoked:", log: log,
		pending: map[string]time.Time{}, stop: make(chan struct{})}
}

// RevokeToken implements playground.TokenService. It succeeds when either
// store took the revocation; what the database missed, it gets later.
func (t *RedisTokens) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	dbErr := t.db.RevokeToken(ctx, jti, expiresAt)
	ttl := time.Until(expiresAt)
	var rErr error
	if ttl > 0 {
		rErr = t.rdb.Set(ctx, t.prefix+jti, 1, ttl).Err()
	}
	switch {
	case dbErr != nil && rErr != nil:
		return errors.Join(dbErr, rErr)
	case dbErr != nil:
		t.later(jti, expiresAt)
	}
	return nil
}

// IsTokenRevoked implements playground.TokenService: revoked if Redis or
// the database says so; an error only when neither answers.
func (t *RedisTokens) IsTokenRevoked(ctx context.Context, jti, userID string) (bool, error) {
	n, rErr := t.rdb.Exists(ctx, t.prefix+jti).Result()
	if rErr == nil && n > 0 {
		return true, nil
	}
	revoked, err := t.db.IsTokenRevoked(ctx, jti, userID)
	switch {
	case err == nil:
		return revoked, nil
	case rErr == nil:
		return false, nil // Redis answered: not revoked as far as anyone can tell
	}
	return false, errors.Join(err, rErr)
}

// Rechecker is a token service that can check a token again right after
// it was found not revoked, from memory while nothing says it has been
// revoked since.
type Rechecker interface {
	RecheckToken(ctx context.Context, jti, userID string) (revoked bool, err error)
}

// RecheckToken implements Rechecker, for a live connection's check once
// its logout watch is registered (Hub.AddClient): while the TokenCache
// beneath still holds its "not revoked" answer, that is the answer, and
// Redis is not asked again. Every revocation this instance hears of drops
// the answer before it closes the token's connections (Hub.RevokeToken):
// its own logout (TokenCache.RevokeToken, and the revoke handler) and
// another instance's announcement (the revoke handler's Forget). So a
// revocation either finds the connection registered and closes it, or
// came before the registration and dropped the answer, and then this
// asks Redis and the database as IsTokenRevoked does.
func (t *RedisTokens) RecheckToken(ctx context.Context, jti, userID string) (bool, error) {
	if c, ok := t.db.(*TokenCache); ok && c.holds(jti, userID) {
		return false, nil
	}
	return t.IsTokenRevoked(ctx, jti, userID)
}

// later queues a revocation for the database and makes sure the flush
// loop runs.
func (t *RedisTokens) later(jti string, expiresAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		t.log.Error("redis tokens: revocation not recorded in the database (closing)", "jti", jti)
		return
	}
	t.pending[jti] = expiresAt
	if !t.running {
		t.running = true
		t.wg.Add(1)
		go t.flushLoop()
	}
}

// flushLoop writes queued revocations to the database, retrying with
// back-off (100 ms doubling to 2 s) until it answers; on Close it makes
// one last attempt and logs what is lost.
func (t *RedisTokens) flushLoop() {
	defer t.wg.Done()
	for failures := 0; ; failures++ {
		if t.flush() {
			return
		}
		if !backoff.Wait(t.stop, failures) {
			if !t.flush() {
				t.mu.Lock()
				t.log.Error("redis tokens: revocations not recorded in the database before closing", "count", len(t.pending))
				t.running = false
				t.mu.Unlock()
			}
			return
		}
	}
}

// flush writes every queued revocation; it reports true (and marks the
// loop stopped) when none is left.
func (t *RedisTokens) flush() bool {
	t.mu.Lock()
	work := make(map[string]time.Time, len(t.pending))
	for jti, exp := range t.pending {
		work[jti] = exp
	}
	t.mu.Unlock()
	for jti, exp := range work {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := t.db.RevokeToken(ctx, jti, exp)
		cancel()
		if err != nil {
			return false
		}
		t.mu.Lock()
		delete(t.pending, jti)
		t.mu.Unlock()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) > 0 {
		return false
	}
	t.running = false
	return true
}

// Close stops the flush loop (after one last attempt) and waits for it.
func (t *RedisTokens) Close() {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		close(t.stop)
	}
	t.mu.Unlock()
	t.wg.Wait()
}
