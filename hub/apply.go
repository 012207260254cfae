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
