package providers

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/playground-dev/playground"
)

// TestSDKStream: the one adapter every provider's stream goes through.
// A clean end after the answer said it was complete is io.EOF, before it
// a retryable provider_error; a failed read is the provider's to
// classify, told whether an event came first; after Close, Recv is
// context.Canceled, and Close is safe twice and releases the SDK's stream
// once.
func TestSDKStream(t *testing.T) {
	boom := errors.New("connection reset")
	newStream := func(events []string, final error) (*sdkStream[string], *int, *[]bool) {
		stops, starts := 0, []bool{}
		i := 0
		st := &sdkStream[string]{
			provider: playground.ProviderOpenAI,
			cancel:   func() {},
			next: func() (string, bool, error) {
				if i < len(events) {
					i++
					return events[i-1], true, nil
				}
				return "", false, final
			},
			stop: func() { stops++ },
			read: func(ev string) (playground.Delta, bool, error) {
				return playground.Delta{Text: ev}, ev == "end", nil
			},
			fail: func(err error, started bool) error { starts = append(starts, started); return err },
		}
		return st, &stops, &starts
	}
	recvAll := func(st *sdkStream[string]) (text string, err error) {
		for {
			d, err := st.Recv()
			if err != nil {
				return text, err
			}
			text += d.Text
		}
	}

	st, _, _ := newStream([]string{"a", "b", "end"}, nil)
	if text, err := recvAll(st); text != "abend" || err != io.EOF {
		t.Errorf("complete stream: %q, %v", text, err)
	}
	st, _, _ = newStream([]string{"a", "b"}, nil)
	var pe *playground.ProviderError
	if _, err := recvAll(st); !errors.As(err, &pe) || pe.Code != playground.RErrProviderError || !pe.Retryable {
		t.Errorf("truncated stream: %v", err)
	}
	st, _, starts := newStream(nil, boom)
	if _, err := recvAll(st); err != boom || len(*starts) != 1 || (*starts)[0] {
		t.Errorf("failed before any event: %v, started %v", err, *starts)
	}
	st, stops, starts := newStream([]string{"a"}, boom)
	if _, err := recvAll(st); err != boom || len(*starts) != 1 || !(*starts)[0] {
		t.Errorf("failed after an event: %v, started %v", err, *starts)
	}
	for range 2 {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Recv(); err != context.Canceled || *stops != 1 {
		t.Errorf("after Close: %v, stream released %d times", err, *stops)
	}
}
