package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/app"
	"github.com/playground-dev/playground/config"
	"github.com/playground-dev/playground/db/dbtest"
	"github.com/playground-dev/playground/hub/redishub"
	"github.com/playground-dev/playground/internal/redistest"
)

// redisURL is the Redis the scale-out tests share (see redistest.URL).
func redisURL(t *testing.T) string { return redistest.URL(t) }

// cluster is several instances on one database and one Redis, with a key
// prefix of their own so parallel packages never meet.
type cluster struct {
	env    map[string]string
	prefix string
	lease  time.Duration
}

func newCluster(t *testing.T, redisURL string, env map[string]string) *cluster {
	c := &cluster{env: map[string]string{"REDIS_URL": redisURL}, prefix: "test:" + rand.Text()[:10] + ":"}
	c.env["DATABASE_URL"] = dbtest.URL(t, dbtest.Dialects()[len(dbtest.Dialects())-1])
	for k, v := range env {
		c.env[k] = v
	}
	return c
}

func (c *cluster) start(t *testing.T, name string) *testServer {
	return startServer(t, "", c.env, func(cfg *config.Config, o *app.Options) {
		cfg.RedisPrefix, o.Instance = c.prefix, name
		if c.lease > 0 {
			cfg.RedisLease = c.lease
		}
	})
}

// latestPresence reads events until a presence with want viewers shows.
func awaitPresence(t *testing.T, v *wsViewer, want int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("presence %d", want), func() bool { return viewerCount(v) == want })
}

// awaitChunks waits until the viewer has had n chunks: the models stream.
func awaitChunks(t *testing.T, v *wsViewer, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d chunks", n), func() bool {
		viewerCount(v) // reads ahead
		return chunks(v) >= n
	})
}

// TestTwoInstancesOneSession: a session created on A is watched live on
// A and B, by WebSocket and SSE, and everyone sees the same events.
func TestTwoInstancesOneSession(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	up := newFakeOpenAI(t, 40, 2*time.Millisecond)
	cl := newCluster(t, url, up.env(threeModels...))
	a, b := cl.start(t, "a"), cl.start(t, "b")
	owner := a.client(t).register()
	ownerOnB := b.client(t)
	ownerOnB.token = owner.token

	s := owner.createSession("scale out", threeModels...)
	wsA, wsB := watchOnBoth(t, a, b, owner.token, s.ID)
	sse := make(chan []sseEvent, 2)
	for _, c := range []*client{owner, ownerOnB} {
		go func() {
			evs, _ := c.readSSE("/sessions/"+s.ID+"/stream", nil, 0)
			sse <- evs
		}()
	}
	// Presence counts every viewer on every instance.
	awaitPresence(t, wsA, 4)
	awaitPresence(t, wsB, 4)
	up.open()

	logA := wsA.untilDone(s.ID, 30*time.Second)
	logB := wsB.untilDone(s.ID, 30*time.Second)
	want := canonical(t, logA)
	if got := canonical(t, logB); got != want {
		t.Fatalf("WebSocket on B saw other events than on A:\nA %s\nB %s", want, got)
	}
	for range 2 {
		var evs []playground.WireEvent
		for _, e := range <-sse {
			if e.Event != string(playground.EventPresence) {
				evs = append(evs, e.Data)
			}
		}
		if got := canonical(t, evs); got != want {
			t.Fatalf("an SSE viewer saw other events:\nwant %s\ngot  %s", want, got)
		}
	}
	texts, _ := replayView(t, logB)
	for _, r := range ownerOnB.session(s.ID).Responses {
		if r.Text == "" || texts[r.ID] != r.Text {
			t.Errorf("%s on B: %q vs stored %q", r.Model, texts[r.ID], r.Text)
		}
	}
}

