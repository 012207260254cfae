// Package auth holds the stores that guard sign-in and credentials: the
// limiters of login and registration attempts (in memory for one
// instance, in Redis for several) and the Redis-backed record of revoked
// tokens that wraps the database's. The HTTP side of authentication
// (cookies, tokens, handlers) is in package api.
package auth

import (
	"context"
	"sync"
	"time"
)

// Limiter counts events per key in fixed windows. MemoryLimiter
// serves a single instance; RedisLimiter is shared by every instance, so
// that limits hold across instances. Errors mean the count
// could not be read or written; callers answer 503, never a pass.
type Limiter interface {
	// Hit counts one event for key and reports whether key is still within
	// its limit; when it is not, retryAfter is how long until it will be.
	// Counting and deciding are one atomic step, so n concurrent Hits
	// against a limit of k let exactly min(n, k) through.
	Hit(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
	// Undo takes back one event counted by Hit in the current window (a
	// reservation that was not used); it never takes a count below zero.
	Undo(ctx context.Context, key string) error
	// Reset forgets key's count (a successful login clears its failures).
	Reset(ctx context.Context, key string) error
}

// maxLimiterKeys bounds the memory of a MemoryLimiter. When a sweep of
// ended windows does not make room, arbitrary keys are dropped: under a
// flood of distinct keys some counts are forgotten early rather than the
// process running out of memory.
const maxLimiterKeys = 100_000

// MemoryLimiter allows limit events per key per window. A key that goes
// over stays refused until its window ends (the lockout lasts at most one
// window, never forever). It starts no goroutine: ended windows are swept
// while counting, at most once per window.
type MemoryLimiter struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu        sync.Mutex
	counts    map[string]*windowCount
	lastSweep time.Time
}

type windowCount struct {
	start time.Time
	n     int
}

// NewMemoryLimiter returns a limiter of limit events per window; now is the
// clock (nil: time.Now).
func NewMemoryLimiter(limit int, window time.Duration, now func() time.Time) *MemoryLimiter {
	if now == nil {
		now = time.Now
	}
	return &MemoryLimiter{limit: limit, window: window, now: now, counts: map[string]*windowCount{}}
}

// Hit implements Limiter.
func (l *MemoryLimiter) Hit(_ context.Context, key string) (bool, time.Duration, error) {
	ok, after := l.hit(key)
	return ok, after, nil
}

// Undo implements Limiter.
func (l *MemoryLimiter) Undo(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.counts[key]; c != nil && c.n > 0 {
		c.n--
	}
	return nil
}

// Reset implements Limiter.
func (l *MemoryLimiter) Reset(_ context.Context, key string) error {
	l.mu.Lock()
	delete(l.counts, key)
	l.mu.Unlock()
	return nil
}

func (l *MemoryLimiter) hit(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.counts[key]
	if c != nil && !now.Before(c.start.Add(l.window)) {
		delete(l.counts, key)
		c = nil
	}
	if c == nil {
		l.makeRoom(now)
		c = &windowCount{start: now}
		l.counts[key] = c
	}
	c.n++
	if c.n > l.limit {
		return false, c.start.Add(l.window).Sub(now)
	}
	return true, 0
}

// makeRoom sweeps ended windows (at most once per window, or when full)
// and drops arbitrary keys if the map is still full. Called with mu held.
func (l *MemoryLimiter) makeRoom(now time.Time) {
	full := len(l.counts) >= maxLimiterKeys
	if !full && now.Sub(l.lastSweep) < l.window {
		return
	}
	l.lastSweep = now
	for k, c := range l.counts {
		if !now.Before(c.start.Add(l.window)) {
			delete(l.counts, k)
		}
	}
	for k := range l.counts {
		if len(l.counts) < maxLimiterKeys {
			break
		}
		delete(l.counts, k)
	}
}

// size is the number of keys held (for tests).
func (l *MemoryLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.counts)
}
