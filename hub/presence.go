package hub

import "time"

// presenceEvery keeps presence events to at most four a second.
const presenceEvery = 250 * time.Millisecond

// presenceThrottle holds back presence events so that a burst of
// subscribes and unsubscribes sends one event, at most one per
// presenceEvery. It belongs to the goroutine that sends the events.
type presenceThrottle struct {
	// Dirty says the viewer count may have changed since the last event.
	Dirty bool
	last  time.Time
	timer *time.Timer
}

// C fires when a pending presence event may be sent; it is nil when none
// is pending, so a select on it waits forever.
func (p *presenceThrottle) C() <-chan time.Time {
	if !p.Dirty {
		return nil
	}
	if p.timer == nil {
		p.timer = time.NewTimer(max(presenceEvery-time.Since(p.last), 0))
	}
	return p.timer.C
}

// Sent records that a presence event went out.
func (p *presenceThrottle) Sent() { p.Dirty, p.timer, p.last = false, nil, time.Now() }
