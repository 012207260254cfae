package playground

import "encoding/json"

// EventType names a live event or a WebSocket control message.
type EventType string

// Live events (docs/api.md, "Live events") and the WebSocket-only replies.
const (
	EventSnapshot     EventType = "snapshot"
	EventStatus       EventType = "status"
	EventChunk        EventType = "chunk"
	EventReasoning    EventType = "reasoning"
	EventMetrics      EventType = "metrics"
	EventPresence     EventType = "presence"
	EventDone         EventType = "done"
	EventNext         EventType = "next"
	EventReveal       EventType = "reveal"
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
	Model      ModelRef       `json:"model"`
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
	Model      ModelRef  `json:"model"`
	Index      int       `json:"index"`
	Text       string    `json:"text"`
}

// ReasoningEvent is a piece of a response's visible thinking; Index is its
// own count from 0 within the response, apart from the chunks'.
type ReasoningEvent ChunkEvent

// MetricsEvent is sent exactly once per response, as it ends.
type MetricsEvent struct {
	Type       EventType `json:"type"`
	SessionID  string    `json:"sessionId"`
	Seq        int64     `json:"seq"`
	ResponseID string    `json:"responseId"`
	Model      ModelRef  `json:"model"`
	Metrics    *Metrics  `json:"metrics"`
}

// PresenceEvent counts viewers across instances. It is not part of the
// log: no seq, never replayed.
type PresenceEvent struct {
	Type      EventType `json:"type"`
	SessionID string    `json:"sessionId"`
	Viewers   int       `json:"viewers"`
}

// NextEvent tells a viewer who follows SessionID that a new turn was made
// from it. It is not part of the log: no seq, never replayed.
type NextEvent struct {
	Type      EventType `json:"type"`
	SessionID string    `json:"sessionId"`
	Next      NextTurn  `json:"next"`
}

// NextTurn names the new turn: its session id and kind (followup, rerun).
type NextTurn struct {
	SessionID string `json:"sessionId"`
	Kind      string `json:"kind"`
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
//
// Frames are made by the constructors below, one per event kind, which
// state the session and seq once. Ends marks the frames after which a
// viewer's subscription to SessionID is over: done, and an error that cuts
// the viewer off (a revoked share token). An SSE stream ends after one.
type Frame struct {
	Seq       int64
	Covers    int64
	Type      EventType
	SessionID string
	Data      []byte
	Ends      bool
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

// StatusFrame is the log event of a response's status.
func StatusFrame(sessionID string, seq int64, e StatusEvent) Frame {
	e.Type, e.SessionID, e.Seq = EventStatus, sessionID, seq
	return EncodeFrame(e.Type, sessionID, seq, e)
}

// ChunkFrame is the log event of a piece of a response's text.
func ChunkFrame(sessionID string, seq int64, e ChunkEvent) Frame {
	e.Type, e.SessionID, e.Seq = EventChunk, sessionID, seq
	return EncodeFrame(e.Type, sessionID, seq, e)
}

// ReasoningFrame is the log event of a piece of a response's visible
// thinking.
func ReasoningFrame(sessionID string, seq int64, e ReasoningEvent) Frame {
	e.Type, e.SessionID, e.Seq = EventReasoning, sessionID, seq
	return EncodeFrame(e.Type, sessionID, seq, e)
}

// MetricsFrame is the log event of a response's metrics, as it ends.
func MetricsFrame(sessionID string, seq int64, e MetricsEvent) Frame {
	e.Type, e.SessionID, e.Seq = EventMetrics, sessionID, seq
	return EncodeFrame(e.Type, sessionID, seq, e)
}

// DoneFrame is the last log event of a session; it ends every
// subscription to it.
func DoneFrame(sessionID string, seq int64, status string) Frame {
	f := EncodeFrame(EventDone, sessionID, seq, DoneEvent{Type: EventDone, SessionID: sessionID, Seq: seq, Status: status})
	f.Ends = true
	return f
}

// LogFrame is a log event read back from where it was stored (a broker's
// stream) by its type and bytes; a done ends subscriptions, as DoneFrame's.
func LogFrame(sessionID string, seq int64, typ EventType, data []byte) Frame {
	return Frame{Seq: seq, Type: typ, SessionID: sessionID, Data: data, Ends: typ == EventDone}
}

// SnapshotFrame is the whole of s as of the seq it covers; it takes no
// seq of its own.
func SnapshotFrame(s *Session, covers int64) Frame {
	f := EncodeFrame(EventSnapshot, s.ID, 0, SnapshotEvent{Type: EventSnapshot, SessionID: s.ID, Seq: covers, Session: s})
	f.Covers = covers
	return f
}

// PresenceFrame counts a session's viewers; it is not part of the log.
func PresenceFrame(sessionID string, viewers int) Frame {
	return EncodeFrame(EventPresence, sessionID, 0, PresenceEvent{Type: EventPresence, SessionID: sessionID, Viewers: viewers})
}

// NextFrame tells the followers of parentID of the turn next made from it;
// it is not part of the log.
func NextFrame(parentID string, next NextTurn) Frame {
	return EncodeFrame(EventNext, parentID, 0, NextEvent{Type: EventNext, SessionID: parentID, Next: next})
}

// SubscribedFrame is the WebSocket's confirmation of a subscription, seq
// being the session's latest when it took effect.
func SubscribedFrame(sessionID string, seq int64) Frame {
	return EncodeFrame(EventSubscribed, sessionID, 0, SubscribedEvent{Type: EventSubscribed, SessionID: sessionID, Seq: seq})
}

// CutOffFrame tells a viewer who came with a share token that has been
// revoked that the session is gone for them; it ends the subscription.
func CutOffFrame(sessionID string) Frame {
	return ErrorFrame(sessionID, Errorf(ENotFound, "This session is no longer shared."))
}

// ErrorFrame is a coded error that ends the viewer's subscription to the
// session: it can no longer be followed for them.
func ErrorFrame(sessionID string, err error) Frame {
	f := ReplyErrorFrame(sessionID, err)
	f.Ends = true
	return f
}

// ReplyErrorFrame is the WebSocket's coded answer to one client frame
// (sessionID, when the frame named one, is told back); it ends nothing.
func ReplyErrorFrame(sessionID string, err error) Frame {
	return EncodeFrame(EventError, sessionID, 0, ErrorEvent{Type: EventError,
		Code: ErrorCode(err), Message: ErrorMessage(err), SessionID: sessionID})
}

// EncodeFrame marshals an event into a Frame; the constructors above use
// it, and replies without a kind of their own (pong, unsubscribed).
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
	Type       EventType        `json:"type"`
	SessionID  string           `json:"sessionId"`
	Seq        int64            `json:"seq"`
	ResponseID string           `json:"responseId"`
	Model      string           `json:"model"`
	Status     string           `json:"status"`
	Error      json.RawMessage  `json:"error"`
	Retrying   *Retrying        `json:"retrying"`
	Index      int              `json:"index"`
	Text       string           `json:"text"`
	Metrics    *Metrics         `json:"metrics"`
	Session    *Session         `json:"session"`
	Viewers    int              `json:"viewers"`
	Next       *NextTurn        `json:"next"`
	Responses  []RevealedColumn `json:"responses"`
	Votes      map[string]int   `json:"votes"`
	Code       string           `json:"code"`
	Message    string           `json:"message"`
}
