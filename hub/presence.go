package hub

import "time"

// presenceState rate-limits presence events to one per presenceEvery.
type presenceState struct {
	dirty bool
	last  time.Time
	timer *time.Timer
}

// presenceEvery keeps presence events to at most four a second.
const presenceEvery = 250 * time.Millisecond
