package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/actors"
	"github.com/playground-dev/playground/api"
	"github.com/playground-dev/playground/app"
	"github.com/playground-dev/playground/config"
	"github.com/playground-dev/playground/db/dbtest"
)

// eachDialect runs fn against SQLite, and PostgreSQL when configured.
func eachDialect(t *testing.T, fn func(t *testing.T, dialect string)) {
	for _, d := range dbtest.Dialects() {
		t.Run(d, func(t *testing.T) { fn(t, d) })
	}
}

var threeModels = []string{"openai/gpt-a", "openai/gpt-b", "openai/gpt-c"}

// TestLiveComparison is the core promise: three models stream to two
// WebSocket viewers and one SSE viewer, who all see the same events, seq
// 1..n without gaps, chunks that add up to the stored text, done last.
func TestLiveComparison(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dialect string) {
		up := newFakeOpenAI(t, 30, 2*time.Millisecond)
		ts := startServer(t, dialect, up.env(threeModels...), nil)
		owner := ts.client(t).register()
		s := owner.createSession("Explain CRDTs in two sentences", threeModels...)
		if s.Status != playground.SessionRunning || len(s.Responses) != 3 {
			t.Fatalf("created session: %+v", s)
		}
		for _, r := range s.Responses {
			if r.Status != playground.StatusPending || r.Text != "" || r.Metrics != nil {
				t.Fatalf("new response not pending and empty: %+v", r)
			}
		}

		// Everyone subscribes before the upstream says a word.
		var viewers []*wsViewer
		for range 2 {
			v := ts.dialWS(t, owner.token, nil)
			v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
			if ev := v.next(5 * time.Second); ev.Type != playground.EventSubscribed || ev.Seq != 0 {
				t.Fatalf("first frame %+v, want subscribed at seq 0", ev)
			}
			if ev := v.next(5 * time.Second); ev.Type != playground.EventSnapshot || ev.Seq != 0 || ev.Session == nil {
				t.Fatalf("second frame %+v, want snapshot at seq 0", ev)
			}
			viewers = append(viewers, v)
		}
		sseOut := make(chan []sseEvent, 1)
		go func() {
			evs, _ := owner.readSSE("/sessions/"+s.ID+"/stream", nil, 0)
			sseOut <- evs
		}()
		waitFor(t, "three viewers", func() bool { return viewerCount(viewers[0]) == 3 })
		if got := metric(t, ts, "playground_live_viewers"); got != "3" {
			t.Errorf("/metrics shows %s live viewers, want 3", got)
		}
		up.open()

		a := viewers[0].untilDone(s.ID, 30*time.Second)
		b := viewers[1].untilDone(s.ID, 30*time.Second)
		var c []playground.WireEvent
		for _, e := range <-sseOut {
			if e.Event == string(playground.EventPresence) {
				if e.ID != "" {
					t.Errorf("presence carries an SSE id %q", e.ID)
				}
				continue
			}
			if e.Event == string(playground.EventSnapshot) {
				continue
			}
			if e.ID != strconv.FormatInt(e.Data.Seq, 10) || e.Event != string(e.Data.Type) {
				t.Errorf("SSE id %q / event %q do not match the data %+v", e.ID, e.Event, e.Data)
			}
			c = append(c, e.Data)
		}
		checkLog(t, a)
		if !sameEvents(a, b) || !sameEvents(a, c) {
			t.Fatalf("viewers saw different events:\nws1 %d events\nws2 %d\nsse %d", len(a), len(b), len(c))
		}

		// After done, GET is final and the chunks add up to its text.
		final := owner.session(s.ID)
		if final.Status != playground.SessionComplete {
			t.Fatalf("final status %q", final.Status)
		}
		texts := chunkTexts(a)
		for _, r := range final.Responses {
			_, model, _ := playground.SplitModelID(r.Model)
			if r.Status != playground.StatusComplete || r.Text != up.expectedText(model) || texts[r.ID] != r.Text {
				t.Errorf("%s: status %s text %q, chunks %q", r.Model, r.Status, r.Text, texts[r.ID])
			}
			m := r.Metrics
			if m == nil || m.TTFTMs == nil || m.PromptTokens == nil || *m.PromptTokens != 14 || m.CompletionTokens == nil ||
				*m.CompletionTokens != 30 || m.Attempts != 1 || m.FinishReason != playground.FinishStop || m.TokensPerSecond == nil {
				t.Errorf("%s metrics %+v", r.Model, m)
			}
		}

		// A late joiner gets a snapshot of the whole session, then done.
		late := ts.dialWS(t, owner.token, nil)
		late.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
		evs := late.untilDone(s.ID, 5*time.Second)
		if len(evs) != 3 || evs[0].Type != playground.EventSubscribed || evs[1].Type != playground.EventSnapshot || evs[2].Type != playground.EventDone {
			t.Fatalf("late joiner got %v", types(evs))
		}
		done := a[len(a)-1]
		if evs[1].Seq != done.Seq-1 || evs[2].Seq != done.Seq || evs[0].Seq != done.Seq {
			t.Fatalf("late joiner seqs: subscribed %d snapshot %d done %d, want %d/%d/%d", evs[0].Seq, evs[1].Seq, evs[2].Seq, done.Seq, done.Seq-1, done.Seq)
		}
		for _, r := range evs[1].Session.Responses {
			if r.Text != texts[r.ID] || r.Status != playground.StatusComplete {
				t.Errorf("late snapshot %s: %q", r.Model, r.Text)
			}
		}
	})
}

