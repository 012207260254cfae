package hub

import (
	"encoding/json"

	"github.com/playground-dev/playground"
)

// Apply brings a stored session forward by one logged event, so that a
// snapshot can be built from the database's last checkpoint plus the
// events that came after it. Chunks are applied by index, so an event the
// checkpoint already covers is skipped rather than doubled. Reasoning has
// no stored index: a checkpoint writes it with the session's last seq in
// one transaction, and a final row holds all of it, so a reasoning event
// applies only when it is newer than every seq seen so far and its
// response has not ended.
func Apply(s *playground.Session, f playground.Frame) {
	var ev playground.WireEvent
	if json.Unmarshal(f.Data, &ev) != nil {
		return
	}
	fresh := f.Seq > s.LastSeq
	if fresh {
		s.LastSeq = f.Seq
	}
	if ev.Type == playground.EventDone {
		s.Status = ev.Status
		return
	}
	r := s.Response(ev.ResponseID)
	if r == nil {
		return
	}
	switch ev.Type {
	case playground.EventChunk:
		if ev.Index == r.NextIndex {
			r.Text += ev.Text
			r.NextIndex++
		}
	case playground.EventReasoning:
		if fresh && !r.Ended() {
			r.Reasoning += ev.Text
		}
	case playground.EventStatus:
		if !r.Ended() {
			r.Status = ev.Status
			if len(ev.Error) > 0 && string(ev.Error) != "null" {
				var e playground.ResponseError
				if json.Unmarshal(ev.Error, &e) == nil {
					r.Error = &e
				}
			}
		}
	case playground.EventMetrics:
		if r.Metrics == nil {
			r.Metrics = ev.Metrics
		}
	}
}

// Extend applies frames to s in seq order, skipping those s already
// covers (at or below s.LastSeq). It stops and reports false at a gap: a
// frame that is not the next after s.LastSeq, which would leave s
// claiming a seq whose events it lacks.
func Extend(s *playground.Session, frames []playground.Frame) bool {
	for _, f := range frames {
		if f.Seq <= s.LastSeq {
			continue
		}
		if f.Seq != s.LastSeq+1 {
			return false
		}
		Apply(s, f)
	}
	return true
}

// FromLog returns the session as its event log tells it after frames,
// which must be the log from its first event (seq 1) with no gap; ok is
// false when they are not. What the log defines (each response's text,
// thinking, status, error and metrics; the session's status and last seq)
// comes from frames alone, over a copy of s rewound to before its first
// event; the rest is s's. Overlay it on a freshly stored session to get a
// snapshot: as of its LastSeq, it holds every event up to that seq and
// none after it, which stored rows cannot promise (a final row is
// committed before the events that end its response, and a checkpoint may
// land between the reads of one session). Extend brings it forward.
func FromLog(s *playground.Session, frames []playground.Frame) (*playground.Session, bool) {
	c := s.Clone()
	c.Status, c.LastSeq = playground.SessionRunning, 0
	for _, r := range c.Responses {
		r.Status, r.Text, r.Reasoning, r.NextIndex, r.Error, r.Metrics = playground.StatusPending, "", "", 0, nil, nil
	}
	if !Extend(c, frames) {
		return nil, false
	}
	return c, true
}

// Overlay returns stored with what logged, a state built by FromLog and
// Extend, says of the log: each response's text, thinking, status and
// next index, its error and metrics (stored's, when both have ended it,
// since an event may carry them redacted), and the session's status and
// last seq. Everything else (sharing, reveal, votes, ratings) is stored's.
func Overlay(stored, logged *playground.Session) *playground.Session {
	c := stored.Clone()
	c.Status, c.LastSeq = logged.Status, logged.LastSeq
	for i, r := range c.Responses {
		l := logged.Response(r.ID)
		if l == nil {
			continue
		}
		ended := r.Ended()
		r.Status, r.Text, r.Reasoning, r.NextIndex = l.Status, l.Text, l.Reasoning, l.NextIndex
		if !ended || !l.Ended() {
			r.Error, r.Metrics = l.Error, l.Metrics
		}
		c.Responses[i] = r
	}
	return c
}
