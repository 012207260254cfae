package actors

import (
	"sync"
	"time"

	"github.com/playground-dev/playground"
)

// Breakers keeps one circuit breaker per provider. A provider whose
// responses end in provider_error, timeout or rate_limited Failures times
// in a row cools down for Cooldown: its models are listed unavailable and
// its pending responses end provider_unavailable. After the cool-down the
// next response is the probe: if it completes the provider is closed
// again, if it fails the cool-down starts over. Other endings (a mistyped
// model, a refused key, a cancel) neither count nor reset, so one bad
// request cannot take a provider down.
type Breakers struct {
	mu       sync.Mutex
	failures int
	cooldown time.Duration
	now      func() time.Time
	state    map[string]*breaker
}

type breaker struct {
	failures  int
	openUntil time.Time
	probing   bool // the cool-down passed; the next ending decides
}

// NewBreakers returns breakers that open after failures failing responses
// in a row and stay open for cooldown.
func NewBreakers(failures int, cooldown time.Duration, now func() time.Time) *Breakers {
	if now == nil {
		now = time.Now
	}
	return &Breakers{failures: failures, cooldown: cooldown, now: now, state: map[string]*breaker{}}
}

// Cooling reports whether the provider's breaker is open now.
func (b *Breakers) Cooling(provider string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.state[provider]
	if !ok || st.openUntil.IsZero() {
		return false
	}
	if b.now().Before(st.openUntil) {
		return true
	}
	st.openUntil = time.Time{}
	st.probing = true
	return false
}

// Record counts how a response of the provider ended.
func (b *Breakers) Record(provider, status string, errCode string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.state[provider]
	if st == nil {
		st = &breaker{}
		b.state[provider] = st
	}
	switch {
	case status == playground.StatusComplete:
		st.failures, st.probing = 0, false
	case status == playground.StatusError && countsAsFailure(errCode):
		st.failures++
		if st.probing || st.failures >= b.failures {
			st.failures, st.probing = 0, false
			st.openUntil = b.now().Add(b.cooldown)
		}
	}
}

func countsAsFailure(code string) bool {
	return code == playground.RErrProviderError || code == playground.RErrTimeout || code == playground.RErrRateLimited
}