// viewerCount returns the latest presence count a viewer has seen,
// keeping the other events it reads ahead for next.
func viewerCount(v *wsViewer) int {
	for {
		select {
		case ev := <-v.events:
			if ev.Type == playground.EventPresence {
				v.lastPresence = ev.Viewers
			} else {
				v.pending = append(v.pending, ev)
			}
		default:
			return v.lastPresence
		}
	}
}

// metric reads one unlabelled value from /metrics.
func metric(t *testing.T, ts *testServer, name string) string {
	t.Helper()
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// checkLogFrom checks the log of a viewer that subscribed before the first
// event: its subscribed and snapshot frames, then seq 1..n.
func checkLogFrom(t *testing.T, evs []playground.WireEvent) {
	t.Helper()
	for len(evs) > 0 && (evs[0].Type == playground.EventSubscribed || evs[0].Type == playground.EventSnapshot) {
		evs = evs[1:]
	}
	checkLog(t, evs)
}

// checkLog asserts the shape of one viewer's log: seq 1..n without gaps,
// chunk and reasoning indexes 0, 1, 2 … per response, each its own count,
// streaming before the first of either, metrics then the final status
// after the last, done last.
func checkLog(t *testing.T, evs []playground.WireEvent) {
	t.Helper()
	// The next index of each response's chunks, and of its reasoning.
	next := map[playground.EventType]map[string]int{playground.EventChunk: {}, playground.EventReasoning: {}}
	streaming := map[string]bool{}
	ended := map[string]bool{}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d (%s)", i, ev.Seq, ev.Type)
		}
		switch ev.Type {
		case playground.EventStatus:
			if ev.Status == playground.StatusStreaming {
				streaming[ev.ResponseID] = true
			}
			if ev.Status == playground.StatusComplete && !ended[ev.ResponseID] {
				t.Fatalf("final status of %s before its metrics", ev.ResponseID)
			}
		case playground.EventChunk, playground.EventReasoning:
			if !streaming[ev.ResponseID] || ended[ev.ResponseID] {
				t.Fatalf("%s of %s outside streaming", ev.Type, ev.ResponseID)
			}
			if want := next[ev.Type][ev.ResponseID]; ev.Index != want {
				t.Fatalf("%s index %d, want %d", ev.Type, ev.Index, want)
			}
			next[ev.Type][ev.ResponseID]++
		case playground.EventMetrics:
			ended[ev.ResponseID] = true
		case playground.EventDone:
			if i != len(evs)-1 {
				t.Fatal("done is not last")
			}
		}
	}
	if evs[len(evs)-1].Type != playground.EventDone {
		t.Fatal("no done")
	}
}

func sameEvents(a, b []playground.WireEvent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Seq != b[i].Seq || a[i].Type != b[i].Type || a[i].Text != b[i].Text || a[i].Status != b[i].Status || a[i].ResponseID != b[i].ResponseID {
			return false
		}
	}
	return true
}

func chunkTexts(evs []playground.WireEvent) map[string]string {
	out := map[string]string{}
	for _, ev := range evs {
		if ev.Type == playground.EventChunk {
			out[ev.ResponseID] += ev.Text
		}
	}
	return out
}

