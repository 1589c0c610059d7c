package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signetdev/signet/client"
)

// binsFigure: repositories of 10, 10k and 100k tags (10 and 2k under
// BENCH_QUICK) kept in 256 hashed bins (signet init --bins 256). For each: a cold resolve's latency and
// bytes fetched, and the p50 of publishing one tag through the library.
// The 10-tag repository is the baseline, measured in the same run: with
// bins, neither cost may grow with the number of tags (ratios near 1).
func (e *env) binsFigure(ctx context.Context, p plan) ([]Result, error) {
	type size struct {
		name string
		tags int
	}
	var sizes []size
	for _, n := range p.BinsTags {
		name := fmt.Sprintf("%d tags", n)
		if n >= 1000 {
			name = fmt.Sprintf("%dk tags", n/1000)
		}
		sizes = append(sizes, size{name, n})
	}
	var resolveRuns, publishRuns [][]sample
	var fetched []float64
	for _, sz := range sizes {
		gun := fmt.Sprintf("bench.example.com/bins-%d", sz.tags)
		dir := filepath.Join(e.tmp, "bins-owner-"+fmt.Sprint(sz.tags))
		// Seeding 100k tags is one large publish: no per-request timeout.
		owner, err := client.New(client.Options{Server: "http://" + e.pgServer.addr, TrustDir: dir, Timeout: 10 * time.Minute,
			Keys: client.NewFileKeyStore(filepath.Join(dir, "private"), pass, 0)})
		if err != nil {
			return nil, err
		}
		root, err := owner.Init(ctx, gun)
		if err != nil {
			return nil, err
		}
		if _, err := owner.Shard(ctx, gun, 256); err != nil {
			return nil, err
		}
		changes := make([]client.Change, sz.tags)
		for i := range changes {
			tag := fmt.Sprintf("tag-%d", i)
			changes[i] = client.Change{Tag: tag, Digest: digest.FromString(tag), Size: 1}
		}
		if _, err := owner.Publish(ctx, gun, changes); err != nil {
			return nil, fmt.Errorf("seed %s: %w", gun, err)
		}

		var runs []sample
		var bytes int64
		for i := range p.ColdRuns {
			ct := &countingTransport{rt: http.DefaultTransport}
			dir := filepath.Join(e.tmp, fmt.Sprintf("bins-cold-%d-%d", sz.tags, i))
			c, err := e.pinnedClient(ctx, gun, dir, &http.Client{Transport: ct}, root)
			if err != nil {
				return nil, err
			}
			start := time.Now()
			if _, err := c.Resolve(ctx, gun+":tag-7"); err != nil {
				return nil, fmt.Errorf("resolve %s: %w", gun, err)
			}
			d := time.Since(start)
			runs = append(runs, sample{Ops: 1, Duration: d, P50: d, P99: d, PerSec: 1 / d.Seconds()})
			bytes = ct.bytes.Load()
			os.RemoveAll(dir)
		}
		resolveRuns = append(resolveRuns, runs)
		fetched = append(fetched, float64(bytes)/1024)

		var n atomic.Int64
		publishRuns = append(publishRuns, measure(ctx, p, 1, func(ctx context.Context, _ int, _ *stopwatch) error {
			tag := fmt.Sprintf("new-%d", n.Add(1))
			_, err := owner.Publish(ctx, gun, []client.Change{{Tag: tag, Digest: digest.FromString(tag), Size: 1}})
			return err
		}))
	}
	var out []Result
	for i, sz := range sizes {
		r := Result{Name: "bins: resolve, cold cache, " + sz.name + " latency", Unit: "ms"}
		summarize(&r, resolveRuns[i], resolveRuns[0], p50ms)
		b := single("bins: resolve, cold cache, "+sz.name+" bytes fetched", "KiB", fetched[i])
		b.BaselineMedian, b.Ratio = fetched[0], fetched[i]/fetched[0]
		pub := Result{Name: "bins: publish one tag, " + sz.name + " p50", Unit: "ms"}
		summarize(&pub, publishRuns[i], publishRuns[0], p50ms)
		if i > 0 {
			r.Target, b.Target, pub.Target = "ratio <= 1.5 (baseline: the 10-tag repository)", "ratio <= 1.5", "ratio <= 1.5"
		}
		out = append(out, r, b, pub)
	}
	return out, nil
}
