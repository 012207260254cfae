package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/auth"
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
	msgs, err := c.XRange(context.Background(), prefix+"s:{"+sessionID+"}:log", "-", "+").Result()
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
	t.Parallel()
	url := redisURL(t)
	pg := dbtest.NewPGCluster(t)
	up := newFakeOpenAI(t, 100, 20*time.Millisecond)
	env := up.env(threeModels...)
	env["DATABASE_URL"] = pg.URL()
	cl := newCluster(t, url, env)
	cl.lease = time.Second
	a, b := cl.start(t, "a"), cl.start(t, "b")
	s := restartDatabaseMidStream(t, pg, up, a, b, cl.lease)
	if n := doneEvents(t, url, cl.prefix, s.ID); n != 1 {
		t.Errorf("the session's log holds %d done events, want 1", n)
	}
}

// TestDatabaseRestartOneInstance: the same on one instance without
// Redis, where nobody else can mend the stored session: the owner writes
// the endings it kept once the database is back.
func TestDatabaseRestartOneInstance(t *testing.T) {
	t.Parallel()
	pg := dbtest.NewPGCluster(t)
	up := newFakeOpenAI(t, 100, 20*time.Millisecond)
	env := up.env(threeModels...)
	env["DATABASE_URL"] = pg.URL()
	ts := startServer(t, "", env, nil)
	restartDatabaseMidStream(t, pg, up, ts, ts, 0)
}

// restartDatabaseMidStream starts a comparison on a, watched on a and b,
// stops the database while it streams, starts it again once the viewers
// have done, and checks the session stored (as b reads it) against what
// they saw. lease is the instances' Redis lease (0 on one instance):
// other instances look for orphaned sessions every half lease.
func restartDatabaseMidStream(t *testing.T, pg *dbtest.PGCluster, up *fakeOpenAI, a, b *testServer, lease time.Duration) *playground.Session {
	t.Helper()
	owner := a.client(t).register()
	onB := b.client(t)
	onB.token = owner.token

	s := owner.createSession("restart the database", threeModels...)
	va, vb := watchOnBoth(t, a, b, owner.token, s.ID)
	awaitPresence(t, va, 2)
	up.open()
	awaitChunks(t, va, 10)
	pg.Stop()
	logA := va.untilDone(s.ID, 30*time.Second)
	logB := vb.untilDone(s.ID, 30*time.Second)
	pg.Start()

	seen := endingOf(t, logA)
	if got := endingOf(t, logB); !jsonEqual(got.texts, seen.texts) || got.done != seen.done {
		t.Fatalf("the two viewers saw different endings")
	}
	for _, r := range s.Responses {
		if want := up.expectedText(r.Model[len("openai/"):]); seen.texts[r.ID] != want {
			t.Fatalf("%s: viewers got %d chars of %d", r.Model, len(seen.texts[r.ID]), len(want))
		}
	}
	// Read the stored session afresh from the database (the owner
	// answers GET from memory for a while) and as b serves it, once it
	// has ended: the owner's outbox writes the responses' endings before
	// the session's, and an ended row is never written again. Another
	// instance's recovery pass that found the session still running just
	// before gets a lease (two passes) to finish what it does.
	d := openTestDB(t, pg.URL())
	defer d.Close()
	fresh := func() *playground.Session {
		stored, err := d.FindSession(context.Background(), s.ID)
		if err != nil {
			t.Fatalf("read the stored session: %v", err)
		}
		return stored
	}
	waitFor(t, "the stored session to end", func() bool { return fresh().Status != playground.SessionRunning })
	time.Sleep(lease)
	for _, stored := range []*playground.Session{fresh(), onB.session(s.ID)} {
		sameAsViewers(t, stored, seen)
		for _, r := range stored.Responses {
			if !r.Ended() || r.Metrics == nil {
				t.Errorf("%s stored %s with metrics %v", r.Model, r.Status, r.Metrics)
			}
		}
	}
	return s
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestDatabaseDownIs503: with PostgreSQL stopped under a server whose
// pool held live connections, every endpoint that needs the database
// answers 503 unavailable with Retry-After (first on the pool's broken
// connections, then on refused ones), never 500, and a WebSocket
// subscribe gets an error event unavailable. Token checks fall back to
// Redis, so the requests reach the handlers. A comparison the server
// still holds (it ran here and is within its replay window) needs no
// database: its owner still watches it to the end.
func TestDatabaseDownIs503(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	pg := dbtest.NewPGCluster(t)
	up := newFakeOpenAI(t, 3, time.Millisecond)
	env := up.env("openai/gpt-a")
	env["DATABASE_URL"] = pg.URL()
	srv := newCluster(t, url, env).start(t, "a")
	owner := srv.client(t).register()
	up.open()
	s := owner.createSession("before the outage", "openai/gpt-a")
	owner.readSSE("/sessions/"+s.ID+"/stream", nil, 0) // until done
	email := struct {
		User struct {
			Email string `json:"email"`
		} `json:"user"`
	}{}
	owner.do("GET", "/auth/me", nil, &email)
	// Fill the pool with live connections, as a busy server's is.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := *owner
			c.do("GET", "/sessions", nil, nil)
			c.do("GET", "/sessions/"+s.ID, nil, nil)
		}()
	}
	wg.Wait()
	pg.Stop()

	anon := srv.client(t)
	// A comparison this server does not hold: whose it is only the
	// database knows.
	elsewhere := "s_00000000-0000-4000-8000-000000000000"
	calls := []struct {
		c            *client
		method, path string
		body         any
	}{
		{anon, "POST", "/auth/login", map[string]string{"email": email.User.Email, "password": "correct horse battery"}},
		{anon, "POST", "/auth/register", map[string]string{"email": "new-during-outage@example.com", "password": "correct horse battery"}},
		{owner, "GET", "/auth/me", nil},
		{owner, "POST", "/sessions", map[string]any{"prompt": "during the outage", "models": []string{"openai/gpt-a"}}},
		{owner, "GET", "/sessions", nil},
		{owner, "GET", "/sessions/" + s.ID, nil},
		{owner, "GET", "/stats/models", nil},
		{owner, "POST", "/sessions/" + s.ID + "/share", nil},
		{owner, "GET", "/sessions/" + elsewhere + "/stream", nil},
	}
	for pass := range 3 { // the pool's broken connections first, then refused ones
		for _, c := range calls {
			resp, body := c.c.raw(c.method, c.path, c.body)
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.Unmarshal(body, &e)
			if resp.StatusCode != 503 || e.Error.Code != playground.EUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("pass %d: %s %s with the database down: %d %s, Retry-After %q",
					pass, c.method, c.path, resp.StatusCode, bytes.TrimSpace(body), resp.Header.Get("Retry-After"))
			}
		}
		v := srv.dialWS(t, owner.token, nil)
		v.send(map[string]any{"type": "subscribe", "sessionId": elsewhere, "since": 0})
		if ev := v.next(10 * time.Second); ev.Type != playground.EventError || ev.Code != playground.EUnavailable {
			t.Errorf("pass %d: WebSocket subscribe with the database down: %s %s %s", pass, ev.Type, ev.Code, ev.Message)
		}
		// The comparison that ran here is still whole in memory.
		if evs, _ := owner.readSSE("/sessions/"+s.ID+"/stream", nil, 0); len(evs) == 0 || evs[len(evs)-1].Event != string(playground.EventDone) {
			t.Errorf("pass %d: the owner's stream of a comparison held here, with the database down: %+v", pass, evs)
		}
		v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
		for ev := v.next(10 * time.Second); ev.Type != playground.EventDone; ev = v.next(10 * time.Second) {
			if ev.Type == playground.EventError {
				t.Fatalf("pass %d: WebSocket subscribe to a comparison held here, with the database down: %s %s", pass, ev.Code, ev.Message)
			}
		}
	}
}

