package main

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/api"
	"github.com/playground-dev/playground/app"
	"github.com/playground-dev/playground/config"
)

// share makes s shareable and returns its token.
func (c *client) share(sessionID string) string {
	c.t.Helper()
	var out struct {
		ShareToken string `json:"shareToken"`
	}
	if code := c.do("POST", "/sessions/"+sessionID+"/share", nil, &out); code != 200 || out.ShareToken == "" {
		c.t.Fatalf("share: %d", code)
	}
	return out.ShareToken
}

// newTurn posts a follow-up ("followup") or a rerun of models ("rerun")
// of parentID and returns the new session.
func (c *client) newTurn(kind, parentID string, models ...string) *playground.Session {
	c.t.Helper()
	var out struct {
		Session *playground.Session `json:"session"`
		Error   map[string]any      `json:"error"`
	}
	body := map[string]any{"prompt": "and then?"}
	if kind == playground.KindRerun {
		body = map[string]any{"models": models}
	}
	if code := c.do("POST", "/sessions/"+parentID+"/"+kind, body, &out); code != 201 {
		c.t.Fatalf("%s: %d %v", kind, code, out.Error)
	}
	return out.Session
}

// awaitNext reads events until the next event of parentID and checks it
// names the new turn.
func (v *wsViewer) awaitNext(parentID string, turn *playground.Session) {
	v.t.Helper()
	for {
		ev := v.next(10 * time.Second)
		if ev.Type != playground.EventNext {
			continue
		}
		if ev.SessionID != parentID || ev.Seq != 0 || ev.Next == nil || ev.Next.SessionID != turn.ID || ev.Next.Kind != turn.Kind {
			v.t.Fatalf("next %+v (next %+v), want parent %s, turn %s (%s)", ev, ev.Next, parentID, turn.ID, turn.Kind)
		}
		return
	}
}

// noNextUntilPong asks for a pong and fails if a next event comes first.
// A new turn is announced on this instance before its POST is answered,
// so a next for this viewer would be queued ahead of the pong.
func (v *wsViewer) noNextUntilPong() {
	v.t.Helper()
	v.send(map[string]any{"type": "ping"})
	for {
		ev := v.next(10 * time.Second)
		switch ev.Type {
		case playground.EventNext:
			v.t.Fatalf("unexpected next %+v", ev.Next)
		case playground.EventPong:
			return
		}
	}
}

// awaitType reads events until one of type typ about sessionID.
func (v *wsViewer) awaitType(typ playground.EventType, sessionID string) {
	v.t.Helper()
	for {
		if ev := v.next(10 * time.Second); ev.Type == typ && ev.SessionID == sessionID {
			return
		}
	}
}

// follow subscribes to sessionID with its share token and follow, and
// waits until the subscription is confirmed.
func (v *wsViewer) follow(sessionID, token string) {
	v.t.Helper()
	v.send(map[string]any{"type": "subscribe", "sessionId": sessionID, "shareToken": token, "follow": true})
	v.awaitType(playground.EventSubscribed, sessionID)
}

// quickTurn starts a server whose upstream answers at once, and a
// session of one model for its owner.
func quickTurn(t *testing.T) (*testServer, *client, *playground.Session) {
	t.Helper()
	up := newFakeOpenAI(t, 3, 0)
	up.open()
	ts, owner := serveOwner(t, up)
	return ts, owner, owner.createSession("follow me", threeModels[0])
}

