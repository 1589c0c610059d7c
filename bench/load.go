package main

import (
	"context"
	"fmt"
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
	// FirstError is the first failure's message, if any op failed.
	FirstError string `json:"first_error,omitempty"`
}

// stopwatch times one op. It starts when the op is called; an op restarts
// it to leave its own set-up (signing the metadata it is about to upload)
// out of the latency it reports.
type stopwatch struct{ start time.Time }

func (s *stopwatch) restart() { s.start = time.Now() }

// op is one operation of a load run.
type op func(ctx context.Context, worker int, sw *stopwatch) error

// load runs op from conc goroutines, each starting ops until d has passed
// (at least one each), and measures it. Ops in flight at d finish: a run is
// never cut off mid-operation, so a slow op (a 10k-tag publish) is measured
// even when it takes longer than d. Failures count as errors, not latency.
func load(ctx context.Context, conc int, d time.Duration, fn op) sample {
	var (
		mu       sync.Mutex
		lats     []time.Duration
		errs     int
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			var mine []time.Duration
			bad, first := 0, ""
			for ctx.Err() == nil {
				sw := stopwatch{start: time.Now()}
				if err := fn(ctx, w, &sw); err == nil {
					mine = append(mine, time.Since(sw.start))
				} else if ctx.Err() == nil {
					if bad == 0 {
						first = err.Error()
					}
					bad++
				}
				if time.Since(start) >= d {
					break
				}
			}
			mu.Lock()
			lats = append(lats, mine...)
			errs += bad
			if firstErr == "" {
				firstErr = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lats)
	s := sample{Ops: len(lats), Errors: errs, Duration: elapsed, PerSec: float64(len(lats)) / elapsed.Seconds(), FirstError: firstErr}
	if len(lats) > 0 {
		s.P50 = lats[len(lats)/2]
		s.P99 = lats[min(len(lats)-1, len(lats)*99/100)]
	}
	return s
}

// httpGetter is a keep-alive client for conc connections to one host.
func httpGetter(conc int) *http.Client {
	tr := &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, MaxConnsPerHost: conc, IdleConnTimeout: time.Minute}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// seedClient uploads the big repositories: one publish of 100k tags is a
// large request, so it gets no short timeout.
func seedClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Minute}
}

// getOK fetches url, reads its body and wants a 200; it returns the
// body's length.
func getOK(ctx context.Context, hc *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return n, nil
}

// getOp fetches url and checks for a 200 with the expected length.
func getOp(c *http.Client, url string, wantLen int) op {
	return func(ctx context.Context, _ int, _ *stopwatch) error {
		n, err := getOK(ctx, c, url)
		if err != nil {
			return err
		}
		if wantLen >= 0 && int(n) != wantLen {
			return fmt.Errorf("GET %s: %d bytes, want %d", url, n, wantLen)
		}
		return nil
	}
}
