package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawEvent is one event as a viewer received it: its type and seq, and
// its JSON exactly as sent.
type rawEvent struct {
	Type string `json:"type"`
	Seq  int64  `json:"seq"`
	raw  string
}

// logTail is the events of a view from seq after on, as the bytes a
// viewer got: control frames, presence and snapshots left out.
func logTail(evs []rawEvent) []rawEvent {
	var out []rawEvent
	for _, ev := range evs {
		switch ev.Type {
		case "subscribed", "presence", "snapshot":
			continue
		}
		out = append(out, ev)
	}
	return out
}

// resumeSeed is the seed of the cut points: PLAYGROUND_TEST_SEED replays
// a failed run; the seed in use is printed when a test fails.
func resumeSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PLAYGROUND_TEST_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PLAYGROUND_TEST_SEED: %v", err)
		}
		seed = n
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cut points seeded with %d (PLAYGROUND_TEST_SEED=%d replays them)", seed, seed)
		}
	})
	return seed
}

// rawWS is a WebSocket viewer that keeps the bytes of every event.
type rawWS struct {
	c   *websocket.Conn
	buf []rawEvent
}

func dialRawWS(t *testing.T, ts *testServer, token string) *rawWS {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("dial ws: %v", err)
	}
	c.SetReadLimit(16 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &rawWS{c: c}
}

// view subscribes from since and returns every event up to done.
func (v *rawWS) view(sessionID string, since int64) ([]rawEvent, error) {
	frame, _ := json.Marshal(map[string]any{"type": "subscribe", "sessionId": sessionID, "since": since})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := v.c.Write(ctx, websocket.MessageText, frame); err != nil {
		return nil, err
	}
	var out []rawEvent
	for {
		_, data, err := v.c.Read(ctx)
		if err != nil {
			return out, fmt.Errorf("after %d events: %w", len(out), err)
		}
		for _, line := range bytes.Split(data, []byte{'\n'}) {
			ev := rawEvent{raw: string(line)}
			if err := json.Unmarshal(line, &ev); err != nil {
				return out, err
			}
			if ev.Type == "error" {
				return out, fmt.Errorf("error event %s", line)
			}
			out = append(out, ev)
			if ev.Type == "done" {
				return out, nil
			}
		}
	}
}

// viewSSE opens the session's stream with Last-Event-ID since (none when
// since is 0) and returns its events until the server ends it.
func viewSSE(c *client, sessionID string, since int64) ([]rawEvent, error) {
	req, _ := http.NewRequest("GET", c.base+"/sessions/"+sessionID+"/stream", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	if since > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(since, 10))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("stream: %s", resp.Status)
	}
	var out []rawEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		ev := rawEvent{raw: data}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return out, err
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

// sameTail fails unless got is exactly want's events after seq since,
// byte for byte: no gap, no duplicate, nothing else.
func sameTail(t *testing.T, who string, since int64, want, got []rawEvent) {
	t.Helper()
	var expect []rawEvent
	for _, ev := range want {
		if ev.Seq > since {
			expect = append(expect, ev)
		}
	}
	got = logTail(got)
	if len(got) > 0 && got[0].Seq <= since {
		// A resume from before the whole view's snapshot: the events it
		// alone saw are checked for order, not bytes.
		for i, ev := range got {
			if i > 0 && ev.Seq != got[i-1].Seq+1 {
				t.Fatalf("%s: seq %d after %d", who, ev.Seq, got[i-1].Seq)
			}
		}
		for len(got) > 0 && got[0].Seq <= since {
			got = got[1:]
		}
	}
	if len(got) != len(expect) {
		t.Fatalf("%s from %d: %d events, want %d", who, since, len(got), len(expect))
	}
	for i := range got {
		if got[i].raw != expect[i].raw {
			t.Fatalf("%s from %d: event %d is\n%s\nwant\n%s", who, since, i, got[i].raw, expect[i].raw)
		}
	}
}

