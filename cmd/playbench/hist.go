package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a lock-free latency histogram with about 1.6 % resolution
// (64 sub-buckets per power of two of nanoseconds), safe for concurrent
// Record from every viewer goroutine.
type hist struct {
	counts [64 * 64]atomic.Int64
	n      atomic.Int64
	sum    atomic.Int64
	max    atomic.Int64
}

func bucketOf(v int64) int {
	if v < 64 {
		if v < 0 {
			v = 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 6 // v >> e is in [32, 64)
	return e*32 + int(uint64(v)>>e)
}

// bucketValue is the middle of bucket i, the inverse of bucketOf.
func bucketValue(i int) int64 {
	if i < 64 {
		return int64(i)
	}
	e := i/32 - 1
	m := int64(i%32 + 32)
	return m<<e + (int64(1)<<e)/2
}

func (h *hist) Record(d time.Duration) {
	v := int64(d)
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

func (h *hist) Count() int64 { return h.n.Load() }

// Quantile returns the q-quantile (0 < q ≤ 1), or 0 when empty.
func (h *hist) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(bucketValue(i)), time.Duration(h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

func (h *hist) Max() time.Duration { return time.Duration(h.max.Load()) }

func (h *hist) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Merge adds o's counts to h.
func (h *hist) Merge(o *hist) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}