func types(evs []playground.WireEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Type))
	}
	return out
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSSEResume: a viewer that drops after some events and comes back
// with Last-Event-ID continues with no gap and no duplicate.
func TestSSEResume(t *testing.T) {
	t.Parallel()
	up := newFakeOpenAI(t, 40, 3*time.Millisecond)
	_, owner := serveOwner(t, up)
	s := owner.createSession("resume me", threeModels...)
	up.open()
	first, code := owner.readSSE("/sessions/"+s.ID+"/stream", nil, 15)
	if code != 200 || len(first) == 0 || first[0].Event != "snapshot" {
		t.Fatalf("stream: %d, first event %+v", code, first)
	}
	last := first[len(first)-1].ID
	rest, _ := owner.readSSE("/sessions/"+s.ID+"/stream", http.Header{"Last-Event-Id": {last}}, 0)
	var all []playground.WireEvent
	for _, e := range append(first, rest...) {
		if e.Event != string(playground.EventPresence) {
			all = append(all, e.Data)
		}
	}
	texts, lastSeq := replayView(t, all)
	for _, r := range owner.session(s.ID).Responses {
		if texts[r.ID] != r.Text || r.Text == "" {
			t.Errorf("%s: resumed text %q, stored %q", r.Model, texts[r.ID], r.Text)
		}
	}
	// ?since= works the same way, and past the end the stream just ends.
	again, _ := owner.readSSE("/sessions/"+s.ID+"/stream?since="+strconv.FormatInt(lastSeq, 10), nil, 0)
	if len(again) != 0 {
		t.Fatalf("resume after done sent %d events", len(again))
	}
}

// replayView plays a viewer's events as a client would: a snapshot sets
// the texts as of its seq, later events must follow with no gap and no
// duplicate, and done comes last. It returns the texts and the last seq.
func replayView(t *testing.T, evs []playground.WireEvent) (map[string]string, int64) {
	t.Helper()
	texts := map[string]string{}
	var seq int64
	for i, ev := range evs {
		switch ev.Type {
		case playground.EventSubscribed:
			continue
		case playground.EventSnapshot:
			for _, r := range ev.Session.Responses {
				texts[r.ID] = r.Text
			}
			seq = ev.Seq
			continue
		}
		if ev.Seq != seq+1 {
			t.Fatalf("event %d (%s) has seq %d after %d", i, ev.Type, ev.Seq, seq)
		}
		seq = ev.Seq
		if ev.Type == playground.EventChunk {
			texts[ev.ResponseID] += ev.Text
		}
		if ev.Type == playground.EventDone && i != len(evs)-1 {
			t.Fatal("done is not last")
		}
	}
	if len(evs) == 0 || evs[len(evs)-1].Type != playground.EventDone {
		t.Fatal("no done at the end")
	}
	return texts, seq
}

// TestSlowViewerDropped: a viewer that stops reading is cut off (1008)
// while the others finish on time.
func TestSlowViewerDropped(t *testing.T) {
	// In parallel: the fast viewer's 30 s is a limit a broadcaster that
	// waits on the slow viewer misses by far (a 2 s write timeout for
	// each of hundreds of events), not a measure of a quiet machine.
	t.Parallel()
	up := newFakeOpenAI(t, 400, time.Millisecond)
	up.size = 2 << 10
	smallBuffers.Store(t.Name(), true)
	ts := startServer(t, "sqlite", up.env("openai/gpt-big"), func(_ *config.Config, o *app.Options) {
		o.API = func(a *api.Options) { a.QueueSize, a.WriteTimeout = 64, 2*time.Second }
	})
	owner := ts.client(t).register()
	s := owner.createSession("flood", "openai/gpt-big")
	slow, _, err := ts.dialWSWith(t, owner.token, nil, smallReadBufferClient())
	if err != nil {
		t.Fatal(err)
	}
	fast := ts.dialWS(t, owner.token, nil)
	slow.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
	fast.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
	// The slow viewer's reader stops: nothing drains its socket.
	slow.stopReading()
	waitFor(t, "both viewers subscribed", func() bool { return viewerCount(fast) == 2 })
	up.open()
	start := time.Now()
	evs := fast.untilDone(s.ID, 60*time.Second)
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("the fast viewer needed %v", took)
	}
	t.Logf("fast viewer done after %v", time.Since(start))
	checkLogFrom(t, evs)
	err = slow.closeReason(30 * time.Second)
	t.Logf("slow viewer closed after %v: %v", time.Since(start), err)
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.StatusPolicyViolation {
		t.Fatalf("slow viewer closed with %v, want 1008", ce.Code)
	}
	if err == nil {
		t.Fatal("slow viewer was not dropped")
	}
}