// canonical renders a viewer's events (presence left out) for comparison.
func canonical(t *testing.T, evs []playground.WireEvent) string {
	t.Helper()
	var out []playground.WireEvent
	for _, e := range evs {
		if e.Type != playground.EventPresence && e.Type != playground.EventSubscribed {
			if e.Type == playground.EventSnapshot {
				e.Session = nil // its texts are compared through replayView
			}
			out = append(out, e)
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// TestCancelResumeLogoutAcrossInstances: a cancel sent to B ends the
// session running on A; a viewer that leaves A resumes on B with nothing
// missing; a logout on A is refused on B, and B's open WebSocket holding
// that token closes with 4401, within a second.
func TestCancelResumeLogoutAcrossInstances(t *testing.T) {
	t.Parallel()
	cancelResumeLogout(t, map[string]string{"REDIS_URL": redisURL(t)})
}

// cancelResumeLogout is TestCancelResumeLogoutAcrossInstances on the Redis
// env names (REDIS_URL and REDIS_MODE).
func cancelResumeLogout(t *testing.T, env map[string]string) {
	t.Helper()
	up := newFakeOpenAI(t, 400, 20*time.Millisecond)
	for k, v := range up.env("openai/gpt-long") {
		env[k] = v
	}
	cl := newCluster(t, env["REDIS_URL"], env)
	a, b := cl.start(t, "a"), cl.start(t, "b")
	owner := a.client(t).register()
	onB := b.client(t)
	onB.token = owner.token
	up.open()

	// Resume on B after leaving A.
	s := owner.createSession("long", "openai/gpt-long")
	first, _ := owner.readSSE("/sessions/"+s.ID+"/stream", nil, 10)
	last := first[len(first)-1].ID
	v := b.dialWS(t, owner.token, nil)
	since, _ := strconv.ParseInt(last, 10, 64)
	v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": since})
	if ev := v.next(5 * time.Second); ev.Type != playground.EventSubscribed {
		t.Fatalf("subscribe on B: %+v", ev)
	}
	// Cancel through B: the session runs on A.
	time.Sleep(100 * time.Millisecond)
	if code := onB.do("POST", "/sessions/"+s.ID+"/cancel", nil, nil); code != 202 {
		t.Fatalf("cancel on B: %d", code)
	}
	rest := v.untilDone(s.ID, 10*time.Second)
	var all []playground.WireEvent
	for _, e := range first {
		if e.Event != string(playground.EventPresence) {
			all = append(all, e.Data)
		}
	}
	texts, _ := replayView(t, append(all, rest...))
	final := onB.session(s.ID)
	if final.Status != playground.SessionCancelled || final.Responses[0].Status != playground.StatusCancelled {
		t.Fatalf("after a cancel on B: %s / %s", final.Status, final.Responses[0].Status)
	}
	if r := final.Responses[0]; texts[r.ID] != r.Text {
		t.Fatalf("resumed on B: %q, stored %q", texts[r.ID], r.Text)
	}

	// Logout on A: B refuses the token and closes its WebSocket.
	held := b.dialWS(t, owner.token, nil)
	held.send(map[string]any{"type": "ping"})
	held.next(5 * time.Second)
	start := time.Now()
	if code := owner.do("POST", "/auth/logout", nil, nil); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	if code := onB.do("GET", "/auth/me", nil, nil); code != 401 {
		t.Fatalf("token on B after logout on A: %d", code)
	}
	err := held.closeReason(2 * time.Second)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4401 || time.Since(start) > time.Second+500*time.Millisecond {
		t.Fatalf("B's WebSocket after logout on A: %v after %v", err, time.Since(start))
	}
	t.Logf("logout on A closed B's WebSocket with 4401 after %v", time.Since(start))
}

// TestOwnerDies: the instance running a session vanishes mid-stream (its
// broker stops: no more events, no lease renewal); viewers on the other
// instance get the responses ended as interrupted, and done, within the
// lease.
func TestOwnerDies(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	up := newFakeOpenAI(t, 2000, 20*time.Millisecond)
	cl := newCluster(t, url, up.env("openai/gpt-long"))
	cl.lease = time.Second
	a, b := cl.start(t, "a"), cl.start(t, "b")
	owner := a.client(t).register()
	up.open()
	s := owner.createSession("doomed", "openai/gpt-long")
	v := b.dialWS(t, owner.token, nil)
	v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
	waitFor(t, "some text on B", func() bool {
		viewerCount(v)
		for _, ev := range v.pending {
			if ev.Type == playground.EventChunk {
				return true
			}
		}
		return false
	})
	died := time.Now()
	a.app.Broker.Close() // A is gone as far as anyone else can tell

	evs := v.untilDone(s.ID, 10*time.Second)
	if took := time.Since(died); took > 4*time.Second {
		t.Fatalf("done reached B %v after the owner died", took)
	}
	t.Logf("done reached B %v after the owner died (lease %v)", time.Since(died), cl.lease)
	// The ending comes as events, or (when the stream missed what the
	// owner had checkpointed) as a snapshot that holds it.
	var gotInterrupted bool
	for _, ev := range evs {
		if ev.Type == playground.EventStatus && ev.Status == playground.StatusError && contains(ev.Error, "interrupted") {
			gotInterrupted = true
		}
		if ev.Type == playground.EventSnapshot {
			r := ev.Session.Responses[0]
			gotInterrupted = r.Status == playground.StatusError && r.Error != nil && r.Error.Code == playground.RErrInterrupted
		}
	}
	if !gotInterrupted || evs[len(evs)-1].Status != playground.SessionError {
		t.Fatalf("B's viewer got %v", types(evs))
	}
	replayView(t, evs)
	up.srv.CloseClientConnections() // let A's leftover stream end now
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// TestRedisRestart: Redis goes away mid-stream and comes back empty. The
// owner's viewers lose nothing; the remote viewers end with the full text
// and no duplicate seq; /readyz says 503 while Redis is down.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	redisURL(t) // runs with the Redis tests
	port := freePort(t)
	killRedis := startRedis(t, port)
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	up := newFakeOpenAI(t, 150, 20*time.Millisecond)
	cl := newCluster(t, url, up.env("openai/gpt-long"))
	a, b := cl.start(t, "a"), cl.start(t, "b")
	owner := a.client(t).register()
	s := owner.createSession("outage", "openai/gpt-long")
	va, vb := watchOnBoth(t, a, b, owner.token, s.ID)
	awaitPresence(t, va, 2)
	up.open()
	awaitChunks(t, va, 20)
	killRedis()
	if code := a.client(t).do("GET", "/readyz", nil, nil); code != 503 {
		t.Errorf("/readyz with Redis down: %d", code)
	}
	time.Sleep(time.Second)
	startRedis(t, port)

	logA := va.untilDone(s.ID, 30*time.Second)
	logB := vb.untilDone(s.ID, 30*time.Second)
	textsA, lastA := replayView(t, logA)
	textsB, lastB := replayView(t, logB)
	stored := owner.session(s.ID).Responses[0]
	want := up.expectedText("gpt-long")
	if stored.Text != want || textsA[stored.ID] != want || textsB[stored.ID] != want || lastA != lastB {
		t.Fatalf("after the outage: stored %d chars, A %d, B %d of %d; last seq A %d B %d",
			len(stored.Text), len(textsA[stored.ID]), len(textsB[stored.ID]), len(want), lastA, lastB)
	}
	if code := a.client(t).do("GET", "/readyz", nil, nil); code != 200 {
		t.Errorf("/readyz with Redis back: %d", code)
	}
}

// freePort is a port for a redis-server of our own, which binds it by
// number (it cannot take a socket from us) and must bind the same one
// again after a restart. It is picked below the kernel's ephemeral range,
// where no outgoing connection and no other test's :0 listener lands, so
// that it is still free when redis-server binds it.
func freePort(t *testing.T) int {
	t.Helper()
	low := 32768 // Linux's default start of net.ipv4.ip_local_port_range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				low = n
			}
		}
	}
	for range 100 {
		port := 10000 + mathrand.IntN(low-10000)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// startRedis runs a private redis-server that keeps nothing on disk,
// with extra arguments after the usual ones. A
// server that exits before it answers (its port taken, say) fails the
// test at once with its output.
// The returned kill stops it and waits until it has exited.
func startRedis(t *testing.T, port int, extra ...string) (kill func()) {
	t.Helper()
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}
	return runRedis(t, port, append(args, extra...)...)
}

// runRedis runs redis-server with args (a server or a sentinel) that
// listens on port, and waits until it answers PING.
func runRedis(t *testing.T, port int, args ...string) (kill func()) {
	t.Helper()
	cmd := exec.Command("redis-server", args...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { // owned by the test: ends when redis-server does
		_ = cmd.Wait()
		close(exited)
	}()
	kill = func() { _ = cmd.Process.Kill(); <-exited }
	t.Cleanup(kill)
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	waitFor(t, "redis-server", func() bool {
		select {
		case <-exited:
			t.Fatalf("redis-server on port %d exited before it answered:\n%s", port, out.String())
		default:
		}
		return c.Ping(context.Background()).Err() == nil
	})
	return kill
}

// TestOwnerAliveAfterRedisRestart: a Redis that restarts empty has lost
// every owner's lease until the owners renew, within a lease. Until then a
// missing lease is no sign of a dead owner, and the session must not be
// ended as interrupted (under load, an instance's recovery pass could see
// the keyspace empty before the live owner had renewed, and end its
// session under its viewers with a second done). Once Redis has been back
// for a lease, a missing lease means what it says again.
func TestOwnerAliveAfterRedisRestart(t *testing.T) {
	t.Parallel()
	redisURL(t) // runs with the Redis tests
	port := freePort(t)
	killRedis := startRedis(t, port)
	opt, err := redis.ParseURL(fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	rc := redis.NewClient(opt)
	defer rc.Close()
	const lease = time.Second
	b := redishub.NewBroker(redishub.Options{Client: rc, Prefix: "restart:", Instance: "watcher", Lease: lease,
		Logger: slog.New(slog.DiscardHandler)})
	defer b.Close()
	ctx := context.Background()
	const sid = "s_owned-elsewhere"
	if b.OwnerAlive(ctx, sid) {
		t.Fatal("a session with no lease, Redis up all along: its owner is taken for alive")
	}

	killRedis()
	if !b.OwnerAlive(ctx, sid) {
		t.Error("with Redis down, an owner must be taken for alive: nothing can be known")
	}
	startRedis(t, port)
	back := time.Now()
	if !b.OwnerAlive(ctx, sid) {
		t.Fatal("right after Redis came back empty, a missing lease was taken for a dead owner")
	}
	// Within a lease or so of Redis's return (the broker also waits a lease
	// from its control subscription's return), the lease means what it says.
	for b.OwnerAlive(ctx, sid) {
		if time.Since(back) > 4*lease {
			t.Fatal("a lease missing long after Redis came back is still taken for a live owner")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if waited := time.Since(back); waited < lease/2 {
		t.Errorf("a missing lease was believed %s after Redis came back, before a live owner could renew", waited)
	}
}

// TestOwnerAliveAfterUnseenRedisRestart: an instance that sent Redis
// nothing while it was away, and whose control subscription has not yet
// come back, still must not take the empty keyspace of a restarted Redis
// for a dead owner: its recovery pass would end a live session as
// interrupted under its viewers (their done early, with the text of the
// last checkpoint), while the owner goes on to the real end.
func TestOwnerAliveAfterUnseenRedisRestart(t *testing.T) {
	t.Parallel()
	redisURL(t) // runs with the Redis tests
	port := freePort(t)
	kill := startRedis(t, port)
	opt, err := redis.ParseURL(fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const sid = "s_owned-elsewhere"
	// The control subscription comes back within a few milliseconds of
	// Redis, and the window before it is narrow: a few restarts, each
	// seen by a watcher fresh from its start, make it show.
	for round := range 5 {
		broker := func(name string) *redishub.Broker {
			rc := redis.NewClient(opt)
			t.Cleanup(func() { rc.Close() })
			b := redishub.NewBroker(redishub.Options{Client: rc, Prefix: fmt.Sprintf("unseen%d:", round), Instance: name,
				Lease: time.Minute, Logger: slog.New(slog.DiscardHandler)})
			t.Cleanup(func() { b.Close() })
			return b
		}
		owner, watcher := broker("owner"), broker("watcher")
		owner.Own(ctx, sid)
		if !watcher.OwnerAlive(ctx, sid) {
			t.Fatal("an owner holding its lease is taken for dead")
		}
		kill()
		kill = startRedis(t, port) // empty: the lease is gone until the owner renews it
		if !watcher.OwnerAlive(ctx, sid) {
			t.Fatalf("restart %d: right after Redis came back empty, unnoticed, a live owner was taken for dead", round+1)
		}
	}
}

// watchOnBoth connects a WebSocket viewer to a and one to b, both with
// token, and subscribes each to session id from its start.
func watchOnBoth(t *testing.T, a, b *testServer, token, id string) (onA, onB *wsViewer) {
	t.Helper()
	onA, onB = a.dialWS(t, token, nil), b.dialWS(t, token, nil)
	for _, v := range []*wsViewer{onA, onB} {
		v.send(map[string]any{"type": "subscribe", "sessionId": id, "since": 0})
	}
	return onA, onB
}
