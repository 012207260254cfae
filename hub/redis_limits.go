package hub

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground"
)

// RedisLimiter counts events per key in fixed windows shared by every
// instance (INCR with an expiry set on the window's first event), so
// login and registration throttles hold however many instances serve.
// It has the method set of api.Limiter.
type RedisLimiter struct {
	rdb    *redis.Client
	prefix string
	limit  int64
	window time.Duration
}

// NewRedisLimiter allows limit events per key per window.
func NewRedisLimiter(rdb *redis.Client, prefix string, limit int, window time.Duration) *RedisLimiter {
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

// RedisTokens records revocations in the database (the source of truth)
// and in Redis, each with the token's remaining life. A check asks the
// database and, when it does not answer, Redis; only when neither answers
// does it fail, and the request gets 503, never a pass.
type RedisTokens struct {
	db     playground.TokenService
	rdb    *redis.Client
	prefix string
}

// NewRedisTokens wraps the database's token service.
func NewRedisTokens(db playground.TokenService, rdb *redis.Client, prefix string) *RedisTokens {
	return &RedisTokens{db: db, rdb: rdb, prefix: prefix + "revoked:"}
}

// RevokeToken implements playground.TokenService.
func (t *RedisTokens) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	dbErr := t.db.RevokeToken(ctx, jti, expiresAt)
	ttl := time.Until(expiresAt)
	var rErr error
	if ttl > 0 {
		rErr = t.rdb.Set(ctx, t.prefix+jti, 1, ttl).Err()
	}
	if dbErr != nil && rErr != nil {
		return errors.Join(dbErr, rErr)
	}
	return nil
}

// IsTokenRevoked implements playground.TokenService.
func (t *RedisTokens) IsTokenRevoked(ctx context.Context, jti string) (bool, error) {
	revoked, err := t.db.IsTokenRevoked(ctx, jti)
	if err == nil {
		return revoked, nil
	}
	n, rErr := t.rdb.Exists(ctx, t.prefix+jti).Result()
	if rErr != nil {
		return false, errors.Join(err, rErr)
	}
	return n > 0, nil
}
