package api

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestLookupQueueBoundsAndOrder: a burst of frames that look sessions up
// runs at most max at a time, every one of them, and those that had to
// wait are taken in the order they came (seen with one at a time: with
// several, two taken in order may start in either order); the queue's
// goroutines are gone once it is empty (the package's goleak check).
func TestLookupQueueBoundsAndOrder(t *testing.T) {
	const n = 50
	burst := func(max int) (peak int32, started []int) {
		q := lookupQueue{max: max}
		var (
			now, top atomic.Int32
			mu       sync.Mutex
			wg       sync.WaitGroup
		)
		release := make(chan struct{})
		wg.Add(n)
		for i := range n {
			q.run(func() {
				defer wg.Done()
				c := now.Add(1)
				for p := top.Load(); c > p && !top.CompareAndSwap(p, c); p = top.Load() {
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
		return top.Load(), started
	}
	peak, started := burst(3)
	if peak > 3 || peak < 1 {
		t.Errorf("%d ran at once, want at most 3", peak)
	}
	if len(started) != n {
		t.Fatalf("%d of %d ran", len(started), n)
	}
	_, started = burst(1)
	for want, i := range started {
		if i != want {
			t.Fatalf("frame %d started before frame %d: %v", i, want, started)
		}
	}
}