// TestFollowNextOnWebSocket: a share viewer who subscribes with follow
// hears of a rerun made while the turn runs and of a follow-up made after
// its done; a subscriber without follow hears of neither, and after an
// unsubscribe the follower hears of no more.
func TestFollowNextOnWebSocket(t *testing.T) {
	t.Parallel()
	up := newFakeOpenAI(t, 5, 0)
	ts, owner := serveOwner(t, up)
	s := owner.createSession("follow me", threeModels[:2]...)
	token := owner.share(s.ID)

	follower := ts.dialWS(t, "", nil)
	follower.follow(s.ID, token)
	plain := ts.dialWS(t, owner.token, nil)
	plain.send(map[string]any{"type": "subscribe", "sessionId": s.ID})
	plain.awaitType(playground.EventSubscribed, s.ID)
	waitFor(t, "the follow to be registered", func() bool { return ts.app.Hub.Followers() == 1 })

	// Before done: the turn is still held at the upstream's gate.
	rerun := owner.newTurn(playground.KindRerun, s.ID, threeModels[2])
	follower.awaitNext(s.ID, rerun)

	up.open()
	follower.untilDone(s.ID, 30*time.Second)
	plain.untilDone(s.ID, 30*time.Second)
	followup := owner.newTurn(playground.KindFollowup, s.ID)
	follower.awaitNext(s.ID, followup)
	plain.noNextUntilPong()

	// The share token covers the conversation: the follower may watch the
	// new turn it heard of.
	follower.send(map[string]any{"type": "subscribe", "sessionId": followup.ID, "shareToken": token})
	follower.untilDone(followup.ID, 30*time.Second)

	follower.send(map[string]any{"type": "unsubscribe", "sessionId": s.ID})
	follower.awaitType(playground.EventUnsubscribed, s.ID)
	owner.newTurn(playground.KindFollowup, s.ID)
	follower.noNextUntilPong()
	if n := ts.app.Hub.Followers(); n != 0 {
		t.Fatalf("%d follows still registered after the unsubscribe", n)
	}
}

// TestFollowEndsWithConnectionAndUnshare: a follow ends when its
// connection closes, and when an unshare kills the token it came with.
func TestFollowEndsWithConnectionAndUnshare(t *testing.T) {
	t.Parallel()
	ts, owner, s := quickTurn(t)
	token := owner.share(s.ID)
	first := ts.dialWS(t, "", nil)
	second := ts.dialWS(t, owner.token, nil)
	first.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "shareToken": token, "follow": true})
	second.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "follow": true})
	waitFor(t, "two follows", func() bool { return ts.app.Hub.Followers() == 2 })
	first.untilDone(s.ID, 30*time.Second)

	if code := owner.do("DELETE", "/sessions/"+s.ID+"/share", nil, nil); code != 204 {
		t.Fatalf("unshare: %d", code)
	}
	waitFor(t, "the share viewer's follow to end", func() bool { return ts.app.Hub.Followers() == 1 })
	turn := owner.newTurn(playground.KindFollowup, s.ID)
	second.awaitNext(s.ID, turn)
	first.noNextUntilPong()

	second.c.CloseNow()
	waitFor(t, "the closed connection's follow to end", func() bool { return ts.app.Hub.Followers() == 0 })
}

// TestFollowOnSSE: a stream opened with ?follow=1 on a turn that has ended
// stays open after done, sends next without an id line, and ends; without
// follow the stream ends at done as before.
func TestFollowOnSSE(t *testing.T) {
	t.Parallel()
	ts, owner, s := quickTurn(t)
	ws := ts.dialWS(t, owner.token, nil)
	ws.send(map[string]any{"type": "subscribe", "sessionId": s.ID})
	ws.untilDone(s.ID, 30*time.Second)

	plain, code := owner.readSSE("/sessions/"+s.ID+"/stream", nil, 0)
	if code != 200 || len(plain) == 0 || plain[len(plain)-1].Event != string(playground.EventDone) {
		t.Fatalf("stream without follow: %d %+v", code, plain)
	}

	got := make(chan []sseEvent, 1)
	go func() {
		evs, _ := owner.readSSE("/sessions/"+s.ID+"/stream?follow=1", nil, 0)
		got <- evs
	}()
	waitFor(t, "the stream's follow", func() bool { return ts.app.Hub.Followers() == 1 })
	select {
	case evs := <-got:
		t.Fatalf("the following stream ended before any next: %+v", evs)
	case <-time.After(100 * time.Millisecond):
	}
	turn := owner.newTurn(playground.KindFollowup, s.ID)
	var evs []sseEvent
	select {
	case evs = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the following stream did not end after next")
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Event)
	}
	if len(evs) != 3 || kinds[0] != "snapshot" || kinds[1] != "done" || kinds[2] != "next" {
		t.Fatalf("events %v, want snapshot, done, next", kinds)
	}
	if n := evs[2]; n.ID != "" || n.Data.SessionID != s.ID || n.Data.Next == nil || n.Data.Next.SessionID != turn.ID || n.Data.Next.Kind != playground.KindFollowup {
		t.Fatalf("next event %+v (next %+v)", n, n.Data.Next)
	}
	waitFor(t, "the stream's follow to end", func() bool { return ts.app.Hub.Followers() == 0 })

	if _, code := owner.readSSE("/sessions/"+s.ID+"/stream?follow=maybe", nil, 0); code != 400 {
		t.Fatalf("follow=maybe: %d, want 400", code)
	}
}