// jtiOf reads the jti claim of an access token (no verification: the
// test only needs its id).
func jtiOf(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		JTI string `json:"jti"`
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.JTI
}

// TestLogoutDuringDatabaseOutage: a logout on A while PostgreSQL is down
// lands in Redis; once the database is back, the token is refused on A and
// on B, the revocation is recorded in the database, and it holds there
// even when Redis forgets it.
func TestLogoutDuringDatabaseOutage(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	pg := dbtest.NewPGCluster(t)
	env := map[string]string{"DATABASE_URL": pg.URL()}
	cl := newCluster(t, url, env)
	a, b := cl.start(t, "a"), cl.start(t, "b")
	owner := a.client(t).register()
	onB := b.client(t)
	onB.token = owner.token
	jti := jtiOf(t, owner.token)

	pg.Stop()
	if code := owner.do("POST", "/auth/logout", nil, nil); code != 204 {
		t.Fatalf("logout with the database down: %d", code)
	}
	pg.Start()
	waitFor(t, "the database to answer A again", func() bool { return owner.do("GET", "/readyz", nil, nil) == 200 })
	for _, c := range []*client{owner, onB} {
		if code := c.do("GET", "/auth/me", nil, nil); code != 401 {
			t.Errorf("%s /auth/me after the database came back: %d", c.base, code)
		}
		if code := c.do("POST", "/sessions", map[string]any{"prompt": "p", "models": []string{"demo/fast"}}, nil); code != 401 {
			t.Errorf("%s POST /sessions after the database came back: %d", c.base, code)
		}
	}
	d := openTestDB(t, pg.URL())
	defer d.Close()
	waitFor(t, "the revocation to reach the database", func() bool {
		n, err := d.Bun().NewSelect().Table("revoked_tokens").Where("jti = ?", jti).Count(context.Background())
		return err == nil && n == 1
	})
	// The database alone now refuses it, on either instance.
	opt, _ := redis.ParseURL(url)
	rc := redis.NewClient(opt)
	defer rc.Close()
	if err := rc.Del(context.Background(), cl.prefix+"revoked:"+jti).Err(); err != nil {
		t.Fatal(err)
	}
	if code := onB.do("GET", "/auth/me", nil, nil); code != 401 {
		t.Errorf("B with the revocation only in the database: %d", code)
	}
}