// TestQuotaRace: concurrent creates against a quota never overspend it.
// On each database, 20 at once against a quota of 5 give exactly five
// 201s and fifteen 402s. Over Redis, two instances on one database take
// 1,000 at once against a quota of 100: exactly 100 succeed, the rest are
// 402, and the database agrees (nothing remains, and exactly 100
// comparisons are stored).
func TestQuotaRace(t *testing.T) {
	// Not in parallel: a thousand requests at once keep both cores busy
	// for seconds, and the streams of the tests beside it would wait.
	eachDialect(t, func(t *testing.T, dialect string) {
		ts := startServer(t, dialect, map[string]string{"QUOTA_FREE_PER_DAY": "5", "MODELS": "demo/fast"}, nil)
		quotaRace(t, []*testServer{ts}, 20, 5)
	})
	t.Run("two instances over Redis", func(t *testing.T) {
		c := newCluster(t, redisURL(t), map[string]string{"QUOTA_FREE_PER_DAY": "100", "MODELS": "demo/fast",
			"MAX_CONNECTIONS_PER_ADDRESS": "4000"})
		quotaRace(t, []*testServer{c.start(t, "a"), c.start(t, "b")}, 1000, 100)
	})
}

// quotaRace registers a fresh account and sends n concurrent creates for
// it, spread over servers, against a quota of quota; it checks that
// exactly quota succeed, the rest are 402, and the database agrees.
func quotaRace(t *testing.T, servers []*testServer, n, quota int) {
	t.Helper()
	owner := servers[0].client(t).register()
	clients := make([]*client, len(servers))
	for i, ts := range servers {
		clients[i] = ts.client(t)
		clients[i].token = owner.token
		clients[i].hc = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	}
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// maxTokens 1: each comparison ends at once, so that hundreds
			// of them do not outlive the test.
			code := clients[i%len(clients)].do("POST", "/sessions", map[string]any{"prompt": "hi",
				"models": []string{"demo/fast"}, "params": map[string]any{"maxTokens": 1}}, nil)
			mu.Lock()
			counts[code]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if counts[201] != quota || counts[402] != n-quota {
		t.Fatalf("got %v, want %d × 201 and %d × 402", counts, quota, n-quota)
	}
	var me struct {
		User playground.User `json:"user"`
	}
	owner.do("GET", "/auth/me", nil, &me)
	if me.User.Quota.Remaining != 0 {
		t.Fatalf("remaining %d", me.User.Quota.Remaining)
	}
	stored := 0
	for cursor := ""; ; {
		var page struct {
			Sessions   []json.RawMessage `json:"sessions"`
			NextCursor *string           `json:"nextCursor"`
		}
		if code := owner.do("GET", "/sessions?limit=100&cursor="+url.QueryEscape(cursor), nil, &page); code != 200 {
			t.Fatalf("list: %d", code)
		}
		stored += len(page.Sessions)
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if stored != quota {
		t.Fatalf("%d comparisons stored, %d charged", stored, quota)
	}
}

// TestStrangers: another user's session is 404 everywhere; a foreign
// Origin is refused before the upgrade.
func TestStrangers(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "sqlite", nil, nil)
	owner := ts.client(t).register()
	other := ts.client(t).register()
	s := owner.createSession("mine", "demo/fast")
	for _, req := range []struct{ method, path string }{
		{"GET", "/sessions/" + s.ID}, {"POST", "/sessions/" + s.ID + "/cancel"}, {"POST", "/sessions/" + s.ID + "/share"},
		{"DELETE", "/sessions/" + s.ID + "/share"}, {"GET", "/sessions/" + s.ID + "/stream"},
		{"POST", "/sessions/" + s.ID + "/responses/" + s.Responses[0].ID + "/cancel"},
	} {
		var out struct {
			Error struct{ Code string } `json:"error"`
		}
		if code := other.do(req.method, req.path, nil, &out); code != 404 || out.Error.Code != "not_found" {
			t.Errorf("%s %s by a stranger: %d %q", req.method, req.path, code, out.Error.Code)
		}
	}
	v := ts.dialWS(t, other.token, nil)
	v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
	if ev := v.next(5 * time.Second); ev.Type != playground.EventError || ev.Code != "not_found" || ev.SessionID != s.ID {
		t.Fatalf("stranger's subscribe: %+v", ev)
	}
	v.send(map[string]any{"type": "cancel", "sessionId": s.ID})
	if ev := v.next(5 * time.Second); ev.Type != playground.EventError || ev.Code != "not_found" {
		t.Fatalf("stranger's cancel: %+v", ev)
	}
	// A malformed frame gets an error and the connection stays up.
	if err := v.c.Write(t.Context(), websocket.MessageText, []byte("{nope")); err != nil {
		t.Fatal(err)
	}
	if ev := v.next(5 * time.Second); ev.Type != playground.EventError || ev.Code != "invalid_request" {
		t.Fatalf("malformed frame: %+v", ev)
	}
	v.send(map[string]any{"type": "ping"})
	if ev := v.next(5 * time.Second); ev.Type != playground.EventPong {
		t.Fatalf("ping: %+v", ev)
	}

	_, resp, err := ts.tryDialWS(t, owner.token, http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("foreign origin: err %v resp %v", err, resp)
	}
	if _, _, err := ts.tryDialWS(t, owner.token, http.Header{"Origin": {ts.URL}}); err != nil {
		t.Fatalf("same origin refused: %v", err)
	}
}

