package main

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/playground-dev/playground"
)

// blindHidden are the words no payload of a blind session of threeModels
// may hold before its reveal: the models' ids and names, and their
// provider.
var blindHidden = []string{"openai", "gpt-a", "gpt-b", "gpt-c"}

// transcript collects every byte a test received, to be scanned.
type transcript struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (tr *transcript) add(what string, b []byte) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.buf.WriteString("\n== " + what + "\n")
	tr.buf.Write(b)
}

// noModels fails if any byte received names a hidden word.
func (tr *transcript) noModels(t *testing.T) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	low := bytes.ToLower(tr.buf.Bytes())
	for _, w := range blindHidden {
		if i := bytes.Index(low, []byte(w)); i >= 0 {
			from, to := max(0, i-300), min(len(low), i+100)
			t.Errorf("a payload names %q before the reveal: …%s…", w, tr.buf.Bytes()[from:to])
		}
	}
}

// rawDo sends a request and records the answer's bytes.
func (c *client) rawDo(tr *transcript, method, path string, body any) (int, []byte) {
	c.t.Helper()
	resp, data := c.raw(method, path, body)
	tr.add(method+" "+path, data)
	return resp.StatusCode, data
}

// createBlind starts a blind comparison and returns it.
func (c *client) createBlind(tr *transcript, models ...string) *playground.Session {
	c.t.Helper()
	code, data := c.rawDo(tr, "POST", "/sessions", map[string]any{"prompt": "Explain CRDTs", "models": models, "blind": true})
	var out struct {
		Session *playground.Session `json:"session"`
	}
	if code != 201 || json.Unmarshal(data, &out) != nil {
		c.t.Fatalf("create blind: %d %s", code, data)
	}
	return out.Session
}

// awaitReveal reads events until the reveal of sessionID.
func (v *wsViewer) awaitReveal(sessionID string) playground.WireEvent {
	v.t.Helper()
	for {
		if ev := v.next(30 * time.Second); ev.Type == playground.EventReveal && ev.SessionID == sessionID {
			return ev
		}
	}
}

// checkReveal checks a reveal event names each response's model, with
// the tally given.
func checkReveal(t *testing.T, ev playground.WireEvent, stored *playground.Session, votes map[string]int) {
	t.Helper()
	if ev.Seq != 0 || len(ev.Responses) != len(stored.Responses) {
		t.Fatalf("reveal %+v", ev)
	}
	for i, col := range ev.Responses {
		r := stored.Responses[i]
		if col.ResponseID != r.ID || col.Label != r.Label || col.Model != r.Model || r.Model == "" {
			t.Errorf("reveal column %d: %+v, stored %s %s %s", i, col, r.ID, r.Label, r.Model)
		}
	}
	for k, n := range votes {
		if ev.Votes[k] != n {
			t.Errorf("tally %v, want %s: %d", ev.Votes, k, n)
		}
	}
}