// TestResumeAtRandomCuts: for a demo comparison, a viewer that resumes at
// any point of its log (WebSocket since, SSE Last-Event-ID) ends with the
// same bytes as a viewer that watched it whole: no gap, no duplicate.
// While it runs, 100 viewers resume at cut points up to the seq reached;
// once it has ended, 100 more over each transport.
func TestResumeAtRandomCuts(t *testing.T) {
	t.Parallel()
	const cuts = 100
	rng := rand.New(rand.NewPCG(resumeSeed(t), 0))
	ts := startServer(t, "sqlite", map[string]string{"MODELS": "demo/fast,demo/steady"}, nil)
	owner := ts.client(t).register()
	var created struct {
		Session struct {
			ID string `json:"id"`
		} `json:"session"`
	}
	if code := owner.do("POST", "/sessions", map[string]any{"prompt": "Explain CRDTs",
		"models": []string{"demo/fast", "demo/steady"}}, &created); code != 201 {
		t.Fatalf("create: %d", code)
	}
	id := created.Session.ID

	// The whole view, and resumes while it runs: each at a cut up to the
	// seq the whole view has reached, launched as it goes.
	whole := dialRawWS(t, ts, owner.token)
	frame, _ := json.Marshal(map[string]any{"type": "subscribe", "sessionId": id, "since": 0})
	if err := whole.c.Write(t.Context(), websocket.MessageText, frame); err != nil {
		t.Fatal(err)
	}
	type resumed struct {
		since int64
		evs   []rawEvent
		err   error
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		running []resumed
		seen    []rawEvent
		last    int64
	)
	launched := 0
	for done := false; !done; {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		_, data, err := whole.c.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("whole view: %v", err)
		}
		for _, line := range bytes.Split(data, []byte{'\n'}) {
			ev := rawEvent{raw: string(line)}
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatal(err)
			}
			seen = append(seen, ev)
			if ev.Seq > last && ev.Type != "snapshot" {
				last = ev.Seq
			}
			done = done || ev.Type == "done"
		}
		// Launch a share of the running resumes at each frame, the rest at
		// the last; cuts are drawn from what is already in the log.
		for n := max(1, cuts/40); last > 0 && launched < cuts && (n > 0 || done); n-- {
			since := 1 + rng.Int64N(last)
			launched++
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := &rawWS{}
				c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws",
					&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + owner.token}}})
				if err == nil {
					c.SetReadLimit(16 << 20)
					v.c = c
					defer c.CloseNow()
				}
				var evs []rawEvent
				if err == nil {
					evs, err = v.view(id, since)
				}
				mu.Lock()
				running = append(running, resumed{since: since, evs: evs, err: err})
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	want := logTail(seen)
	if len(want) == 0 || want[len(want)-1].Type != "done" || want[len(want)-1].Seq != int64(len(want))+want[0].Seq-1 {
		t.Fatalf("the whole view is not a gapless log ending in done: %d events", len(want))
	}
	first := want[0].Seq // the whole view's snapshot may cover the first few events
	for _, r := range running {
		if r.err != nil {
			t.Fatalf("running resume from %d: %v", r.since, r.err)
		}
		if tail := logTail(r.evs); len(tail) == 0 || tail[0].Seq != r.since+1 {
			t.Fatalf("running resume from %d starts at %v", r.since, tail)
		}
		sameTail(t, "running WebSocket", max(r.since, first-1), want, r.evs)
	}
	t.Logf("%d resumes while running, log of %d events", len(running), last)

	// Ended: every cut from the first event the whole view saw.
	ws := dialRawWS(t, ts, owner.token)
	for range cuts {
		since := first + rng.Int64N(last-first) // first-1 < since < last: a real cut, done still to come
		if since < 1 {
			since = 1
		}
		evs, err := ws.view(id, since)
		if err != nil {
			t.Fatalf("WebSocket resume from %d: %v", since, err)
		}
		sameTail(t, "ended WebSocket", since, want, evs)
		evs, err = viewSSE(owner, id, since)
		if err != nil {
			t.Fatalf("SSE resume from %d: %v", since, err)
		}
		sameTail(t, "ended SSE", since, want, evs)
	}
}
