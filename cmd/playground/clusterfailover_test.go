package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground"
)

// replicatedCluster is a Redis Cluster of three masters with one replica
// each, every node a redis-server of the test's own.
type replicatedCluster struct {
	url   string
	addrs []string
	kill  map[string]func() // by node address
}

// startReplicatedCluster starts six redis-servers in cluster mode and
// makes them three masters with a replica each. A master that stops
// answering for nodeTimeout is failed over to its replica by the cluster
// itself, as in production.
func startReplicatedCluster(t *testing.T, nodeTimeout time.Duration) *replicatedCluster {
	t.Helper()
	rc := &replicatedCluster{kill: map[string]func(){}}
	for range 6 {
		p := clusterPort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		// Replicas sync at once rather than after Redis's 5 s wait for more.
		// A replica whose replication offset is still 0 is left out of
		// CLUSTER SLOTS (Redis 7), and on an empty master the offset moves
		// only with the master's pings to its replicas: every second
		// rather than every 10 s, the cluster lists its replicas within a
		// second of being created instead of after up to 10.
		rc.kill[addr] = startRedis(t, p, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", fmt.Sprint(nodeTimeout.Milliseconds()), "--repl-diskless-sync-delay", "0",
			"--repl-ping-replica-period", "1")
		rc.addrs = append(rc.addrs, addr)
	}
	args := append(append([]string{"--cluster", "create"}, rc.addrs...), "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Ready when every node sees the cluster whole, every slot range has
	// its replica, and every replica is in sync with its master. That
	// takes seconds beside other tests: the limit is generous, since what
	// is tested comes after.
	for _, addr := range rc.addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		waitForLong(t, 60*time.Second, "cluster_state:ok and a replica in sync for every master, seen from "+addr, func() bool {
			ctx := context.Background()
			info, _ := c.ClusterInfo(ctx).Result()
			ranges, err := c.ClusterSlots(ctx).Result()
			if !strings.Contains(info, "cluster_state:ok") || err != nil || len(ranges) == 0 {
				return false
			}
			for _, r := range ranges {
				if len(r.Nodes) != 2 {
					return false
				}
				rep := redis.NewClient(&redis.Options{Addr: r.Nodes[1].Addr})
				repl, _ := rep.Info(ctx, "replication").Result()
				rep.Close()
				if !strings.Contains(repl, "master_link_status:up") {
					return false
				}
			}
			return true
		})
		c.Close()
	}
	rc.url = "redis://" + rc.addrs[0] + "?addr=" + strings.Join(rc.addrs[1:], "&addr=")
	return rc
}

// shardOf returns the master and the replica that hold key's slot.
func (rc *replicatedCluster) shardOf(t *testing.T, key string) (master, replica string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: rc.addrs[0]})
	defer c.Close()
	ctx := context.Background()
	slot, err := c.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	ranges, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ranges {
		if int64(r.Start) <= slot && slot <= int64(r.End) {
			if len(r.Nodes) != 2 {
				t.Fatalf("slot %d is held by %+v, want a master and a replica", slot, r.Nodes)
			}
			return r.Nodes[0].Addr, r.Nodes[1].Addr
		}
	}
	t.Fatalf("no node holds slot %d", slot)
	return "", ""
}

// TestRedisClusterFailover: on a cluster of three masters with a replica
// each, the master holding a running session's keys is killed mid-stream
// and the cluster promotes its replica. Viewers on both instances end
// with the full text, no gap and no duplicate. Meanwhile /readyz tells
// the truth: 503 right after the kill, never 200 while part of the
// keyspace has no live master, and 200 again once the replica serves as
// master. The instance that follows the session from Redis finds the
// promoted replica by itself, within seconds.
func TestRedisClusterFailover(t *testing.T) {
	t.Parallel()
	redisURL(t) // runs with the Redis tests
	rc := startReplicatedCluster(t, 1500*time.Millisecond)
	up := newFakeOpenAI(t, 300, 20*time.Millisecond) // six seconds of text
	env := up.env(threeModels...)
	env["REDIS_URL"], env["REDIS_MODE"] = rc.url, "cluster"
	cl := newCluster(t, rc.url, env)
	a, b := cl.start(t, "a"), cl.start(t, "b")
	owner := a.client(t).register()
	s := owner.createSession("failover", threeModels...)
	master, replica := rc.shardOf(t, cl.prefix+"s:{"+s.ID+"}:log")
	promoted := redis.NewClient(&redis.Options{Addr: replica})
	defer promoted.Close()

	va, vb := watchOnBoth(t, a, b, owner.token, s.ID)
	awaitPresence(t, va, 2)
	awaitPresence(t, vb, 2)
	up.open()
	// Kill the session's master once B has had text from it.
	awaitChunks(t, vb, 30)
	rc.kill[master]()
	killed := time.Now()
	t.Logf("killed master %s; replica %s holds the session's slot", master, replica)

	// /readyz on A until it says 200: never while the slot has no live
	// master. B is asked once now, and again once its viewer has done:
	// B must find the promoted replica by itself, not because /readyz
	// was polled.
	if code := b.client(t).do("GET", "/readyz", nil, nil); code != 503 {
		t.Errorf("/readyz on B right after the kill: %d, want 503", code)
	}
	sawNotReady := false
	waitForLong(t, 30*time.Second, "/readyz 200 on A after the failover", func() bool {
		if a.client(t).do("GET", "/readyz", nil, nil) != 200 {
			sawNotReady = true
			return false
		}
		role, _ := promoted.Do(context.Background(), "ROLE").Slice()
		if len(role) == 0 || role[0] != "master" {
			t.Fatalf("/readyz 200 on A %v after the kill, while the replica is %v and the master is dead",
				time.Since(killed).Round(time.Millisecond), role)
		}
		return true
	})
	if !sawNotReady {
		t.Error("/readyz on A never said 503 while the master was dead")
	}
	t.Logf("/readyz 200 again on A %v after the kill", time.Since(killed).Round(time.Millisecond))

	logA := va.untilDone(s.ID, 30*time.Second)
	logB := vb.untilDone(s.ID, 30*time.Second)
	t.Logf("done reached B %v after the kill", time.Since(killed).Round(time.Millisecond))
	if code := b.client(t).do("GET", "/readyz", nil, nil); code != 200 {
		t.Errorf("/readyz on B after the failover: %d", code)
	}
	textsA, lastA := replayView(t, logA) // fails on a gap or a duplicate
	textsB, lastB := replayView(t, logB)
	if lastA != lastB {
		t.Errorf("last seq on A %d, on B %d", lastA, lastB)
	}
	for _, r := range owner.session(s.ID).Responses {
		want := up.expectedText(strings.TrimPrefix(r.Model, "openai/"))
		if r.Text != want || textsA[r.ID] != want || textsB[r.ID] != want {
			t.Errorf("%s: stored %d chars, A %d, B %d of %d", r.Model, len(r.Text), len(textsA[r.ID]), len(textsB[r.ID]), len(want))
		}
	}
}

// waitForLong is waitFor with a deadline of its own.
func waitForLong(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chunks counts the chunk events a viewer has read ahead.
func chunks(v *wsViewer) int {
	n := 0
	for _, ev := range v.pending {
		if ev.Type == playground.EventChunk {
			n++
		}
	}
	return n
}
