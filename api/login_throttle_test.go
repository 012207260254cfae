package api

import (
	"crypto/rand"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/auth"
	"github.com/playground-dev/playground/db"
)

// eachLimiter runs fn with the in-memory limiters and, when
// PLAYGROUND_TEST_REDIS_URL is set, with the Redis ones every instance
// shares (a key prefix of the test's own).
func eachLimiter(t *testing.T, fn func(t *testing.T, e *restEnv)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) { fn(t, newEnv(t, db.DialectSQLite)) })
	u := os.Getenv("PLAYGROUND_TEST_REDIS_URL")
	if u == "" {
		return
	}
	t.Run("redis", func(t *testing.T) {
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(opt)
		t.Cleanup(func() { rdb.Close() })
		if err := rdb.Ping(bg).Err(); err != nil {
			t.Fatalf("PLAYGROUND_TEST_REDIS_URL does not answer: %v", err)
		}
		prefix := "test:" + rand.Text()[:10] + ":limit:"
		fn(t, newEnv(t, db.DialectSQLite, func(o *Options) {
			o.NewLimiter = func(name string, limit int, window time.Duration) auth.Limiter {
				return auth.NewRedisLimiter(rdb, prefix+name+":", limit, window)
			}
		}))
	})
}

func loginReq(email, password, remote string) restReq {
	return restReq{method: "POST", path: "/auth/login", remote: remote, body: map[string]string{"email": email, "password": password}}
}

// TestLoginSprayNeverOvershoots: one address spraying many emails at once
// gets at most the address limit of password checks. The attempt is
// counted before its hash runs, so parallel attempts cannot all pass the
// check before any is counted.
func TestLoginSprayNeverOvershoots(t *testing.T) {
	t.Parallel()
	eachLimiter(t, func(t *testing.T, e *restEnv) {
		const attempts = 300
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		start := make(chan struct{})
		for i := range attempts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				w := e.do(loginReq("spray"+strconv.Itoa(i)+"@example.com", "wrongpassword", "192.0.2.1:1234"))
				mu.Lock()
				codes[w.Code]++
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		checks := e.srv.auth.hasher.verifies.Load()
		if checks > loginFailuresPerAddress {
			t.Errorf("%d password checks from one address, limit %d", checks, loginFailuresPerAddress)
		}
		if codes[http.StatusUnauthorized] != loginFailuresPerAddress || codes[http.StatusTooManyRequests] != attempts-loginFailuresPerAddress {
			t.Errorf("answers %v, want %d × 401 and the rest 429", codes, loginFailuresPerAddress)
		}
	})
}

// TestLoginOwnerNotLockedOut: wrong guesses from one address lock that
// address out of the account, not the account's owner elsewhere. Only
// guesses from many addresses, past the much higher account-wide limit,
// lock the account itself.
func TestLoginOwnerNotLockedOut(t *testing.T) {
	t.Parallel()
	eachLimiter(t, func(t *testing.T, e *restEnv) {
		e.register("owner@example.com")
		attacker := "203.0.113.66:5000"
		for range loginFailuresPerPair {
			wantError(t, e.do(loginReq("owner@example.com", "wrongpassword", attacker)), http.StatusUnauthorized, playground.EUnauthorized)
		}
		// The attacker's address is locked out of the account, the right
		// password included.
		wantError(t, e.do(loginReq("owner@example.com", "password123", attacker)), http.StatusTooManyRequests, playground.ERateLimited)
		// The owner, from home, is not.
		if w := e.do(loginReq("owner@example.com", "password123", "198.51.100.7:1234")); w.Code != http.StatusOK {
			t.Fatalf("owner after %d wrong guesses elsewhere: %d %s", loginFailuresPerPair, w.Code, w.Body)
		}

		// A spread attack: many addresses, each under its own limits, add
		// up to the account-wide limit (the first attacker's guesses count
		// too); then the account is locked for all.
		before := e.srv.auth.hasher.verifies.Load()
		guesses := loginFailuresPerPair
		for a := 1; guesses < loginFailuresPerAccount; a++ {
			for range loginFailuresPerPair {
				if guesses == loginFailuresPerAccount {
					break
				}
				addr := "10.1." + strconv.Itoa(a/250) + "." + strconv.Itoa(a%250) + ":1"
				wantError(t, e.do(loginReq("owner@example.com", "wrongpassword", addr)), http.StatusUnauthorized, playground.EUnauthorized)
				guesses++
			}
		}
		wantError(t, e.do(loginReq("owner@example.com", "password123", "198.51.100.7:1234")), http.StatusTooManyRequests, playground.ERateLimited)
		if n := e.srv.auth.hasher.verifies.Load() - before; n != loginFailuresPerAccount-loginFailuresPerPair {
			t.Errorf("%d password checks in the spread attack, want %d", n, loginFailuresPerAccount-loginFailuresPerPair)
		}
	})
}
