package actors

import (
	"errors"
	"math/rand/v2"
	"time"
)

// Policy is the one place that decides how a response talks to its
// upstream: how many attempts, how long to wait between them, and how long
// each phase may stay silent. The provider SDKs' own retries are off, so
// every attempt is counted here, once.
type Policy struct {
	// MaxAttempts is how many upstream requests a response may make in all,
	// all before its first chunk (3).
	MaxAttempts int
	// BaseDelay is the first back-off when the upstream names no wait
	// (0.5 s); each later one doubles, with ±20 % jitter.
	BaseDelay time.Duration
	// FirstByte bounds the wait for the upstream's first byte of an
	// attempt (PROVIDER_FIRST_BYTE_TIMEOUT); such a timeout is retried.
	FirstByte time.Duration
	// Idle bounds the silence between chunks (PROVIDER_IDLE_TIMEOUT).
	Idle time.Duration
	// Total bounds a response from its start, retries and waits included
	// (PROVIDER_TOTAL_TIMEOUT).
	Total time.Duration
}

// DefaultPolicy is docs/api.md's: 3 attempts, 0.5 s then 1 s, 30 s / 20 s / 5 min.
func DefaultPolicy() Policy {
	return Policy{MaxAttempts: 3, BaseDelay: 500 * time.Millisecond,
		FirstByte: 30 * time.Second, Idle: 20 * time.Second, Total: 5 * time.Minute}
}

// Backoff returns the wait before attempt number next (2, 3, …) when the
// upstream named none.
func (p Policy) Backoff(next int) time.Duration {
	d := p.BaseDelay << max(next-2, 0)
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}

// Causes with which an attempt's or a response's context is cancelled, so
// the model actor can tell a timeout from a cancel from a shutdown.
var (
	errFirstByteTimeout = errors.New("no first byte from the provider in time")
	errIdleTimeout      = errors.New("the provider went silent mid-stream")
	errTotalTimeout     = errors.New("the response ran past its total time limit")
	errCancelled        = errors.New("cancelled by the user")
	errShutdown         = errors.New("the server shut down")
)
