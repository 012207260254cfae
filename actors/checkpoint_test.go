package actors

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db"
	"github.com/playground-dev/playground/db/dbtest"
)

// textBytes counts, in every statement that writes (its SQL text and its
// arguments), the bytes of a
// response's text and reasoning: the model writes only "ж" and thinks
// only "λ", characters no id, status or SQL keyword holds.
type textBytes struct {
	mu      sync.Mutex
	n       int
	writes  int // statements that carried text
	waiters []byteWaiter
}

// byteWaiter is closed once the statements have carried n bytes of text.
type byteWaiter struct {
	n int
	c chan struct{}
}

// carried returns a channel closed once the statements have carried at
// least n bytes of text and reasoning: at once if they already have. (A
// wait for "the next statement" instead could wait forever: a checkpoint
// that has already written everything sent so far has no successor until
// more is sent.)
func (h *textBytes) carried(n int) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := make(chan struct{})
	if h.n >= n {
		close(c)
	} else {
		h.waiters = append(h.waiters, byteWaiter{n, c})
	}
	return c
}

func (h *textBytes) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (h *textBytes) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	// By the statement's own first word: bun calls every raw query a SELECT.
	if op, _, _ := strings.Cut(strings.TrimSpace(e.Query), " "); op != "INSERT" && op != "UPDATE" && op != "DELETE" {
		return
	}
	n := textIn(e.Query)
	for _, a := range e.QueryArgs { // the arguments of a prepared statement
		switch a := a.(type) {
		case string:
			n += textIn(a)
		case *string:
			if a != nil {
				n += textIn(*a)
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n += n
	if n > 0 {
		h.writes++
		waiting := h.waiters[:0]
		for _, w := range h.waiters {
			if h.n >= w.n {
				close(w.c)
			} else {
				waiting = append(waiting, w)
			}
		}
		h.waiters = waiting
	}
}

// textIn is how many bytes of s are the response's text and reasoning.
func textIn(s string) int {
	return len("ж")*strings.Count(s, "ж") + len("λ")*strings.Count(s, "λ")
}

func (h *textBytes) count() (int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n, h.writes
}

// Over a response's whole life, checkpoints and final row together write
// at most twice its final text: each checkpoint carries only what is new.
func TestCheckpointBytesLinear(t *testing.T) {
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			d := dbtest.MustOpenDB(t, dialect, db.Options{})
			hook := &textBytes{}
			d.AddQueryHook(hook)
			// Generous timeouts: the stream waits for checkpoints (below).
			r := newRigOn(t, d, Policy{MaxAttempts: 1, BaseDelay: 10 * time.Millisecond, FirstByte: 10 * time.Second, Idle: 15 * time.Second, Total: 60 * time.Second}, nil)
			r.engine.checkpointEvery = 10 * time.Millisecond

			var steps []step
			var text, reasoning strings.Builder
			for i := range 200 {
				st := step{text: strings.Repeat("ж", 512), wait: 2 * time.Millisecond}
				if i%10 == 0 {
					st.reasoning = strings.Repeat("λ", 64)
				}
				if i%40 == 39 {
					// However slow the database, at least five checkpoints
					// are written while the text grows: each of these steps
					// waits until everything sent before it is checkpointed.
					sent := text.Len() + reasoning.Len()
					st.hold = func() <-chan struct{} { return hook.carried(sent) }
				}
				text.WriteString(st.text)
				reasoning.WriteString(st.reasoning)
				steps = append(steps, st)
			}
			r.prov.scripts["long"] = []script{{steps: steps}}

			s, q := r.start("long")
			_, stored := r.wait(s, q)
			got := stored.Responses[0]
			if got.Status != playground.StatusComplete || got.Text != text.String() || got.Reasoning != reasoning.String() {
				t.Fatalf("stored %s, %d bytes of text and %d of reasoning; want complete, %d and %d",
					got.Status, len(got.Text), len(got.Reasoning), text.Len(), reasoning.Len())
			}
			final := text.Len() + reasoning.Len()
			written, writes := hook.count()
			t.Logf("%s: %d bytes written for a final %d (%.2f×), by %d statements", dialect, written, final, float64(written)/float64(final), writes)
			if writes < 5 { // the final row and at least four checkpoints
				t.Fatalf("only %d statements carried text: too few checkpoints to tell", writes)
			}
			if written > 2*final {
				t.Fatalf("%d bytes of text written for a final %d: more than twice", written, final)
			}
		})
	}
}
