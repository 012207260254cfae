package api

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestLookupQueueBoundsAndOrder: a burst of frames that look sessions up
// runs at most max at a time, every one of them, and those that had to
// wait start in the order they came; the queue's goroutines are gone once
// it is empty (the package's goleak check).
func TestLookupQueueBoundsAndOrder(t *testing.T) {
	q := lookupQueue{max: 3}
	var (
		now, peak atomic.Int32
		mu        sync.Mutex
		started   []int
		wg        sync.WaitGroup
	)
	release := make(chan struct{})
	const n = 50
	wg.Add(n)
	for i := range n {
		q.run(func() {
			defer wg.Done()
			if c := now.Add(1); c > peak.Load() {
				peak.Store(c)
			}
			mu.Lock()
			started = append(started, i)
			mu.Unlock()
			<-release
			now.Add(-1)
		})
	}
	close(release)
	wg.Wait()
	if p := peak.Load(); p > 3 || p < 1 {
		t.Errorf("%d ran at once, want at most 3", p)
	}
	if len(started) != n {
		t.Fatalf("%d of %d ran", len(started), n)
	}
	// The first three ran at once, in any order; the others waited.
	next := 3
	for _, i := range started {
		if i < 3 {
			continue
		}
		if i != next {
			t.Fatalf("frame %d started before frame %d: %v", i, next, started)
		}
		next++
	}
}
