// Package redistest gives tests the Redis they share: the one named by
// PLAYGROUND_TEST_REDIS_URL. The scale-out tests run only when it is set
// (.ci/run sets it), and then a Redis that does not answer fails them.
// Each test keeps to a key prefix of its own (Prefix), so parallel tests
// and packages never meet.
package redistest

import (
	"context"
	"crypto/rand"
	"os"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// EnvURL names the environment variable holding the Redis URL.
const EnvURL = "PLAYGROUND_TEST_REDIS_URL"

// URL returns the shared Redis's URL, having checked that it answers; it
// skips the test when EnvURL is not set.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Skip(EnvURL + " is not set: the scale-out tests need Redis")
	}
	Client(t, u)
	return u
}

// Client connects to the Redis at url, closed when the test ends; a Redis
// that does not answer fails the test.
func Client(t testing.TB, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("%s does not answer: %v", EnvURL, err)
	}
	return c
}

// Prefix returns a key prefix of the test's own.
func Prefix() string { return "test:" + rand.Text()[:10] + ":" }

// RoundTrips counts the round trips of a Redis client it is added to
// (AddHook): each command, and each pipeline as one.
type RoundTrips struct{ n atomic.Int64 }

// Count is the round trips so far.
func (r *RoundTrips) Count() int64 { return r.n.Load() }

// Reset starts the count again.
func (r *RoundTrips) Reset() { r.n.Store(0) }

// DialHook implements redis.Hook.
func (r *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (r *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (r *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}
