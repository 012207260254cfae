package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db/dbtest"
)

// viewerEnding is what a viewer was told of a session: each response's
// text, final status, error and metrics, and the session's final status.
type viewerEnding struct {
	texts   map[string]string
	status  map[string]string
	errs    map[string]string
	metrics map[string]string
	done    string
}

func endingOf(t *testing.T, evs []playground.WireEvent) viewerEnding {
	t.Helper()
	texts, _ := replayView(t, evs)
	v := viewerEnding{texts: texts, status: map[string]string{}, errs: map[string]string{}, metrics: map[string]string{}}
	for _, ev := range evs {
		switch ev.Type {
		case playground.EventStatus:
			v.status[ev.ResponseID] = ev.Status
			if len(ev.Error) > 0 && string(ev.Error) != "null" {
				v.errs[ev.ResponseID] = string(ev.Error)
			}
		case playground.EventMetrics:
			b, _ := json.Marshal(ev.Metrics)
			v.metrics[ev.ResponseID] = string(b)
		case playground.EventDone:
			v.done = ev.Status
		}
	}
	return v
}

// sameAsViewers fails unless the stored session says exactly what the
// viewers were told.
func sameAsViewers(t *testing.T, stored *playground.Session, v viewerEnding) {
	t.Helper()
	if stored.Status != v.done {
		t.Errorf("stored session %s, viewers got done %s", stored.Status, v.done)
	}
	for _, r := range stored.Responses {
		m, _ := json.Marshal(r.Metrics)
		e := ""
		if r.Error != nil {
			b, _ := json.Marshal(r.Error)
			e = string(b)
		}
		if r.Text != v.texts[r.ID] || r.Status != v.status[r.ID] || string(m) != v.metrics[r.ID] || e != v.errs[r.ID] {
			t.Errorf("%s stored %s %q (%d chars) metrics %s error %s;\n viewers saw %s %q (%d chars) metrics %s error %s",
				r.Model, r.Status, tail(r.Text), len(r.Text), m, e,
				v.status[r.ID], tail(v.texts[r.ID]), len(v.texts[r.ID]), v.metrics[r.ID], v.errs[r.ID])
		}
	}
}

func tail(s string) string {
	if len(s) > 24 {
		return "…" + s[len(s)-24:]
	}
	return s
}

// doneEvents counts the done entries of a session's Redis stream.
func doneEvents(t *testing.T, redisURL, prefix, sessionID string) int {
	t.Helper()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	msgs, err := c.XRange(context.Background(), prefix+"s:"+sessionID+":log", "-", "+").Result()
	if err != nil {
		t.Fatalf("read the session's stream: %v", err)
	}
	n := 0
	for _, m := range msgs {
		if m.Values["t"] == string(playground.EventDone) {
			n++
		}
	}
	return n
}

// TestDatabaseRestartMidStream: PostgreSQL is restarted while a
// three-model comparison streams, and every response ends while it is
// down. Viewers get done with the full texts at once; once the database
// is back, the stored session (read on the other instance) says exactly
// what the viewers saw, every response ended with its metrics, and the
// session's log holds one done, though both the owner and the other
// instance's recovery pass had a go at it.
func TestDatabaseRestartMidStream(t *testing.T) {
	url := redisURL(t)
	pg := dbtest.NewPGCluster(t)
	up := newFakeOpenAI(t, 100, 20*time.Millisecond)
	env := up.env(threeModels...)
	env["DATABASE_URL"] = pg.URL()
	cl := newCluster(t, url, env)
	cl.lease = time.Second
	a, b := cl.start(t, "a"), cl.start(t, "b")
	owner := a.client(t).register()
	onB := b.client(t)
	onB.token = owner.token

	s := owner.createSession("restart the database", threeModels...)
	va := a.dialWS(t, owner.token, nil)
	vb := b.dialWS(t, owner.token, nil)
	for _, v := range []*wsViewer{va, vb} {
		v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
	}
	awaitPresence(t, va, 2)
	up.open()
	time.Sleep(500 * time.Millisecond)
	pg.Stop()
	logA := va.untilDone(s.ID, 30*time.Second)
	logB := vb.untilDone(s.ID, 30*time.Second)
	pg.Start()

	seen := endingOf(t, logA)
	if got := endingOf(t, logB); !jsonEqual(got.texts, seen.texts) || got.done != seen.done {
		t.Fatalf("the viewers on A and B saw different endings")
	}
	for _, r := range s.Responses {
		if want := up.expectedText(r.Model[len("openai/"):]); seen.texts[r.ID] != want {
			t.Fatalf("%s: viewers got %d chars of %d", r.Model, len(seen.texts[r.ID]), len(want))
		}
	}
	// Give both writers (the owner's retries, B's recovery pass every half
	// lease) time to act, then read the stored session on B.
	var stored *playground.Session
	waitFor(t, "the stored session to end", func() bool {
		var out struct {
			Session *playground.Session `json:"session"`
		}
		if onB.do("GET", "/sessions/"+s.ID, nil, &out) != 200 {
			return false
		}
		stored = out.Session
		return stored.Status != playground.SessionRunning
	})
	time.Sleep(3 * cl.lease)
	stored = onB.session(s.ID)
	sameAsViewers(t, stored, seen)
	for _, r := range stored.Responses {
		if !r.Ended() || r.Metrics == nil {
			t.Errorf("%s stored %s with metrics %v", r.Model, r.Status, r.Metrics)
		}
	}
	if n := doneEvents(t, url, cl.prefix, s.ID); n != 1 {
		t.Errorf("the session's log holds %d done events, want 1", n)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
