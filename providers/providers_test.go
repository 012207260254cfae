package providers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/providers/providertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// genai's dependencies (cloud.google.com/go via opencensus) start
		// this worker from an init function; it is not ours to stop.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

// result is everything a stream delivered.
type result struct {
	text      string
	reasoning string
	deltas    int
	usage     playground.Usage
	finish    string
	err       error // nil when the stream ended with io.EOF
}

// drain reads s to its end and closes it.
func drain(t *testing.T, s playground.Stream) result {
	t.Helper()
	defer s.Close()
	var r result
	for i := 0; i < 10000; i++ {
		d, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return r
		}
		if err != nil {
			r.err = err
			return r
		}
		r.deltas++
		r.text += d.Text
		r.reasoning += d.Reasoning
		r.usage.Merge(d.Usage)
		if d.FinishReason != "" {
			r.finish = d.FinishReason
		}
	}
	t.Fatal("stream never ended")
	return r
}

// stream starts a request for model and drains it; a Stream error is
// returned as the result's error.
func stream(t *testing.T, p playground.Provider, model string, params playground.Params) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.Stream(ctx, playground.ProviderRequest{Model: model, Prompt: "Explain CRDTs in two sentences", System: "Be brief.", Params: params})
	if err != nil {
		return result{err: err}
	}
	return drain(t, s)
}

// httpErrorCase is an upstream that answers a request with an error, and
// how a provider must classify it.
type httpErrorCase struct {
	status     int
	header     string // Retry-After ("": none)
	body       string // JSON
	code       string
	retryable  bool
	retryAfter time.Duration // the wait the error carries
}

// testHTTPErrors streams model from a provider (made by newP on the
// upstream) against each case's answer, and checks the classified error,
// the status it keeps, and that the upstream was asked once.
func testHTTPErrors(t *testing.T, model string, newP func(t *testing.T, srv *providertest.Server) playground.Provider, cases []httpErrorCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			srv := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.header != "" {
					w.Header().Set("Retry-After", c.header)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.status)
				fmt.Fprint(w, c.body)
			}))
			_, err := newP(t, srv).Stream(context.Background(), playground.ProviderRequest{Model: model, Prompt: "hi"})
			pe := wantProviderError(t, err, c.code, c.retryable)
			if pe.RetryAfter != c.retryAfter || pe.Status != c.status {
				t.Fatalf("RetryAfter = %v, Status = %d; want %v, %d", pe.RetryAfter, pe.Status, c.retryAfter, c.status)
			}
			if n := len(srv.Requests()); n != 1 {
				t.Fatalf("%d upstream requests, want 1", n)
			}
		})
	}
}

// wantAnswer fails unless r is a whole answer: no error, text, and a
// natural stop.
func wantAnswer(t *testing.T, r result, text string) {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.text != text {
		t.Fatalf("text = %q, want %q", r.text, text)
	}
	if r.finish != playground.FinishStop {
		t.Fatalf("finish = %q", r.finish)
	}
}

func wantProviderError(t *testing.T, err error, code string, retryable bool) *playground.ProviderError {
	t.Helper()
	pe, ok := playground.AsProviderError(err)
	if !ok {
		t.Fatalf("err = %v (%T), want a *ProviderError %s", err, err, code)
	}
	if pe.Code != code || pe.Retryable != retryable {
		t.Fatalf("error = %s retryable=%v (%q), want %s retryable=%v", pe.Code, pe.Retryable, pe.Message, code, retryable)
	}
	if pe.Message == "" {
		t.Fatal("error has no message")
	}
	return pe
}

func wantInt(t *testing.T, name string, got *int64, want int64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s = nil, want %d", name, want)
	}
	if *got != want {
		t.Fatalf("%s = %d, want %d", name, *got, want)
	}
}

func wantNil[T any](t *testing.T, name string, got *T) {
	t.Helper()
	if got != nil {
		t.Fatalf("%s = %v, want nil", name, *got)
	}
}

// body decodes the JSON body of a recorded request.
func body(t *testing.T, r providertest.Request) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, r.Body)
	}
	return m
}

func intp(n int) *int           { return &n }
func floatp(f float64) *float64 { return &f }
