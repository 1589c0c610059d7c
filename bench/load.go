package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// sample is what one load run measured.
type sample struct {
	Ops      int           `json:"ops"`
	Errors   int           `json:"errors"`
	Duration time.Duration `json:"duration_ns"`
	PerSec   float64       `json:"per_sec"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
}

// load runs op from conc goroutines for d and measures it. op returns
// false on failure; failures count as errors, not as latency samples.
func load(ctx context.Context, conc int, d time.Duration, op func(ctx context.Context, worker int) bool) sample {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu   sync.Mutex
		lats []time.Duration
		errs int
		wg   sync.WaitGroup
	)
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			var mine []time.Duration
			bad := 0
			for ctx.Err() == nil {
				t := time.Now()
				if op(ctx, w) {
					mine = append(mine, time.Since(t))
				} else if ctx.Err() == nil {
					bad++
				}
			}
			mu.Lock()
			lats = append(lats, mine...)
			errs += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lats)
	s := sample{Ops: len(lats), Errors: errs, Duration: elapsed, PerSec: float64(len(lats)) / elapsed.Seconds()}
	if len(lats) > 0 {
		s.P50 = lats[len(lats)/2]
		s.P99 = lats[min(len(lats)-1, len(lats)*99/100)]
	}
	return s
}

// httpGetter is a keep-alive client for conc connections to one host.
func httpGetter(conc int) *http.Client {
	tr := &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, MaxConnsPerHost: conc, IdleConnTimeout: time.Minute}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// getOp fetches url and checks for a 200 with the expected length.
func getOp(c *http.Client, url string, wantLen int) func(context.Context, int) bool {
	return func(ctx context.Context, _ int) bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			return false
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && (wantLen < 0 || int(n) == wantLen)
	}
}
