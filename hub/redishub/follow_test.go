package redishub_test

import (
	"context"
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/internal/redistest"
)

// TestCloseWhileFollowingAQuietSession: an instance follows, for a
// viewer, a comparison that runs on another instance and has nothing new
// to say. Shutting the instance down does not wait for the stream to say
// something: its broker closes promptly.
func TestCloseWhileFollowingAQuietSession(t *testing.T) {
	rdb := redistest.Client(t, redistest.URL(t))
	prefix := redistest.Prefix()
	d, s := oneAnswer(t)
	owner := startInstance(t, rdb, prefix, "a", d, false)
	other := startInstance(t, rdb, prefix, "b", d, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	owner.broker.Own(ctx, s.ID)
	owner.broker.Publish(s.ID, playground.StatusFrame(s.ID, 1, playground.StatusEvent{ResponseID: s.Responses[0].ID, Status: playground.StatusStreaming}))
	waitLogged(t, owner.broker, s.ID, 1)

	v := &view{}
	watchCtx, stopWatching := context.WithCancel(ctx)
	watched := watchInBackground(watchCtx, other, s.ID, v)
	defer func() { stopWatching(); <-watched }()
	time.Sleep(100 * time.Millisecond) // the follower waits for the stream

	start := time.Now()
	other.hub.Close()
	other.broker.Close()
	if took := time.Since(start); took > 700*time.Millisecond {
		t.Fatalf("closing the instance took %v", took.Round(time.Millisecond))
	}
}