// TestBreakerOverHTTP: after repeated provider failures the provider's
// models are listed cooling_down and a new comparison asking for them is
// refused with 400 model_unavailable.
func TestBreakerOverHTTP(t *testing.T) {
	t.Parallel()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte(`{"error":{"message":"upstream unavailable"}}`))
	}))
	t.Cleanup(broken.Close)
	ts := startServer(t, "sqlite", map[string]string{
		"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": broken.URL + "/v1", "MODELS": "openai/gpt-4o-mini,demo/fast",
		"PROVIDER_BREAKER_FAILURES": "2", "PROVIDER_BREAKER_COOLDOWN": "1m",
	}, func(_ *config.Config, o *app.Options) {
		o.Engine = func(e *actors.Options) { e.Policy.BaseDelay = time.Millisecond }
	})
	owner := ts.client(t).register()
	for range 2 {
		s := owner.createSession("fail", "openai/gpt-4o-mini")
		v := ts.dialWS(t, owner.token, nil)
		v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
		v.untilDone(s.ID, 20*time.Second)
	}
	var models struct {
		Models []playground.Model `json:"models"`
	}
	ts.client(t).do("GET", "/models", nil, &models)
	for _, m := range models.Models {
		if m.ID == "openai/gpt-4o-mini" && (m.Available || m.UnavailableReason == nil || *m.UnavailableReason != "cooling_down") {
			t.Fatalf("after two failures: %+v", m)
		}
	}
	var out struct {
		Error struct {
			Code    string         `json:"code"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	code := owner.do("POST", "/sessions", map[string]any{"prompt": "again", "models": []string{"openai/gpt-4o-mini"}}, &out)
	if code != 400 || out.Error.Code != "model_unavailable" || out.Error.Details["model"] != "openai/gpt-4o-mini" {
		t.Fatalf("create while cooling down: %d %+v", code, out.Error)
	}
}

// TestGracefulShutdown: on a shutdown signal the server lets a running
// comparison finish, then closes WebSockets with 1001 and returns nil.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	up := newFakeOpenAI(t, 20, 25*time.Millisecond)
	ts := startServer(t, "sqlite", up.env("openai/gpt-short"), nil)
	owner := ts.client(t).register()
	s := owner.createSession("finish me", "openai/gpt-short")
	v := ts.dialWS(t, owner.token, nil)
	v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
	v.next(5 * time.Second)
	up.open()
	ts.stop() // as SIGTERM would

	evs := v.untilDone(s.ID, 15*time.Second)
	if last := evs[len(evs)-1]; last.Status != playground.SessionComplete {
		t.Fatalf("the running comparison ended %q during shutdown", last.Status)
	}
	var ce websocket.CloseError
	if err := v.closeReason(15 * time.Second); !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
		t.Fatalf("WebSocket closed with %v, want 1001", err)
	}
	ts.Stop(t) // serve returned nil: what exit status 0 means
	texts, _ := replayView(t, evs)
	if texts[s.Responses[0].ID] != up.expectedText("gpt-short") {
		t.Fatalf("text during shutdown: %q", texts[s.Responses[0].ID])
	}
}

// TestRestartEndsOrphans: a session left running by a server that died is
// ended as interrupted when the server starts again, keeping its text and
// giving back the run of a response that had produced nothing.
func TestRestartEndsOrphans(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.URL(t, "sqlite")
	env := map[string]string{"DATABASE_URL": dbURL, "MODELS": "demo/fast"}
	first := startServer(t, "", env, nil)
	owner := first.client(t).register()
	var me struct {
		User playground.User `json:"user"`
	}
	owner.do("GET", "/auth/me", nil, &me)
	first.Stop(t)

	// What a crash leaves behind: a running session, one response part-way.
	d := openTestDB(t, dbURL)
	s := &playground.Session{ID: "s_orphan", UserID: me.User.ID, Prompt: "p", Status: playground.SessionRunning, CreatedAt: time.Now(),
		Responses: []*playground.Response{{ID: "r_part", Model: "demo/fast", Status: playground.StatusPending},
			{ID: "r_none", Model: "demo/fast", Status: playground.StatusPending}}}
	if err := d.Sessions().CreateSession(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if err := d.Sessions().Checkpoint(t.Context(), s.ID, 7, []playground.ResponseCheckpoint{
		{ID: "r_part", Status: playground.StatusStreaming, Text: "half an ans", NextIndex: 3, Attempts: 1}}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	second := startServer(t, "", env, nil)
	again := second.client(t)
	again.token = owner.token
	got := again.session(s.ID)
	if got.Status != playground.SessionError {
		t.Fatalf("orphan status %q", got.Status)
	}
	for _, r := range got.Responses {
		if r.Status != playground.StatusError || r.Error == nil || r.Error.Code != playground.RErrInterrupted || !r.Error.Retryable {
			t.Fatalf("orphaned response: %+v", r)
		}
	}
	if got.Responses[0].Text != "half an ans" {
		t.Fatalf("kept text %q", got.Responses[0].Text)
	}
	again.do("GET", "/auth/me", nil, &me)
	if me.User.Quota.Remaining != me.User.Quota.Limit-1 {
		t.Fatalf("quota %d of %d: the response that produced nothing should be given back", me.User.Quota.Remaining, me.User.Quota.Limit)
	}
	// A late viewer gets the ended session and done.
	v := second.dialWS(t, owner.token, nil)
	v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
	if evs := v.untilDone(s.ID, 5*time.Second); evs[len(evs)-1].Status != playground.SessionError {
		t.Fatalf("late viewer of the orphan: %v", types(evs))
	}
}

// TestSSESnapshotID: every log event is written with an id line, a
// snapshot's being the seq it covers, so that an EventSource that joins
// late and then drops resumes right after the snapshot; presence has none.
func TestSSESnapshotID(t *testing.T) {
	t.Parallel()
	up := newFakeOpenAI(t, 40, 3*time.Millisecond)
	_, owner := serveOwner(t, up)
	s := owner.createSession("late join", threeModels...)
	path := "/sessions/" + s.ID + "/stream"

	// Before any chunk: the snapshot covers what there is, maybe nothing.
	first, code := owner.readSSE(path, nil, 1)
	if code != 200 || len(first) == 0 || first[0].Event != "snapshot" || first[0].ID != strconv.FormatInt(first[0].Data.Seq, 10) {
		t.Fatalf("first join: %d %+v", code, first)
	}

	up.open()
	owner.readSSE(path, http.Header{"Last-Event-Id": {first[0].ID}}, 10) // the session moves on
	late, _ := owner.readSSE(path, nil, 1)
	if len(late) == 0 || late[0].Event != "snapshot" {
		t.Fatalf("late join: %+v", late)
	}
	n := late[0].Data.Seq
	if n == 0 || late[0].ID != strconv.FormatInt(n, 10) {
		t.Fatalf("late join's snapshot: id %q, covers seq %d", late[0].ID, n)
	}
	rest, _ := owner.readSSE(path, http.Header{"Last-Event-Id": {late[0].ID}}, 1)
	var logged []sseEvent
	for _, e := range rest {
		if e.Event == string(playground.EventPresence) {
			if e.ID != "" {
				t.Errorf("presence with id %q", e.ID)
			}
			continue
		}
		logged = append(logged, e)
	}
	if len(logged) == 0 || logged[0].Data.Seq != n+1 || logged[0].ID != strconv.FormatInt(n+1, 10) {
		t.Fatalf("resume from %d: %+v", n, logged)
	}
}
