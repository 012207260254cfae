package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/playground-dev/playground"
)

// argonParams are argon2id's cost settings. The defaults are OWASP's
// minimum for argon2id (19 MiB, 2 passes, 1 lane); a stored hash carries
// its own, so they can be raised later without breaking old passwords.
type argonParams struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	SaltLen int
	KeyLen  uint32
}

var defaultArgon = argonParams{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// argon returns defaultArgon with the cost the options lower, if any.
func (o Options) argon() argonParams {
	p := defaultArgon
	if o.PasswordMemoryKiB > 0 {
		p.Memory = o.PasswordMemoryKiB
	}
	if o.PasswordPasses > 0 {
		p.Time = o.PasswordPasses
	}
	return p
}

// Bounds on the hashing that may run at once, and on how long a request
// waits for its turn: each hash holds Memory KiB, so a login flood queues
// (and then gets 503) instead of exhausting memory.
const (
	maxConcurrentHashes = 4
	hashWaitTimeout     = 10 * time.Second
)

// hasher runs argon2id under a semaphore.
type hasher struct {
	params argonParams
	sem    chan struct{}
	// verifies counts password checks run (the throttle tests hold the
	// login limits to it).
	verifies atomic.Int64
}

func newHasher(p argonParams) *hasher {
	return &hasher{params: p, sem: make(chan struct{}, maxConcurrentHashes)}
}

// acquire waits for a hashing slot, honouring the request's context.
func (h *hasher) acquire(ctx context.Context) (release func(), err error) {
	t := time.NewTimer(hashWaitTimeout)
	defer t.Stop()
	select {
	case h.sem <- struct{}{}:
		return func() { <-h.sem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", errClientGone, ctx.Err())
	case <-t.C:
		return nil, playground.Errorf(playground.EUnavailable, "The server is busy; try again shortly.")
	}
}

// hash returns the PHC string of password with a fresh salt:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>, base64 without padding.
func (h *hasher) hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return h.hashNow(password), nil
}

// hashNow hashes without waiting for a slot; callers hold one, or run it
// once per process.
func (h *hasher) hashNow(password string) string {
	p := h.params
	salt := make([]byte, p.SaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go 1.24+)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// verify reports whether password matches the PHC string encoded, using
// the parameters stored in it and a constant-time comparison.
func (h *hasher) verify(ctx context.Context, password, encoded string) (bool, error) {
	p, salt, key, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	h.verifies.Add(1)
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

var errBadHash = errors.New("api: stored password hash is not an argon2id PHC string")

// parsePHC reads $argon2id$v=19$m=..,t=..,p=..$salt$key.
func parsePHC(s string) (argonParams, []byte, []byte, error) {
	var p argonParams
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory > 1<<20 {
		return p, nil, nil, errBadHash
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) == 0 || len(key) == 0 {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}

// HashPassword returns the argon2id PHC string of password with the
// server's parameters, for accounts made outside the HTTP API (the seed
// and user commands). It checks ValidatePassword's length rule.
func HashPassword(password string) (string, error) {
	if err := playground.ValidatePassword(password); err != nil {
		return "", err
	}
	return newHasher(defaultArgon).hashNow(password), nil
}
