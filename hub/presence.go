package hub

import "time"

// PresenceEvery keeps presence events to at most four a second.
const PresenceEvery = 250 * time.Millisecond

// PresenceThrottle holds back presence events so that a burst of
// subscribes and unsubscribes sends one event, at most one per
// PresenceEvery. It belongs to the goroutine that sends the events.
type PresenceThrottle struct {
	// Dirty says the viewer count may have changed since the last event.
	Dirty bool
	last  time.Time
	timer *time.Timer
}

// C fires when a pending presence event may be sent; it is nil when none
// is pending, so a select on it waits forever.
func (p *PresenceThrottle) C() <-chan time.Time {
	if !p.Dirty {
		return nil
	}
	if p.timer == nil {
		p.timer = time.NewTimer(max(PresenceEvery-time.Since(p.last), 0))
	}
	return p.timer.C
}

// Sent records that a presence event went out.
func (p *PresenceThrottle) Sent() { p.Dirty, p.timer, p.last = false, nil, time.Now() }
