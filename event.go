package playground

import "encoding/json"

// EventType names a live event or a WebSocket control message.
type EventType string

// Live events (docs/api.md, "Live events") and the WebSocket-only replies.
const (
	EventSnapshot     EventType = "snapshot"
	EventStatus       EventType = "status"
	EventChunk        EventType = "chunk"
	EventMetrics      EventType = "metrics"
	EventPresence     EventType = "presence"
	EventDone         EventType = "done"
	EventSubscribed   EventType = "subscribed"
	EventUnsubscribed EventType = "unsubscribed"
	EventPong         EventType = "pong"
	EventError        EventType = "error"
)

// SnapshotEvent carries the whole session as of Seq, the seq of the last
// event it covers (0 when none). It takes no seq of its own.
type SnapshotEvent struct {
	Type      EventType `json:"type"`
	SessionID string    `json:"sessionId"`
	Seq       int64     `json:"seq"`
	Session   *Session  `json:"session"`
}

// StatusEvent announces a response's status; while pending it may carry
// Retrying as the server backs off.
type StatusEvent struct {
	Type       EventType      `json:"type"`
	SessionID  string         `json:"sessionId"`
	Seq        int64          `json:"seq"`
	ResponseID string         `json:"responseId"`
	Model      string         `json:"model"`
	Status     string         `json:"status"`
	Error      *ResponseError `json:"error,omitempty"`
	Retrying   *Retrying      `json:"retrying,omitempty"`
}

// Retrying describes a back-off before the next upstream attempt.
type Retrying struct {
	Attempt int    `json:"attempt"`
	DelayMs int64  `json:"delayMs"`
	Reason  string `json:"reason"`
}

// ChunkEvent is a piece of a response's text; Index counts from 0 within
// the response.
type ChunkEvent struct {
	Type       EventType `json:"type"`
	SessionID  string    `json:"sessionId"`
	Seq        int64     `json:"seq"`
	ResponseID string    `json:"responseId"`
	Model      string    `json:"model"`
	Index      int       `json:"index"`
	Text       string    `json:"text"`
}

// MetricsEvent is sent exactly once per response, as it ends.
type MetricsEvent struct {
	Type       EventType `json:"type"`
	SessionID  string    `json:"sessionId"`
	Seq        int64     `json:"seq"`
	ResponseID string    `json:"responseId"`
	Model      string    `json:"model"`
	Metrics    *Metrics  `json:"metrics"`
}

// PresenceEvent counts viewers across instances. It is not part of the
// log: no seq, never replayed.
type PresenceEvent struct {
	Type      EventType `json:"type"`
	SessionID string    `json:"sessionId"`
	Viewers   int       `json:"viewers"`
}

// DoneEvent is the last event of a session.
type DoneEvent struct {
	Type      EventType `json:"type"`
	SessionID string    `json:"sessionId"`
	Seq       int64     `json:"seq"`
	Status    string    `json:"status"`
}

// SubscribedEvent confirms a WebSocket subscription; Seq is the session's
// latest seq when it took effect.
type SubscribedEvent struct {
	Type      EventType `json:"type"`
	SessionID string    `json:"sessionId"`
	Seq       int64     `json:"seq"`
}

// ErrorEvent is a WebSocket error reply, with a code of the error table.
type ErrorEvent struct {
	Type      EventType `json:"type"`
	Code      string    `json:"code"`
	Message   string    `json:"message"`
	SessionID string    `json:"sessionId,omitempty"`
}

// Frame is one encoded event: encoded once by whoever produced it, then the
// same bytes are shared by every viewer. Seq is 0 for events outside the
// log (presence, WebSocket replies) and for a snapshot, which takes no seq
// of its own; Covers is a snapshot's: the seq of the last event it covers.
type Frame struct {
	Seq       int64
	Covers    int64
	Type      EventType
	SessionID string
	Data      []byte
}

// LogID is the position in the session's log that a frame stands for, the
// one a client resumes from: a log event's own seq, or the seq a snapshot
// covers (0 when it covers nothing yet). ok is false for events outside
// the log (presence, next, reveal, replies), which have no position.
func (f Frame) LogID() (id int64, ok bool) {
	switch {
	case f.Seq > 0:
		return f.Seq, true
	case f.Type == EventSnapshot:
		return f.Covers, true
	default:
		return 0, false
	}
}

// EncodeFrame marshals an event into a Frame.
func EncodeFrame(typ EventType, sessionID string, seq int64, v any) Frame {
	data, err := json.Marshal(v)
	if err != nil {
		// Every event type above marshals; a failure is a programming error
		// that must not take the stream down, so it becomes an error event.
		data, _ = json.Marshal(ErrorEvent{Type: EventError, Code: EInternal, Message: "event could not be encoded", SessionID: sessionID})
		typ = EventError
	}
	return Frame{Seq: seq, Type: typ, SessionID: sessionID, Data: data}
}

// WireEvent decodes any server event, for clients and tests.
type WireEvent struct {
	Type       EventType       `json:"type"`
	SessionID  string          `json:"sessionId"`
	Seq        int64           `json:"seq"`
	ResponseID string          `json:"responseId"`
	Model      string          `json:"model"`
	Status     string          `json:"status"`
	Error      json.RawMessage `json:"error"`
	Retrying   *Retrying       `json:"retrying"`
	Index      int             `json:"index"`
	Text       string          `json:"text"`
	Metrics    *Metrics        `json:"metrics"`
	Session    *Session        `json:"session"`
	Viewers    int             `json:"viewers"`
	Code       string          `json:"code"`
	Message    string          `json:"message"`
}
