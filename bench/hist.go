package main

import (
	"sync/atomic"
	"time"
)

// hist is a latency histogram safe for concurrent use: 1 µs buckets up to
// 10 ms, 100 µs buckets up to 1 s, 10 ms buckets up to 60 s. Percentiles
// are exact to the bucket; a soak's millions of samples fit in ~200 KiB.
type hist struct {
	buckets [10_000 + 9_900 + 5_900 + 1]atomic.Int64
	n       atomic.Int64
	maxNS   atomic.Int64
}

func bucketOf(d time.Duration) int {
	us := d.Microseconds()
	switch {
	case us < 0:
		return 0
	case us < 10_000:
		return int(us)
	case us < 1_000_000:
		return 10_000 + int(us-10_000)/100
	case us < 60_000_000:
		return 19_900 + int(us-1_000_000)/10_000
	}
	return 25_800
}

// upper is the exclusive upper bound of bucket i: it holds
// [upper(i-1), upper(i)).
func upper(i int) time.Duration {
	switch {
	case i < 10_000:
		return time.Duration(i+1) * time.Microsecond
	case i < 19_900:
		return time.Duration(10_000+(i-10_000+1)*100) * time.Microsecond
	case i < 25_800:
		return time.Duration(1_000_000+(i-19_900+1)*10_000) * time.Microsecond
	}
	return time.Minute
}

func (h *hist) add(d time.Duration) {
	h.buckets[bucketOf(d)].Add(1)
	h.n.Add(1)
	for {
		m := h.maxNS.Load()
		if int64(d) <= m || h.maxNS.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// quantile is the upper bound of the bucket holding quantile q (0..1),
// or the largest sample if that is less.
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(q * float64(n-1))
	var seen int64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen > rank {
			return min(upper(i), time.Duration(h.maxNS.Load()))
		}
	}
	return time.Duration(h.maxNS.Load())
}
