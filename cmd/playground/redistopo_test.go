package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground"
)

// The topology tests run with the other Redis tests (PLAYGROUND_TEST_REDIS_URL)
// but never use that Redis: each starts redis-server processes of its own
// on free local ports and kills them when it ends.

// watchOnTwo is the promise of every topology: a comparison owned by
// instance A, watched live from A and from B, ends on both with the full
// text of every response, no gap and no duplicate seq, and both viewers
// saw the same events. midStream, if given, runs once the models stream.
func watchOnTwo(t *testing.T, env map[string]string, midStream func(cl *cluster, a, b *testServer)) {
	t.Helper()
	up := newFakeOpenAI(t, 120, 10*time.Millisecond)
	for k, v := range up.env(threeModels...) {
		env[k] = v
	}
	cl := newCluster(t, env["REDIS_URL"], env)
	a, b := cl.start(t, "a"), cl.start(t, "b")
	owner := a.client(t).register()
	s := owner.createSession("topology", threeModels...)
	va, vb := watchOnBoth(t, a, b, owner.token, s.ID)
	awaitPresence(t, va, 2)
	awaitPresence(t, vb, 2)
	up.open()
	if midStream != nil {
		awaitChunks(t, va, 20)
		midStream(cl, a, b)
	}
	logA := va.untilDone(s.ID, 30*time.Second)
	logB := vb.untilDone(s.ID, 30*time.Second)
	textsA, lastA := replayView(t, logA) // fails on a gap or a duplicate
	textsB, lastB := replayView(t, logB)
	if lastA != lastB {
		t.Errorf("last seq on A %d, on B %d", lastA, lastB)
	}
	if ca, cb := canonical(t, logA), canonical(t, logB); ca != cb && (midStream == nil || !sameOrSnapshot(t, logA, logB)) {
		t.Errorf("B saw other events than A:\nA %s\nB %s", ca, cb)
	}
	for _, r := range owner.session(s.ID).Responses {
		want := up.expectedText(strings.TrimPrefix(r.Model, "openai/"))
		if r.Text != want || textsA[r.ID] != want || textsB[r.ID] != want {
			t.Errorf("%s: stored %d chars, A %d, B %d of %d", r.Model, len(r.Text), len(textsA[r.ID]), len(textsB[r.ID]), len(want))
		}
	}
}

// sameOrSnapshot: B, a follower, may cross what an outage of Redis cost
// its stream with a snapshot (the contract's way over a gap, checked for
// its texts by replayView) instead of the events A had one by one; every
// other event B had is A's event of the same seq, field for field.
func sameOrSnapshot(t *testing.T, logA, logB []playground.WireEvent) bool {
	t.Helper()
	bySeq := map[int64]string{}
	for _, e := range logA {
		bySeq[e.Seq] = canonical(t, []playground.WireEvent{e})
	}
	crossed := false
	for _, e := range logB {
		switch {
		case e.Type == playground.EventPresence || e.Type == playground.EventSubscribed:
		case e.Type == playground.EventSnapshot && e.Seq > 0:
			crossed = true
		case canonical(t, []playground.WireEvent{e}) != bySeq[e.Seq]:
			return false
		}
	}
	if crossed {
		t.Logf("B crossed the outage with a snapshot")
	}
	return crossed
}

// clusterPort is a free port whose cluster bus port (port+10000) is free
// too and also below the ephemeral range.
func clusterPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := freePort(t)
		if p > 22000 {
			continue
		}
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+10000)); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

// startRedisCluster runs three redis-servers of its own as a Redis
// Cluster of three masters and no replicas, and returns the REDIS_URL of
// REDIS_MODE=cluster and the nodes' addresses.
func startRedisCluster(t *testing.T) (url string, addrs []string) {
	t.Helper()
	for range 3 {
		p := clusterPort(t)
		startRedis(t, p, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	create := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		waitFor(t, "cluster_state:ok on "+addr, func() bool {
			info, _ := c.ClusterInfo(context.Background()).Result()
			return strings.Contains(info, "cluster_state:ok")
		})
		c.Close()
	}
	return "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2], addrs
}

// TestRedisCluster: two instances on a three-master Redis Cluster. The
// session's keys all live on one shard, and both instances listen for
// control messages by sharded pub/sub.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	redisURL(t) // runs with the Redis tests
	url, addrs := startRedisCluster(t)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	// While the session runs, its stream, owner lease and viewer counts
	// all exist; they must be on one master.
	var keys []string
	holders, subscribers := 0, int64(0)
	watchOnTwo(t, map[string]string{"REDIS_URL": url, "REDIS_MODE": "cluster"}, func(cl *cluster, _, _ *testServer) {
		var mu sync.Mutex // ForEachMaster calls in parallel
		err := cc.ForEachMaster(context.Background(), func(ctx context.Context, n *redis.Client) error {
			ks, err := n.Keys(ctx, cl.prefix+"s:*").Result()
			if err != nil {
				return err
			}
			subs, err := n.PubSubShardNumSub(ctx, cl.prefix+"control").Result()
			mu.Lock()
			defer mu.Unlock()
			if len(ks) > 0 {
				holders++
				keys = append(keys, ks...)
			}
			subscribers += subs[cl.prefix+"control"]
			return err
		})
		if err != nil {
			t.Error(err)
		}
	})
	if len(keys) < 3 {
		t.Errorf("mid-stream the session has keys %q, want its stream, lease and viewers", keys)
	}
	if holders != 1 {
		t.Errorf("the session's keys %q are on %d masters, want one", keys, holders)
	}
	if subscribers != 2 {
		t.Errorf("%d sharded subscribers to the control channel, want one per instance", subscribers)
	}
}

