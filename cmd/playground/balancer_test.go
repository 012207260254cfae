package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/internal/balancer"
)

// TestBehindNginx: three instances on one database and one Redis behind
// Debian's nginx, round robin, no sticky sessions. Comparisons are
// created through the balancer, which hands them to different instances;
// their viewers connect through it too and land on every instance. Each
// viewer ends with the full text of every answer, no event lost or
// doubled, and the viewers of a comparison all saw the same events.
func TestBehindNginx(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	up := newFakeOpenAI(t, 60, 10*time.Millisecond)
	env := up.env(threeModels...)
	env["TRUSTED_PROXIES"] = "127.0.0.1/32"
	cl := newCluster(t, url, env)
	instances := []*testServer{cl.start(t, "a"), cl.start(t, "b"), cl.start(t, "c")}
	var addrs []string
	for _, ts := range instances {
		addrs = append(addrs, ts.app.Addr())
	}
	lb, err := balancer.Start(context.Background(), balancer.Options{Upstreams: addrs, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lb.Stop)
	front := &testServer{URL: lb.URL}

	owner := front.client(t).register()
	const sessions, viewersEach = 6, 3
	var ids []string
	viewers := map[string][]*wsViewer{}
	for i := range sessions {
		s := owner.createSession("balanced "+strconv.Itoa(i), threeModels...)
		ids = append(ids, s.ID)
		for range viewersEach {
			v := front.dialWS(t, owner.token, http.Header{})
			v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
			viewers[s.ID] = append(viewers[s.ID], v)
		}
	}
	for _, id := range ids {
		for _, v := range viewers[id] {
			awaitPresence(t, v, viewersEach)
		}
	}
	// Every instance has viewers, and the comparisons run on more than one.
	for i, ts := range instances {
		if n, _ := strconv.Atoi(metric(t, ts, "playground_live_viewers")); n == 0 {
			t.Errorf("instance %d has no viewer: the balancer sent them all elsewhere", i)
		}
	}
	rdb := redis.NewClient(mustParseRedisURL(t, url))
	defer rdb.Close()
	owners := map[string]bool{}
	for _, id := range ids {
		o, err := rdb.Get(context.Background(), cl.prefix+"s:{"+id+"}:owner").Result()
		if err != nil {
			t.Fatalf("owner of %s: %v", id, err)
		}
		owners[o] = true
	}
	if len(owners) < 2 {
		t.Errorf("all %d comparisons run on %v: the balancer did not spread the creates", sessions, owners)
	}
	up.open()

	for _, id := range ids {
		var first string
		var firstTexts map[string]string
		for i, v := range viewers[id] {
			log := v.untilDone(id, 60*time.Second)
			texts, _ := replayView(t, log) // fails on a gap or a duplicate
			if c := canonical(t, log); i == 0 {
				first, firstTexts = c, texts
			} else if c != first {
				t.Errorf("%s: viewer %d saw other events than viewer 0", id, i)
			}
		}
		for _, r := range owner.session(id).Responses {
			want := up.expectedText(strings.TrimPrefix(r.Model, "openai/"))
			if r.Status != playground.StatusComplete || r.Text != want || firstTexts[r.ID] != want {
				t.Errorf("%s %s: %s, stored %d chars, viewers %d, of %d", id, r.Model, r.Status, len(r.Text), len(firstTexts[r.ID]), len(want))
			}
		}
	}
}

func mustParseRedisURL(t *testing.T, url string) *redis.Options {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return opt
}
