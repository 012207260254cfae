package chatchunk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/tidwall/gjson"
)

// Stream is the SDK's ssestream.Stream[Chunk] with Decode in place of
// encoding/json: the same events, ends and errors from the same Decoder.
// Like the SDK's, it ends at a [DONE] event; an event with a top-level
// error key ends it with an *ssestream.StreamError; an event whose type
// starts with "thread." is decoded as the object {"event", "data"}; and it
// closes the decoder once it ends.
type Stream struct {
	dec       ssestream.Decoder
	cur       Chunk
	err       error
	done      bool
	closeOnce sync.Once
	closeErr  error
}

// NewStream reads the events of dec (nil: a stream with no event).
func NewStream(dec ssestream.Decoder) *Stream { return &Stream{dec: dec} }

// Next decodes the next event; false at the end of the stream or on an
// error (Err).
func (s *Stream) Next() bool {
	if s.err != nil {
		return s.finish(s.err)
	}
	if s.done || s.dec == nil {
		return false
	}
	if !s.dec.Next() {
		return s.finish(s.dec.Err())
	}
	ev := s.dec.Event()
	if bytes.HasPrefix(ev.Data, []byte("[DONE]")) {
		return s.finish(nil)
	}
	if ep := gjson.GetBytes(ev.Data, "error"); ep.Exists() {
		return s.finish(&ssestream.StreamError{
			Message: fmt.Sprintf("received error while streaming: %s", ep.String()),
			Event:   ev,
		})
	}
	data := ev.Data
	if strings.HasPrefix(ev.Type, "thread.") {
		var err error
		data, err = json.Marshal(map[string]any{"event": ev.Type, "data": json.RawMessage(data)})
		if err != nil {
			return s.finish(err)
		}
	}
	c, err := Decode(data)
	if err != nil {
		return s.finish(err)
	}
	s.cur = c
	return true
}

func (s *Stream) finish(err error) bool {
	s.err = err
	_ = s.Close()
	return false
}

// Current is the chunk Next decoded.
func (s *Stream) Current() Chunk { return s.cur }

// Err is the error that ended the stream; nil for a clean end.
func (s *Stream) Err() error { return s.err }

// Close closes the decoder, once.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		s.done = true
		if s.dec != nil {
			s.closeErr = s.dec.Close()
		}
	})
	return s.closeErr
}