// TestRedisClusterControl: on a cluster, control messages (a cancel, a
// logout) reach the other instance by sharded pub/sub, as on one node.
func TestRedisClusterControl(t *testing.T) {
	t.Parallel()
	redisURL(t) // runs with the Redis tests
	url, _ := startRedisCluster(t)
	cancelResumeLogout(t, map[string]string{"REDIS_URL": url, "REDIS_MODE": "cluster"})
}

// sentinelSetup is a master, one replica and one sentinel watching them
// as "main" (quorum 1, fast failover); it returns the REDIS_URL for
// REDIS_MODE=sentinel, a client of the replica and the master's kill.
func sentinelSetup(t *testing.T) (url string, replica *redis.Client, killMaster func()) {
	t.Helper()
	mport, rport, sport := freePort(t), freePort(t), freePort(t)
	// The replica's first sync starts at once, not after the default 5 s
	// wait for more replicas.
	killMaster = startRedis(t, mport, "--repl-diskless-sync-delay", "0")
	startRedis(t, rport, "--replicaof", "127.0.0.1", strconv.Itoa(mport))
	replica = redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", rport)})
	t.Cleanup(func() { replica.Close() })
	waitFor(t, "the replica in sync", func() bool {
		info, _ := replica.Info(context.Background(), "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	})
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	err := os.WriteFile(conf, fmt.Appendf(nil, "port %d\nbind 127.0.0.1\ndir %s\n"+
		"sentinel monitor main 127.0.0.1 %d 1\n"+
		"sentinel down-after-milliseconds main 500\n"+
		"sentinel failover-timeout main 2000\n", sport, dir, mport), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	runRedis(t, sport, conf, "--sentinel")
	sc := redis.NewSentinelClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", sport)})
	defer sc.Close()
	waitFor(t, "the sentinel to know the replica", func() bool {
		rs, err := sc.Replicas(context.Background(), "main").Result()
		return err == nil && len(rs) == 1
	})
	return fmt.Sprintf("redis://127.0.0.1:%d?master_name=main", sport), replica, killMaster
}

// TestRedisSentinel: two instances on a master found through Sentinel.
func TestRedisSentinel(t *testing.T) {
	t.Parallel()
	redisURL(t) // runs with the Redis tests
	url, _, _ := sentinelSetup(t)
	watchOnTwo(t, map[string]string{"REDIS_URL": url, "REDIS_MODE": "sentinel"}, nil)
}

// TestRedisSentinelFailover: the master dies mid-stream and Sentinel
// promotes the replica. Viewers on both instances end with the full
// text, and /readyz tells the truth meanwhile: it says 200 only once the
// promoted replica answers as master, and says it within seconds.
func TestRedisSentinelFailover(t *testing.T) {
	t.Parallel()
	redisURL(t) // runs with the Redis tests
	url, replica, killMaster := sentinelSetup(t)
	watchOnTwo(t, map[string]string{"REDIS_URL": url, "REDIS_MODE": "sentinel"}, func(_ *cluster, a, _ *testServer) {
		killMaster()
		start := time.Now()
		waitFor(t, "/readyz 200 after the failover", func() bool {
			code := a.client(t).do("GET", "/readyz", nil, nil)
			if code != 200 {
				return false
			}
			role, _ := replica.Do(context.Background(), "ROLE").Slice()
			if len(role) == 0 || role[0] != "master" {
				t.Fatalf("/readyz 200 while the replica is %v and the master is dead", role)
			}
			return true
		})
		t.Logf("ready again %v after the master died", time.Since(start).Round(time.Millisecond))
	})
}

// TestServeRefusesBadRedisSettings: a REDIS_URL that does not fit its
// REDIS_MODE, or an unknown mode, stops serve before it listens, with a
// message naming the settings.
func TestServeRefusesBadRedisSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"REDIS_URL": "redis://127.0.0.1:26379", "REDIS_MODE": "sentinel"}, "master_name"},
		{map[string]string{"REDIS_URL": "redis://127.0.0.1:6379", "REDIS_MODE": "ring"}, "REDIS_MODE must be single, cluster or sentinel"},
		{map[string]string{"REDIS_URL": "127.0.0.1:7000", "REDIS_MODE": "cluster"}, "REDIS_URL does not read as REDIS_MODE=cluster"},
	} {
		err := serve(context.Background(), func(k string) string { return tc.env[k] }, slog.New(slog.DiscardHandler), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: serve returned %v, want an error with %q", tc.env, err, tc.want)
		}
	}
}
