package main

import (
	"strings"
	"testing"
	"time"
)

func TestHistQuantiles(t *testing.T) {
	t.Parallel()
	var h hist
	// 1 µs … 1000 µs, once each, then one slow outlier. A quantile is the
	// (exclusive) upper bound of its bucket: at most 1 µs above here.
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	h.add(3 * time.Second)
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 502 * time.Microsecond}, {0.99, 992 * time.Microsecond}, {1, 3 * time.Second}} {
		if got := h.quantile(tc.q); got != tc.want {
			t.Errorf("q%.2f = %v, want %v", tc.q, got, tc.want)
		}
	}
	for _, d := range []time.Duration{15 * time.Millisecond, 2 * time.Second} {
		if b := bucketOf(d); upper(b) <= d || upper(b-1) > d {
			t.Errorf("%v in bucket %d, which holds [%v, %v)", d, b, upper(b-1), upper(b))
		}
	}
}

func TestRSSCheck(t *testing.T) {
	t.Parallel()
	cfg := soakConfig{Duration: 10 * time.Minute}
	series := func(start, perMinute int64) []rssSample {
		var out []rssSample
		for at := 5 * time.Second; at <= cfg.Duration; at += 5 * time.Second {
			out = append(out, rssSample{At: at, RSS: start + perMinute*int64(at/time.Minute)})
		}
		return out
	}
	got := rssCheck(cfg, [][]rssSample{series(30<<20, 100<<10), series(30<<20, 2<<20)})
	if len(got) != 2 || !strings.HasPrefix(got[0], "ok replica 0") || !strings.HasPrefix(got[1], "FAIL replica 1") {
		t.Fatalf("flat and growing RSS judged %q", got)
	}
}