// TestDeletedAccountIsSignedOut: a token whose account was deleted is
// 401 everywhere, and watches nothing over the WebSocket. No endpoint or command
// deletes accounts, so the test deletes the row as an operator would; nobody
// announces that, so a token the server has just answered for is refused
// once its cached answer runs out (auth.RevocationCacheTTL).
func TestDeletedAccountIsSignedOut(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.URL(t, "sqlite")
	ts := startServer(t, "sqlite", map[string]string{"DATABASE_URL": dbURL}, nil)
	c := ts.client(t).register()
	var me struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if code := c.do("GET", "/auth/me", nil, &me); code != 200 {
		t.Fatalf("me: %d", code)
	}
	d := openTestDB(t, dbURL)
	defer d.Close()
	if _, err := d.Bun().NewDelete().Table("users").Where("id = ?", me.User.ID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitForLong(t, auth.RevocationCacheTTL+time.Second, "the deleted account's token refused",
		func() bool { return c.do("GET", "/sessions", nil, nil) == 401 })
	for _, path := range []string{"/auth/me", "/sessions", "/stats/models"} {
		if code := c.do("GET", path, nil, nil); code != 401 {
			t.Errorf("GET %s with a deleted account's token: %d", path, code)
		}
	}
	if code := c.do("POST", "/sessions", map[string]any{"prompt": "p", "models": []string{"demo/fast"}}, nil); code != 401 {
		t.Errorf("POST /sessions with a deleted account's token: %d", code)
	}
	// The WebSocket takes credentials that do not verify as none (a share
	// token in a subscribe may still decide, docs/api.md): the connection
	// is anonymous, and a subscribe without a share token is refused.
	d2 := ts.client(t).register()
	s := d2.createSession("someone else's", "demo/fast")
	v := ts.dialWS(t, c.token, nil)
	defer v.c.CloseNow()
	v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
	if got := wsAnswer(v, s.ID, playground.EventSubscribed); got != playground.EUnauthorized {
		t.Errorf("WebSocket subscribe with a deleted account's token: %q, want an error %q", got, playground.EUnauthorized)
	}
}

// TestSSEEndsAtLogout: an SSE stream opened with credentials ends within
// about a second of their logout, before the session's done; a viewer who
// came with the share token and no credentials watches on to done.
func TestSSEEndsAtLogout(t *testing.T) {
	t.Parallel()
	up := newFakeOpenAI(t, 150, 20*time.Millisecond)
	ts := startServer(t, "sqlite", up.env("openai/gpt-long"), nil)
	owner := ts.client(t).register()
	s := owner.createSession("log out while watching", "openai/gpt-long")
	var share struct {
		ShareToken string `json:"shareToken"`
	}
	if code := owner.do("POST", "/sessions/"+s.ID+"/share", nil, &share); code != 200 {
		t.Fatalf("share: %d", code)
	}
	type result struct {
		evs []sseEvent
		at  time.Time
	}
	shared := make(chan result, 1)
	// The stream answers once the logout watches it: from then on a
	// logout ends it.
	own := owner.sseLines("/sessions/" + s.ID + "/stream")
	anon := ts.client(t)
	go func() {
		evs, _ := anon.readSSE("/sessions/"+s.ID+"/stream?share="+share.ShareToken, nil, 0)
		shared <- result{evs, time.Now()}
	}()
	up.open()
	// The logout comes while the text streams.
	streaming := false
	for line := range own {
		if streaming = line == "event: "+string(playground.EventChunk); streaming {
			break
		}
	}
	if !streaming {
		t.Fatal("the owner's SSE stream ended before the text streamed")
	}
	out := time.Now()
	if code := owner.do("POST", "/auth/logout", nil, nil); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	ended := make(chan bool, 1) // whether the stream got to done
	go func() {
		done := false
		for line := range own {
			done = done || line == "event: "+string(playground.EventDone)
		}
		ended <- done
	}()
	select {
	case done := <-ended:
		if took := time.Since(out); took > 1500*time.Millisecond {
			t.Errorf("the owner's SSE stream ended %v after the logout", took)
		} else {
			t.Logf("the owner's SSE stream ended %v after the logout", took)
		}
		if done {
			t.Errorf("the owner's SSE stream ran on to done after the logout")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the owner's SSE stream still runs 5 s after the logout")
	}
	r := <-shared
	if len(r.evs) == 0 || r.evs[len(r.evs)-1].Event != string(playground.EventDone) {
		t.Errorf("the share viewer's stream ended without done after someone else's logout")
	}
}