// TestFollowAcrossInstances: a share viewer on B follows a turn owned by
// A, hears of the follow-up its owner posts on A, and watches the new
// turn on B to done with the full texts.
func TestFollowAcrossInstances(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	up := newFakeOpenAI(t, 20, time.Millisecond)
	cl := newCluster(t, url, up.env(threeModels...))
	a, b := cl.start(t, "a"), cl.start(t, "b")
	owner := a.client(t).register()
	s := owner.createSession("follow across", threeModels[:2]...)
	token := owner.share(s.ID)

	viewer := b.dialWS(t, "", nil)
	viewer.follow(s.ID, token)
	waitFor(t, "the follow on B", func() bool { return b.app.Hub.Followers() == 1 })
	up.open()
	viewer.untilDone(s.ID, 30*time.Second)

	turn := owner.newTurn(playground.KindFollowup, s.ID)
	viewer.awaitNext(s.ID, turn)
	viewer.send(map[string]any{"type": "subscribe", "sessionId": turn.ID, "shareToken": token})
	texts, _ := replayView(t, viewer.untilDone(turn.ID, 30*time.Second))
	ownerOnB := b.client(t)
	ownerOnB.token = owner.token
	stored := ownerOnB.session(turn.ID)
	if stored.Status != playground.SessionComplete || len(stored.Responses) != 2 {
		t.Fatalf("the new turn ended %s with %d responses", stored.Status, len(stored.Responses))
	}
	for _, r := range stored.Responses {
		if r.Text != up.expectedText(strings.TrimPrefix(r.Model, "openai/")) || texts[r.ID] != r.Text {
			t.Errorf("%s on B: %q, stored %q", r.Model, texts[r.ID], r.Text)
		}
	}
}

// sseLines streams the lines of an SSE response on a channel, closed when
// the server ends the stream.
func (c *client) sseLines(path string) <-chan string {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	c.t.Cleanup(cancel)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil || resp.StatusCode != 200 {
		c.t.Fatalf("sse: %v %v", err, resp)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// TestFollowOnSSEPastALiveDone: a following stream of a running turn
// gets its done live, then keeps sending heartbeats until the follow-up's
// next, written without an id line, and ends.
func TestFollowOnSSEPastALiveDone(t *testing.T) {
	t.Parallel()
	up := newFakeOpenAI(t, 3, 0)
	ts := startServer(t, "sqlite", up.env(threeModels...), func(_ *config.Config, o *app.Options) {
		o.API = func(a *api.Options) { a.SSEHeartbeat = 20 * time.Millisecond }
	})
	owner := ts.client(t).register()
	s := owner.createSession("follow me", threeModels[0])
	lines := owner.sseLines("/sessions/" + s.ID + "/stream?follow=1")
	waitFor(t, "the stream's follow", func() bool { return ts.app.Hub.Followers() == 1 })
	up.open()
	await := func(want string) []string {
		t.Helper()
		var seen []string
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the stream ended before %q; after %q", want, seen)
				}
				seen = append(seen, l)
				if l == want {
					return seen
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no %q within 10 s", want)
			}
		}
	}
	await("event: done")
	await(": keep-alive")
	turn := owner.newTurn(playground.KindFollowup, s.ID)
	seen := await("event: next")
	if len(seen) < 2 || seen[len(seen)-2] != "" {
		t.Fatalf("next has a line of its own before it: %q", seen)
	}
	rest := []string{}
	for l := range lines {
		rest = append(rest, l)
	}
	if len(rest) < 1 || !strings.Contains(rest[0], turn.ID) {
		t.Fatalf("after next: %q, want its data naming %s and the end", rest, turn.ID)
	}
}
