package main

import (
	"sync/atomic"
	"time"
)

const (
	fineStep   = time.Microsecond
	fineN      = 100_000 // 1 µs buckets up to 100 ms
	coarseStep = time.Millisecond
	coarseN    = 60_000 // 1 ms buckets up to 60 s
)

// histogram records durations from many goroutines without a lock: 1 µs
// resolution below 100 ms, 1 ms resolution up to 60 s, and the exact maximum.
type histogram struct {
	fine   [fineN]atomic.Uint64
	coarse [coarseN]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	switch {
	case d < fineN*fineStep:
		h.fine[d/fineStep].Add(1)
	case d < coarseN*coarseStep:
		h.coarse[d/coarseStep].Add(1)
	default:
		h.coarse[coarseN-1].Add(1)
	}
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (h *histogram) count() uint64 { return h.n.Load() }

// quantile returns the upper bound of the bucket holding quantile q (0..1).
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var seen uint64
	for i := range h.fine {
		if seen += h.fine[i].Load(); seen >= rank {
			return min(time.Duration(i+1)*fineStep, h.maxDur())
		}
	}
	for i := range h.coarse {
		if seen += h.coarse[i].Load(); seen >= rank {
			return min(time.Duration(i+1)*coarseStep, h.maxDur())
		}
	}
	return h.maxDur()
}

func (h *histogram) maxDur() time.Duration { return time.Duration(h.max.Load()) }
