package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/playground-dev/playground"
)

// checkWatched reads watch's output, one JSON event a line, and checks
// what a viewer relies on: a snapshot first (since 0), then every seq once
// and in order, done last, and per response the chunks adding up to the
// text the server stored.
func checkWatched(t *testing.T, out string, stored *playground.Session) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var events []playground.WireEvent
	for _, l := range lines {
		var ev playground.WireEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("a line that is not one JSON object: %q (%v)", l, err)
		}
		if ev.SessionID != stored.ID {
			t.Fatalf("an event of another session: %q", l)
		}
		events = append(events, ev)
	}
	if len(events) < 2 || events[0].Type != playground.EventSnapshot || events[len(events)-1].Type != playground.EventDone {
		t.Fatalf("want a snapshot first and done last, got %d events:\n%s", len(events), out)
	}
	// The snapshot holds what had streamed before watch subscribed (under
	// load, the first chunks may have); the chunks printed add the rest.
	seq := events[0].Seq
	texts := map[string]string{}
	if snap := events[0].Session; snap != nil {
		for _, r := range snap.Responses {
			texts[r.ID] = r.Text
		}
	}
	for _, ev := range events[1:] {
		if ev.Type == playground.EventPresence {
			continue
		}
		if ev.Seq != seq+1 {
			t.Fatalf("seq %d after %d: an event lost or printed twice\n%s", ev.Seq, seq, out)
		}
		seq = ev.Seq
		if ev.Type == playground.EventChunk {
			texts[ev.ResponseID] += ev.Text
		}
	}
	for _, r := range stored.Responses {
		if texts[r.ID] != r.Text || r.Text == "" {
			t.Errorf("%s: the snapshot and the chunks printed add up to %q, the server stored %q", r.Model, texts[r.ID], r.Text)
		}
	}
}

// TestWatchFollowsUntilDone runs `playground watch` as a person would,
// flags after the session id included.
func TestWatchFollowsUntilDone(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "sqlite", nil, nil)
	owner := ts.client(t).register()
	s := owner.createSession("Explain CRDTs in two sentences", "demo/fast", "demo/steady")
	var out, errOut lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := map[string]string{"PLAYGROUND_URL": ts.URL, "PLAYGROUND_TOKEN": owner.token}
	if err := run(ctx, []string{"watch", s.ID}, func(k string) string { return env[k] }, &out, &errOut); err != nil {
		t.Fatalf("watch: %v\n%s", err, errOut.String())
	}
	checkWatched(t, out.String(), owner.session(s.ID))

	// --text: the same answers, as text under their models' names.
	out = lockedBuffer{}
	if err := run(ctx, []string{"watch", "--url", ts.URL, s.ID, "--token", owner.token, "--text"}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("watch --text: %v", err)
	}
	for _, r := range owner.session(s.ID).Responses {
		if !strings.Contains(out.String(), "["+r.Model+"] "+r.Text+"\n") {
			t.Errorf("--text lacks %s's answer:\n%s", r.Model, out.String())
		}
	}
	if !strings.HasSuffix(out.String(), "[done: complete]\n") {
		t.Errorf("--text does not end with the session's end:\n%s", out.String())
	}
}

// cuttingClient dials through connections a test can cut, as a network
// failure would.
type cuttingClient struct {
	mu    sync.Mutex
	conns []net.Conn
	dials int
}

func (c *cuttingClient) client() *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err == nil {
			c.mu.Lock()
			c.conns = append(c.conns, conn)
			c.dials++
			c.mu.Unlock()
		}
		return conn, err
	}}}
}

func (c *cuttingClient) cut() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	n := len(c.conns)
	c.conns = nil
	return n
}

// TestWatchResumesAfterDrop: the connection is cut twice mid-stream; watch
// reconnects, resumes after the last seq it printed, and prints every
// event exactly once.
func TestWatchResumesAfterDrop(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "sqlite", nil, nil)
	owner := ts.client(t).register()
	s := owner.createSession("Tell me about resumable streams", "demo/steady", "demo/slow")
	cc := &cuttingClient{}
	var out, errOut lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	watched := make(chan error, 1)
	go func() {
		watched <- watch(ctx, watchOptions{URL: ts.URL, Token: owner.token, SessionID: s.ID, HTTPClient: cc.client()}, &out, &errOut)
	}()
	for _, after := range []int{5, 25} { // chunks printed before each cut
		waitFor(t, "chunks to be printed", func() bool { return strings.Count(out.String(), `"type":"chunk"`) >= after })
		if cc.cut() == 0 {
			t.Fatal("no connection to cut")
		}
	}
	if err := <-watched; err != nil {
		t.Fatalf("watch: %v\n%s", err, errOut.String())
	}
	stored := owner.session(s.ID)
	if stored.Status != playground.SessionComplete {
		t.Fatalf("the comparison ended %s before the test could cut it twice: the demo models are too fast for this test", stored.Status)
	}
	checkWatched(t, out.String(), stored)
	if n := strings.Count(errOut.String(), "resuming after seq"); n != 2 || cc.dials != 3 {
		t.Errorf("want two resumes over three connections, got %d resumes, %d dials:\n%s", n, cc.dials, errOut.String())
	}
}

// TestWatchShareAndRefusals: a share token alone is enough to watch; an
// unknown session or a bad token ends watch at once with the reason, and
// conflicting flags are refused.
func TestWatchShareAndRefusals(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "sqlite", nil, nil)
	owner := ts.client(t).register()
	s := owner.createSession("Share me", "demo/fast")
	var share struct {
		ShareToken string `json:"shareToken"`
	}
	if code := owner.do("POST", "/sessions/"+s.ID+"/share", nil, &share); code != 200 {
		t.Fatalf("share: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	none := func(string) string { return "" }
	var out, errOut lockedBuffer
	if err := run(ctx, []string{"watch", "--url", ts.URL, "--share", share.ShareToken, s.ID}, none, &out, &errOut); err != nil {
		t.Fatalf("watch --share: %v\n%s", err, errOut.String())
	}
	checkWatched(t, out.String(), owner.session(s.ID))

	for name, args := range map[string][]string{
		"not_found":           {"--token", owner.token, "s_nosuchsession"},
		"unauthorized":        {"--token", "not-a-token", s.ID},
		"exclude each other":  {"--token", owner.token, "--share", share.ShareToken, s.ID},
		"want one SESSION_ID": {"--token", owner.token},
		"want http://":        {"--url", "localhost:1", s.ID},
	} {
		start := time.Now()
		err := run(ctx, append([]string{"watch", "--url", ts.URL}, args...), none, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("watch %v: %v, want an error saying %q", args, err, name)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("watch %v: gave up after %s, want at once", args, took)
		}
	}
}
