package chatchunk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/openai/openai-go/v3/packages/ssestream"
)

// closeCounter counts the closes of a response body.
type closeCounter struct {
	io.Reader
	n int
}

func (c *closeCounter) Close() error { c.n++; return nil }

// events reads a whole stream: each chunk, then the error (as text, with
// its StreamError's event if it is one), and how often the body was closed
// by the end and after Close.
func events(s eventStream, body *closeCounter) []string {
	var out []string
	for s.Next() {
		out = append(out, fmt.Sprintf("%#v", s.Current()))
	}
	var se *ssestream.StreamError
	switch err := s.Err(); {
	case errors.As(err, &se):
		out = append(out, fmt.Sprintf("stream error %q in event %q %q", se.Message, se.Event.Type, se.Event.Data))
	case err != nil:
		out = append(out, "error "+err.Error())
	}
	// The stream closes its body as it ends, and stays ended.
	out = append(out, fmt.Sprintf("closed %d at the end", body.n), fmt.Sprintf("next after the end: %v", s.Next()))
	_ = s.Close()
	return append(out, fmt.Sprintf("closed %d after Close", body.n))
}

type eventStream interface {
	Next() bool
	Current() Chunk
	Err() error
	Close() error
}

func response(sse []byte) (*http.Response, *closeCounter) {
	body := &closeCounter{Reader: bytes.NewReader(sse)}
	return &http.Response{Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: body}, body
}

// TestStreamIsTheSDKStream pins what Stream takes over from the SDK's
// ssestream.Stream: on the recorded streams and on streams that end in
// each way, both give the same chunks, the same end and close the body once.
func TestStreamIsTheSDKStream(t *testing.T) {
	streams := map[string][]byte{
		"done":           []byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\ndata: {\"choices\":[]}\n\n"),
		"error key":      []byte("data: {\"choices\":[]}\n\ndata: {\"error\":{\"message\":\"overloaded\",\"code\":502}}\n\n"),
		"error not json": []byte("data: {\"error\": oops\n\n"),
		"invalid json":   []byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[\n\n"),
		"type error":     []byte("data: {\"choices\":[{\"index\":\"0\"}]}\n\n"),
		"thread event":   []byte("event: thread.message\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\nevent: thread.run\ndata: not json\n\n"),
		"multi-line":     []byte("data: {\"choices\":\ndata: [{\"delta\":{\"content\":\"a\"}}]}\n\n"),
		"comments only":  []byte(": keep-alive\n\n: keep-alive\n\n"),
		"no end":         []byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"),
	}
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "*.sse"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		streams[filepath.Base(name)] = b
	}
	for name, sse := range streams {
		t.Run(name, func(t *testing.T) {
			res, body := response(sse)
			want := events(ssestream.NewStream[Chunk](ssestream.NewDecoder(res), nil), body)
			res, body = response(sse)
			got := events(NewStream(ssestream.NewDecoder(res)), body)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Stream:\n%q\nthe SDK's ssestream.Stream:\n%q", got, want)
			}
		})
	}
	t.Run("no decoder", func(t *testing.T) {
		s := NewStream(nil)
		if s.Next() || s.Err() != nil || s.Close() != nil {
			t.Fatal("a stream without a decoder has an event or an error")
		}
	})
}