// TestBlindPayloadsNameNoModel scans every byte of every REST, SSE and
// WebSocket answer about a blind session, to its owner, a signed-in share
// viewer and an anonymous one, before the reveal: none names a model or
// its provider. Then the votes' rules, and the reveal to the viewers
// still subscribed after done.
func TestBlindPayloadsNameNoModel(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dialect string) {
		up := newFakeOpenAI(t, 12, time.Millisecond)
		ts := startServer(t, dialect, up.env(threeModels...), nil)
		tr := &transcript{}
		owner := ts.client(t).register()
		s := owner.createBlind(tr, threeModels...)
		code, data := owner.rawDo(tr, "POST", "/sessions/"+s.ID+"/share", nil)
		var sh struct {
			ShareToken string `json:"shareToken"`
		}
		if code != 200 || json.Unmarshal(data, &sh) != nil {
			t.Fatalf("share: %d %s", code, data)
		}
		token := sh.ShareToken
		viewer := ts.client(t).register()
		anon := ts.client(t)

		ownerWS := ts.dialWS(t, owner.token, nil)
		ownerWS.send(map[string]any{"type": "subscribe", "sessionId": s.ID})
		ownerWS.awaitType(playground.EventSubscribed, s.ID)
		anonWS := ts.dialWS(t, "", nil)
		anonWS.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "shareToken": token})
		anonWS.awaitType(playground.EventSubscribed, s.ID)
		// A share holder's cancel is refused with an error event.
		anonWS.send(map[string]any{"type": "cancel", "sessionId": s.ID})

		sse := make(chan []byte, 1)
		go func() {
			_, b := anon.raw("GET", "/sessions/"+s.ID+"/stream?share="+token, nil)
			sse <- b
		}()
		awaitPresence(t, ownerWS, 3) // the SSE stream watches too
		// A vote from the first chunk on, while the session runs.
		code, data = viewer.rawDo(tr, "PUT", "/sessions/"+s.ID+"/vote?share="+token, map[string]any{"choice": playground.ChoiceTie})
		if code != 200 {
			t.Fatalf("signed-in viewer's vote: %d %s", code, data)
		}
		up.open()
		ownerWS.untilDone(s.ID, 30*time.Second)
		anonWS.untilDone(s.ID, 30*time.Second)
		select {
		case b := <-sse:
			tr.add("SSE", b)
		case <-time.After(30 * time.Second):
			t.Fatal("the SSE stream did not end at done")
		}

		stored := owner.session(s.ID)
		a, b := stored.Responses[0].ID, stored.Responses[1].ID
		for _, p := range []string{
			"/sessions/" + s.ID, "/sessions", "/sessions/" + s.ID + "/thread",
			"/sessions/" + s.ID + "/export?format=json", "/sessions/" + s.ID + "/export?format=md",
			"/sessions/" + s.ID + "/export?format=csv", "/sessions/" + s.ID + "/diff?a=" + a + "&b=" + b,
			"/stats/models",
		} {
			if code, data := owner.rawDo(tr, "GET", p, nil); code != 200 {
				t.Fatalf("GET %s: %d %s", p, code, data)
			}
		}
		anon.rawDo(tr, "GET", "/share/"+token, nil)
		anon.rawDo(tr, "GET", "/sessions/"+s.ID+"?share="+token, nil)
		anon.rawDo(tr, "GET", "/sessions/"+s.ID+"/thread?share="+token, nil)
		// A late viewer's snapshot.
		late := ts.dialWS(t, owner.token, nil)
		late.send(map[string]any{"type": "subscribe", "sessionId": s.ID})
		late.untilDone(s.ID, 30*time.Second)

		// Votes: the anonymous viewer cannot; the owner can.
		if code, _ := anon.rawDo(tr, "PUT", "/sessions/"+s.ID+"/vote?share="+token, map[string]any{"choice": "tie"}); code != 401 {
			t.Errorf("anonymous vote: %d, want 401", code)
		}
		if code, data := owner.rawDo(tr, "PUT", "/sessions/"+s.ID+"/vote", map[string]any{"choice": b}); code != 200 {
			t.Fatalf("owner's vote: %d %s", code, data)
		}
		for _, v := range []*wsViewer{ownerWS, anonWS, late} {
			tr.add("WebSocket", v.received())
		}
		tr.noModels(t)
		if t.Failed() {
			return
		}

		// The reveal reaches the viewers still subscribed, after done.
		stored = owner.session(s.ID)
		if stored.Revealed || stored.Responses[0].Model != "" {
			t.Fatalf("revealed before the owner asked: %+v", stored)
		}
		if code, data := owner.rawDo(tr, "POST", "/sessions/"+s.ID+"/reveal", nil); code != 200 {
			t.Fatalf("reveal: %d %s", code, data)
		}
		stored = owner.session(s.ID)
		want := map[string]int{b: 1, playground.ChoiceTie: 1, a: 0, playground.ChoiceAllBad: 0}
		checkReveal(t, ownerWS.awaitReveal(s.ID), stored, want)
		checkReveal(t, anonWS.awaitReveal(s.ID), stored, want)
		if code, _ := viewer.rawDo(tr, "PUT", "/sessions/"+s.ID+"/vote?share="+token, map[string]any{"choice": "tie"}); code != 409 {
			t.Errorf("vote after the reveal: %d, want 409", code)
		}
	})
}

// TestBlindRevealAcrossInstances: a blind session runs on A; a signed-in
// share viewer on B votes and watches; the owner reveals it on A while it
// still runs, and the viewer on B gets the reveal, with the tally.
func TestBlindRevealAcrossInstances(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	up := newFakeOpenAI(t, 10, time.Millisecond)
	cl := newCluster(t, url, up.env(threeModels...))
	a, b := cl.start(t, "a"), cl.start(t, "b")
	tr := &transcript{}
	owner := a.client(t).register()
	s := owner.createBlind(tr, threeModels[:2]...)
	token := owner.share(s.ID)

	viewer := b.client(t).register()
	ws := b.dialWS(t, viewer.token, nil)
	ws.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "shareToken": token})
	ws.awaitType(playground.EventSubscribed, s.ID)
	choice := s.Responses[1].ID
	if code, data := viewer.rawDo(tr, "PUT", "/sessions/"+s.ID+"/vote?share="+token, map[string]any{"choice": choice}); code != 200 {
		t.Fatalf("vote on B: %d %s", code, data)
	}
	// What B sent its viewer before the reveal (from the session's
	// follower there) names no model either.
	tr.add("WebSocket on B", ws.received())
	tr.noModels(t)
	if code, data := owner.rawDo(tr, "POST", "/sessions/"+s.ID+"/reveal", nil); code != 200 {
		t.Fatalf("reveal on A: %d %s", code, data)
	}
	ev := ws.awaitReveal(s.ID)
	up.open()
	ws.untilDone(s.ID, 30*time.Second)
	stored := owner.session(s.ID)
	checkReveal(t, ev, stored, map[string]int{choice: 1, playground.ChoiceTie: 0})
	if !stored.Revealed || stored.Responses[0].Model == "" {
		t.Fatalf("stored session after the reveal: %+v", stored)
	}
}
